"""tunefactory: fine-tune, run, serve and export large language models through a pluggable core."""

__version__ = "0.1.0"
