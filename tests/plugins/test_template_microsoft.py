"""The template_microsoft plugin: the contract of each template it registers."""

from tests.plugins.template_suites import contract_suites

globals().update(contract_suites("template_microsoft", __name__))
