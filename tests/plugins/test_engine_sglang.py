"""The engine_sglang plugin: its contract."""

from tunefactory.testing.contracts import EngineContract


class TestSglangContract(EngineContract):
    name = "sglang"
    provider = "engine_sglang"
