"""Direct preference optimisation (DPO and its variants) on preference pairs.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_stages(register):
    register(
        "dpo",
        "tunefactory.plugins.stage_dpo.impl:DPOStage",
        summary="direct preference optimisation on chosen/rejected pairs",
        capabilities={"dataset": "pairwise"},
    )
