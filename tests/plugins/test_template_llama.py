"""The template_llama plugin: the contract of each template it registers."""

from tests.plugins.template_suites import contract_suites

globals().update(contract_suites("template_llama", __name__))
