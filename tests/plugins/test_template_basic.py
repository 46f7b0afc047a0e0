"""The template_basic plugin: its contracts."""

from tunefactory.testing.contracts import TemplateContract


class TestDefaultContract(TemplateContract):
    name = "default"
    provider = "template_basic"


class TestEmptyContract(TemplateContract):
    name = "empty"
    provider = "template_basic"


class TestChatmlContract(TemplateContract):
    name = "chatml"
    provider = "template_basic"
