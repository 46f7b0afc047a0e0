"""The Modelers (openMind) Hub, selected with USE_OPENMIND_HUB=1.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_hubs(register):
    register(
        "modelers",
        "tunefactory.plugins.hub_modelers.impl:ModelersHub",
        summary="Modelers (openMind) Hub (USE_OPENMIND_HUB=1)",
        extra="openmind",
        requires=("openmind>=0.9",),
        capabilities={"env": "USE_OPENMIND_HUB", "token_option": "om_hub_token"},
    )
