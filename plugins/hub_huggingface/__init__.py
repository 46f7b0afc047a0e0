"""The Hugging Face Hub, where model and dataset ids are looked up by default.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_hubs(register):
    register(
        "huggingface",
        "tunefactory.plugins.hub_huggingface.impl:HuggingFaceHub",
        summary="Hugging Face Hub (the default)",
        capabilities={"token_option": "hf_hub_token"},
    )
