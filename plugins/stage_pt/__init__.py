"""Pre-training: next-token prediction on plain text.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_stages(register):
    register(
        "pt",
        "tunefactory.plugins.stage_pt.impl:PretrainStage",
        summary="pre-training (next-token prediction on plain text)",
        capabilities={"dataset": "text"},
    )
