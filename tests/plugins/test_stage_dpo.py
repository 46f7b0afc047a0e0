"""The stage_dpo plugin: its contract."""

from tunefactory.testing.contracts import StageContract


class TestDpoContract(StageContract):
    name = "dpo"
    provider = "stage_dpo"
