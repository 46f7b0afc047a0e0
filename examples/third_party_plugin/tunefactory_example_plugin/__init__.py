"""Registers the example template and attention backend; imports nothing heavy."""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_templates(register):
    register(
        "example_chat",
        "tunefactory_example_plugin.template:ExampleChatTemplate",
        summary="User:/Assistant: turns, a third-party example",
        capabilities={"media": "base", "thinking": False},
    )


@hookimpl
def tunefactory_register_attention_backends(register):
    register(
        "example_attention",
        "tunefactory_example_plugin.attention:ExampleAttention",
        summary="plain softmax attention registered with transformers' AttentionInterface, a third-party example",
        requires=("torch>=2.1",),
        capabilities={"needs_gpu": False},
    )
