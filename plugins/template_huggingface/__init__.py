"""Hugging Face chat formats: Zephyr, StarChat, SmolLM and SmolLM2.

Registration only: the descriptions in impl.py are imported when a config selects one.
"""

from tunefactory.hookspecs import hookimpl

# name, class in impl.py, summary, media processor, renders reasoning
TEMPLATES = (
    ("zephyr", "ZephyrTemplate", "Zephyr (<|user|> ... </s>)", "base", False),
    ("starchat", "StarChatTemplate", "StarChat (<|user|> ... <|end|>)", "base", False),
    ("smollm", "SmolLMTemplate", "SmolLM (ChatML)", "base", False),
    ("smollm2", "SmolLM2Template", "SmolLM2 (ChatML with its default system prompt)", "base", False),
)


@hookimpl
def tunefactory_register_templates(register):
    for name, cls, summary, media, thinking in TEMPLATES:
        register(name, f"{__name__}.impl:{cls}", summary=summary, capabilities={"media": media, "thinking": thinking})
