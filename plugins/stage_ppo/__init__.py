"""PPO: reinforcement learning from a reward model.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_stages(register):
    register(
        "ppo",
        "tunefactory.plugins.stage_ppo.impl:PPOStage",
        summary="PPO against a reward model",
        capabilities={"dataset": "supervised"},
    )
