"""KTO: preference optimisation from single answers marked desirable or not.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_stages(register):
    register(
        "kto",
        "tunefactory.plugins.stage_kto.impl:KTOStage",
        summary="KTO on answers labelled desirable or undesirable",
        capabilities={"dataset": "kto"},
    )
