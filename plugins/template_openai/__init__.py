"""OpenAI gpt-oss chat format (harmony: analysis and final channels).

Registration only: the description in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl

# name, class in impl.py, summary, media processor, renders reasoning
TEMPLATES = (
    ("gpt_oss", "GptOssTemplate", "gpt-oss (harmony format: reasoning in the analysis channel)", "base", True),
)


@hookimpl
def tunefactory_register_templates(register):
    for name, cls, summary, media, thinking in TEMPLATES:
        register(name, f"{__name__}.impl:{cls}", summary=summary, capabilities={"media": media, "thinking": thinking})
