"""The one exception naseval.analysis raises for bad input."""


class AnalysisError(ValueError):
    """Input to an analysis function is unusable; the message names the bad part."""
