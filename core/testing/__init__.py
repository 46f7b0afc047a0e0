"""Test kit for tunefactory and its plugins: tiny offline models and per-kind plugin contract suites."""
