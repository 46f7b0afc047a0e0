"""The `tunefactory` command."""
