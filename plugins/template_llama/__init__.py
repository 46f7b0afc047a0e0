"""Meta Llama chat formats: Llama 2, Llama 3 / 3.1+ (JSON tool calls), Llama 3.2 Vision and Llama 4.

Registration only: the descriptions in impl.py are imported when a config selects one.
"""

from tunefactory.hookspecs import hookimpl

# name, class in impl.py, summary, media processor, renders reasoning
TEMPLATES = (
    ("llama2", "Llama2Template", "Llama 2 chat ([INST] with <<SYS>> in the first turn)", "base", False),
    ("llama2_zh", "Llama2ZhTemplate", "Llama 2 chat with a bilingual default system prompt", "base", False),
    ("llama3", "Llama3Template", "Llama 3 / 3.1 / 3.2 / 3.3 (header tokens, JSON tool calls)", "base", False),
    ("mllama", "MLlamaTemplate", "Llama 3.2 Vision (images)", "mllama", False),
    ("llama4", "Llama4Template", "Llama 4 (images)", "llama4", False),
)


@hookimpl
def tunefactory_register_templates(register):
    for name, cls, summary, media, thinking in TEMPLATES:
        register(name, f"{__name__}.impl:{cls}", summary=summary, capabilities={"media": media, "thinking": thinking})
