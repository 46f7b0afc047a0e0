"""Shanghai AI Lab InternLM chat formats: InternLM, InternLM2 / 2.5 / 3 (ChatML) and InternVL (images, videos).

Registration only: the descriptions in impl.py are imported when a config selects one.
"""

from tunefactory.hookspecs import hookimpl

# name, class in impl.py, summary, media processor, renders reasoning
TEMPLATES = (
    ("intern", "InternTemplate", "InternLM (<|User|>: / <|Bot|>: ... <eoa>)", "base", False),
    ("intern2", "Intern2Template", "InternLM2 / 2.5 / 3 (ChatML after bos)", "base", False),
    ("intern_vl", "InternVLTemplate", "InternVL 2.5 / 3 (images and videos)", "intern_vl", False),
)


@hookimpl
def tunefactory_register_templates(register):
    for name, cls, summary, media, thinking in TEMPLATES:
        register(name, f"{__name__}.impl:{cls}", summary=summary, capabilities={"media": media, "thinking": thinking})
