"""naseval.space: DARTS-style recurrent-cell architectures, search spaces and their encodings."""

from naseval.space.architecture import OPS, Architecture, InvalidArchitecture, Node
from naseval.space.space import Space

__version__ = "0.1.0"

__all__ = ["OPS", "Architecture", "InvalidArchitecture", "Node", "Space", "__version__"]
