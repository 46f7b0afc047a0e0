"""The patch_mod plugin: its contracts."""

from tunefactory.testing.contracts import PatchContract


class TestModConvertContract(PatchContract):
    name = "mod_convert"
    provider = "patch_mod"


class TestModLoadContract(PatchContract):
    name = "mod_load"
    provider = "patch_mod"
