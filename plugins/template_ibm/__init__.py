"""IBM Granite chat formats: Granite 3.x and Granite 4.

Registration only: the descriptions in impl.py are imported when a config selects one.
"""

from tunefactory.hookspecs import hookimpl

# name, class in impl.py, summary, media processor, renders reasoning
TEMPLATES = (
    ("granite3", "Granite3Template", "Granite 3.x (<|start_of_role|> ... <|end_of_text|>)", "base", False),
    ("granite4", "Granite4Template", "Granite 4 (tool results in a tool role)", "base", False),
)


@hookimpl
def tunefactory_register_templates(register):
    for name, cls, summary, media, thinking in TEMPLATES:
        register(name, f"{__name__}.impl:{cls}", summary=summary, capabilities={"media": media, "thinking": thinking})
