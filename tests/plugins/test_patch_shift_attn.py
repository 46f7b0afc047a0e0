"""The patch_shift_attn plugin: its contract."""

from tunefactory.testing.contracts import PatchContract


class TestShiftAttnContract(PatchContract):
    name = "shift_attn"
    provider = "patch_shift_attn"
