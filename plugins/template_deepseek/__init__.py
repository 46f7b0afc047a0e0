"""DeepSeek chat formats: DeepSeek LLM / V2, DeepSeek-V3, DeepSeek-R1 (reasoning) and DeepSeek Coder.

Registration only: the descriptions in impl.py are imported when a config selects one.
"""

from tunefactory.hookspecs import hookimpl

# name, class in impl.py, summary, media processor, renders reasoning
TEMPLATES = (
    ("deepseek", "DeepSeekTemplate", "DeepSeek LLM / V2 chat (User: / Assistant:)", "base", False),
    ("deepseek3", "DeepSeek3Template", "DeepSeek-V3 (<｜User｜> / <｜Assistant｜>)", "base", False),
    ("deepseekr1", "DeepSeekR1Template", "DeepSeek-R1 and its distills, with <think> reasoning", "base", True),
    ("deepseekcoder", "DeepSeekCoderTemplate", "DeepSeek Coder instruct (### Instruction / ### Response)", "base",
     False),
)


@hookimpl
def tunefactory_register_templates(register):
    for name, cls, summary, media, thinking in TEMPLATES:
        register(name, f"{__name__}.impl:{cls}", summary=summary, capabilities={"media": media, "thinking": thinking})
