"""The template_yi plugin: the contract of each template it registers."""

from tests.plugins.template_suites import contract_suites

globals().update(contract_suites("template_yi", __name__))
