"""The engine_vllm plugin: its contract."""

from tunefactory.testing.contracts import EngineContract


class TestVllmContract(EngineContract):
    name = "vllm"
    provider = "engine_vllm"
