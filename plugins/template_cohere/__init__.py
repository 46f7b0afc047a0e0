"""Cohere chat format: Command R / R+ / A.

Registration only: the description in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl

# name, class in impl.py, summary, media processor, renders reasoning
TEMPLATES = (
    ("cohere", "CohereTemplate", "Command R / R+ (<|START_OF_TURN_TOKEN|> role tokens)", "base", False),
)


@hookimpl
def tunefactory_register_templates(register):
    for name, cls, summary, media, thinking in TEMPLATES:
        register(name, f"{__name__}.impl:{cls}", summary=summary, capabilities={"media": media, "thinking": thinking})
