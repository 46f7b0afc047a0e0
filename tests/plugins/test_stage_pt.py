"""The stage_pt plugin: its contract."""

from tunefactory.testing.contracts import StageContract


class TestPtContract(StageContract):
    name = "pt"
    provider = "stage_pt"
