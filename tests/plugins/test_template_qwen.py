"""The template_qwen plugin: its contracts."""

from tunefactory.testing.contracts import TemplateContract


class TestQwenContract(TemplateContract):
    name = "qwen"
    provider = "template_qwen"


class TestQwen3Contract(TemplateContract):
    name = "qwen3"
    provider = "template_qwen"
