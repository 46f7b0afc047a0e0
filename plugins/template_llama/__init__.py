"""Llama chat formats.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_templates(register):
    register(
        "llama3",
        "tunefactory.plugins.template_llama.impl:Llama3Template",
        summary="Llama 3 / 3.1 / 3.2 chat format",
        capabilities={"media": "base", "thinking": False},
    )
