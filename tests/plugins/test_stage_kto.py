"""The stage_kto plugin: its contract."""

from tunefactory.testing.contracts import StageContract


class TestKtoContract(StageContract):
    name = "kto"
    provider = "stage_kto"
