"""The ModelScope Hub, selected with USE_MODELSCOPE_HUB=1.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_hubs(register):
    register(
        "modelscope",
        "tunefactory.plugins.hub_modelscope.impl:ModelScopeHub",
        summary="ModelScope Hub (USE_MODELSCOPE_HUB=1)",
        extra="modelscope",
        requires=("modelscope>=1.20",),
        capabilities={"env": "USE_MODELSCOPE_HUB", "token_option": "ms_hub_token"},
    )
