"""Reward modelling on preference pairs.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_stages(register):
    register(
        "rm",
        "tunefactory.plugins.stage_rm.impl:RewardModelStage",
        summary="reward-model training on chosen/rejected pairs",
        capabilities={"dataset": "pairwise"},
    )
