"""The hub_modelers plugin: its contract."""

from tunefactory.testing.contracts import HubContract


class TestModelersContract(HubContract):
    name = "modelers"
    provider = "hub_modelers"
