"""Media processors (being written)."""
