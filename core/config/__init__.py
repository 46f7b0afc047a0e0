"""Options: groups of dataclass fields, loaded from a file, key=value overrides and --flags, then validated."""
