"""The engine_ktransformers plugin: its contract."""

from tunefactory.testing.contracts import EngineContract


class TestKtransformersContract(EngineContract):
    name = "ktransformers"
    provider = "engine_ktransformers"
