"""Google chat formats: Gemma, Gemma 2, Gemma 3 (images), Gemma 3n (images, audio) and PaliGemma.

Registration only: the descriptions in impl.py are imported when a config selects one.
"""

from tunefactory.hookspecs import hookimpl

# name, class in impl.py, summary, media processor, renders reasoning
TEMPLATES = (
    ("gemma", "GemmaTemplate", "Gemma (<start_of_turn>, system prompt in the first user turn)", "base", False),
    ("gemma2", "Gemma2Template", "Gemma 2", "base", False),
    ("gemma3", "Gemma3Template", "Gemma 3 (images)", "gemma3", False),
    ("gemma3n", "Gemma3nTemplate", "Gemma 3n (images and audio)", "gemma3n", False),
    ("paligemma", "PaliGemmaTemplate", "PaliGemma (image prefix, then the task)", "paligemma", False),
)


@hookimpl
def tunefactory_register_templates(register):
    for name, cls, summary, media, thinking in TEMPLATES:
        register(name, f"{__name__}.impl:{cls}", summary=summary, capabilities={"media": media, "thinking": thinking})
