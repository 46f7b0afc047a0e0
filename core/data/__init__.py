"""Datasets, templates and media processors: from files to token ids with label masks."""
