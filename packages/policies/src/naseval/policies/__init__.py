"""naseval.policies: NAS search policies (Random, random-WS, ENAS, DARTS, NAO).

Every policy is written against the `SearchEnv` protocol: the trainer's weight-sharing
supernet satisfies it structurally, and so do `TabularEnv` (recorded perplexities) and
`ToyMixtureEnv` (a differentiable toy with a planted optimum).
"""

from naseval.policies.base import (
    Budget,
    FileCheckpoint,
    Policy,
    SearchCallback,
    SearchCheckpoint,
    SearchResult,
)
from naseval.policies.darts import DartsConfig, DartsPolicy, darts_hypergradient
from naseval.policies.enas import EnasConfig, EnasController, EnasPolicy
from naseval.policies.env import SearchEnv
from naseval.policies.nao import EncoderPredictorDecoder, NaoConfig, NaoPolicy
from naseval.policies.random_search import (
    RandomConfig,
    RandomPolicy,
    RandomWSConfig,
    RandomWSPolicy,
)
from naseval.policies.registry import POLICIES, make_policy
from naseval.policies.tabular import TabularEnv, ToyMixtureEnv

__version__ = "0.2.0"

__all__ = [
    "POLICIES",
    "Budget",
    "DartsConfig",
    "DartsPolicy",
    "EncoderPredictorDecoder",
    "FileCheckpoint",
    "EnasConfig",
    "EnasController",
    "EnasPolicy",
    "NaoConfig",
    "NaoPolicy",
    "Policy",
    "RandomConfig",
    "RandomPolicy",
    "RandomWSConfig",
    "RandomWSPolicy",
    "SearchCallback",
    "SearchCheckpoint",
    "SearchEnv",
    "SearchResult",
    "TabularEnv",
    "ToyMixtureEnv",
    "__version__",
    "darts_hypergradient",
    "make_policy",
]
