"""The template_basic plugin: the contract of each template it registers."""

from tests.plugins.template_suites import contract_suites

globals().update(contract_suites("template_basic", __name__))
