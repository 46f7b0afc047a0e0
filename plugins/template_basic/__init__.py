"""Basic chat formats: default (Human/Assistant), empty (no markup) and ChatML.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_templates(register):
    register(
        "default",
        "tunefactory.plugins.template_basic.impl:DefaultTemplate",
        summary="plain Human:/Assistant: turns",
        capabilities={"media": "base", "thinking": False},
    )
    register(
        "empty",
        "tunefactory.plugins.template_basic.impl:EmptyTemplate",
        summary="no markup: the text as it is",
        capabilities={"media": "base", "thinking": False},
    )
    register(
        "chatml",
        "tunefactory.plugins.template_basic.impl:ChatMLTemplate",
        summary="ChatML (<|im_start|>role ... <|im_end|>)",
        capabilities={"media": "base", "thinking": False},
    )
