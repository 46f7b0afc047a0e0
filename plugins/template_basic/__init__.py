"""Generic chat formats: default (Human/Assistant), empty (no markup), Alpaca, Vicuna and ChatML.

Registration only: the descriptions in impl.py are imported when a config selects one.
"""

from tunefactory.hookspecs import hookimpl

# name, class in impl.py, summary, media processor, renders reasoning
TEMPLATES = (
    ("default", "DefaultTemplate", "plain Human:/Assistant: turns", "base", False),
    ("empty", "EmptyTemplate", "no markup: the text as it is", "base", False),
    ("alpaca", "AlpacaTemplate", "Alpaca instruction format (### Instruction / ### Response)", "base", False),
    ("vicuna", "VicunaTemplate", "Vicuna v1.1 (USER: ... ASSISTANT: ...)", "base", False),
    ("chatml", "ChatMLTemplate", "ChatML (<|im_start|>role ... <|im_end|>)", "base", False),
)


@hookimpl
def tunefactory_register_templates(register):
    for name, cls, summary, media, thinking in TEMPLATES:
        register(name, f"{__name__}.impl:{cls}", summary=summary, capabilities={"media": media, "thinking": thinking})
