"""Supervised fine-tuning on conversations.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_stages(register):
    register(
        "sft",
        "tunefactory.plugins.stage_sft.impl:SupervisedStage",
        summary="supervised fine-tuning on conversations",
        capabilities={"dataset": "supervised"},
    )
