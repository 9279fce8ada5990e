"""naseval.cli: the nas command."""

__version__ = "0.2.0"
