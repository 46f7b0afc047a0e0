"""01.AI Yi chat formats: Yi (ChatML) and Yi-VL (images).

Registration only: the descriptions in impl.py are imported when a config selects one.
"""

from tunefactory.hookspecs import hookimpl

# name, class in impl.py, summary, media processor, renders reasoning
TEMPLATES = (
    ("yi", "YiTemplate", "Yi / Yi-1.5 chat (ChatML)", "base", False),
    ("yi_vl", "YiVLTemplate", "Yi-VL (### Human / ### Assistant, images)", "llava", False),
)


@hookimpl
def tunefactory_register_templates(register):
    for name, cls, summary, media, thinking in TEMPLATES:
        register(name, f"{__name__}.impl:{cls}", summary=summary, capabilities={"media": media, "thinking": thinking})
