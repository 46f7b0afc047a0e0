"""Liger kernels: fused Triton kernels for faster, leaner training.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl

EXTRA = "liger"
REQUIRES = ("liger-kernel>=0.5",)


@hookimpl
def tunefactory_register_model_patches(register):
    register(
        "liger",
        "tunefactory.plugins.patch_liger.impl:LigerKernelPatch",
        summary="Liger fused Triton kernels (RMSNorm, RoPE, SwiGLU, cross-entropy)",
        extra=EXTRA,
        requires=REQUIRES,
        capabilities={"option": "enable_liger_kernel", "needs_gpu": True},
    )
