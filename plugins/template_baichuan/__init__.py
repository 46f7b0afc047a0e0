"""Baichuan chat formats: Baichuan and Baichuan 2 (reserved role tokens).

Registration only: the descriptions in impl.py are imported when a config selects one.
"""

from tunefactory.hookspecs import hookimpl

# name, class in impl.py, summary, media processor, renders reasoning
TEMPLATES = (
    ("baichuan", "BaichuanTemplate", "Baichuan chat (<reserved_102> / <reserved_103>)", "base", False),
    ("baichuan2", "Baichuan2Template", "Baichuan 2 chat (<reserved_106> / <reserved_107>)", "base", False),
)


@hookimpl
def tunefactory_register_templates(register):
    for name, cls, summary, media, thinking in TEMPLATES:
        register(name, f"{__name__}.impl:{cls}", summary=summary, capabilities={"media": media, "thinking": thinking})
