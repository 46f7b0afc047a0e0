"""RoPE scaling (rope_scaling): stretch rotary position embeddings to a longer context.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_model_patches(register):
    register(
        "rope_linear",
        "tunefactory.plugins.patch_rope.impl:LinearRopeScaling",
        summary="linear RoPE scaling (position interpolation) to reach cutoff_len",
        capabilities={"option": "rope_scaling", "value": "linear"},
    )
    register(
        "rope_dynamic",
        "tunefactory.plugins.patch_rope.impl:DynamicRopeScaling",
        summary="dynamic NTK RoPE scaling, growing past the trained length",
        capabilities={"option": "rope_scaling", "value": "dynamic"},
    )
    register(
        "rope_yarn",
        "tunefactory.plugins.patch_rope.impl:YarnRopeScaling",
        summary="YaRN RoPE scaling to reach cutoff_len",
        capabilities={"option": "rope_scaling", "value": "yarn"},
    )
    register(
        "rope_llama3",
        "tunefactory.plugins.patch_rope.impl:Llama3RopeScaling",
        summary="Llama 3.1-style frequency-dependent RoPE scaling to reach cutoff_len",
        capabilities={"option": "rope_scaling", "value": "llama3"},
    )
