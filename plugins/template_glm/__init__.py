"""Zhipu AI GLM chat formats: ChatGLM3, GLM-4, GLM-4.5 (reasoning) and GLM-Z1 (reasoning).

Registration only: the descriptions in impl.py are imported when a config selects one.
"""

from tunefactory.hookspecs import hookimpl

# name, class in impl.py, summary, media processor, renders reasoning
TEMPLATES = (
    ("chatglm3", "ChatGLM3Template", "ChatGLM3 (role tokens, GLM-4 style tool calls)", "base", False),
    ("glm4", "GLM4Template", "GLM-4 (role tokens; answers end at the next role token)", "base", False),
    ("glm4_moe", "GLM4MoeTemplate", "GLM-4.5 with <think> reasoning", "base", True),
    ("glmz1", "GLMZ1Template", "GLM-Z1 with <think> reasoning", "base", True),
)


@hookimpl
def tunefactory_register_templates(register):
    for name, cls, summary, media, thinking in TEMPLATES:
        register(name, f"{__name__}.impl:{cls}", summary=summary, capabilities={"media": media, "thinking": thinking})
