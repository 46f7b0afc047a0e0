"""The patch_unsloth_gc plugin: its contract."""

from tunefactory.testing.contracts import PatchContract


class TestUnslothGcContract(PatchContract):
    name = "unsloth_gc"
    provider = "patch_unsloth_gc"
