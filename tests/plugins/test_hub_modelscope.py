"""The hub_modelscope plugin: its contract."""

from tunefactory.testing.contracts import HubContract


class TestModelscopeContract(HubContract):
    name = "modelscope"
    provider = "hub_modelscope"
