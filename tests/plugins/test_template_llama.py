"""The template_llama plugin: its contract."""

from tunefactory.testing.contracts import TemplateContract


class TestLlama3Contract(TemplateContract):
    name = "llama3"
    provider = "template_llama"
