"""The stage_sft plugin: its contract."""

from tunefactory.testing.contracts import StageContract


class TestSftContract(StageContract):
    name = "sft"
    provider = "stage_sft"
