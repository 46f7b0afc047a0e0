"""The patch_liger plugin: its contract."""

from tunefactory.testing.contracts import PatchContract


class TestLigerContract(PatchContract):
    name = "liger"
    provider = "patch_liger"
