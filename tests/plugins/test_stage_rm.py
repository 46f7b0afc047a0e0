"""The stage_rm plugin: its contract."""

from tunefactory.testing.contracts import StageContract


class TestRmContract(StageContract):
    name = "rm"
    provider = "stage_rm"
