"""Qwen chat formats.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_templates(register):
    register(
        "qwen",
        "tunefactory.plugins.template_qwen.impl:QwenTemplate",
        summary="Qwen / Qwen2 / Qwen2.5 chat format (ChatML with tools)",
        capabilities={"media": "base", "thinking": False},
    )
    register(
        "qwen3",
        "tunefactory.plugins.template_qwen.impl:Qwen3Template",
        summary="Qwen3 chat format with <think> reasoning",
        capabilities={"media": "base", "thinking": True},
    )
