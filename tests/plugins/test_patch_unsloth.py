"""The patch_unsloth plugin: its contract."""

from tunefactory.testing.contracts import PatchContract


class TestUnslothContract(PatchContract):
    name = "unsloth"
    provider = "patch_unsloth"
