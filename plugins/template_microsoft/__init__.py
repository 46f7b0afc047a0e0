"""Microsoft Phi chat formats: Phi-3 / 3.5, Phi-3-small and Phi-4.

Registration only: the descriptions in impl.py are imported when a config selects one.
"""

from tunefactory.hookspecs import hookimpl

# name, class in impl.py, summary, media processor, renders reasoning
TEMPLATES = (
    ("phi", "PhiTemplate", "Phi-3 / Phi-3.5 (<|user|> ... <|end|>)", "base", False),
    ("phi_small", "PhiSmallTemplate", "Phi-3-small (Phi-3 after a bos token)", "base", False),
    ("phi4", "Phi4Template", "Phi-4 (<|im_start|>role<|im_sep|> ... <|im_end|>)", "base", False),
)


@hookimpl
def tunefactory_register_templates(register):
    for name, cls, summary, media, thinking in TEMPLATES:
        register(name, f"{__name__}.impl:{cls}", summary=summary, capabilities={"media": media, "thinking": thinking})
