"""Mistral AI chat formats: Mistral / Mixtral ([INST], [TOOL_CALLS] tool calls), the Tekken tokenizer variants
(Ministral, Mistral Small with [SYSTEM_PROMPT]) and Pixtral.

Registration only: the descriptions in impl.py are imported when a config selects one.
"""

from tunefactory.hookspecs import hookimpl

# name, class in impl.py, summary, media processor, renders reasoning
TEMPLATES = (
    ("mistral", "MistralTemplate", "Mistral / Mixtral instruct (v3 tokenizer, [TOOL_CALLS] tool calls)", "base", False),
    ("ministral", "MinistralTemplate", "Ministral / Mistral Nemo (Tekken tokenizer)", "base", False),
    ("mistral_small", "MistralSmallTemplate", "Mistral Small 3 ([SYSTEM_PROMPT], images)", "pixtral", False),
    ("pixtral", "PixtralTemplate", "Pixtral (images)", "pixtral", False),
)


@hookimpl
def tunefactory_register_templates(register):
    for name, cls, summary, media, thinking in TEMPLATES:
        register(name, f"{__name__}.impl:{cls}", summary=summary, capabilities={"media": media, "thinking": thinking})
