"""The stage_ppo plugin: its contract."""

from tunefactory.testing.contracts import StageContract


class TestPpoContract(StageContract):
    name = "ppo"
    provider = "stage_ppo"
