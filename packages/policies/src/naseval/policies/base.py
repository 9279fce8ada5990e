"""What every policy shares: the budget it runs under, the result it returns, its calling shape.

A policy is a class with a `Config` dataclass (its authors' published defaults) and
`search(env, budget, rng, callback=None) -> SearchResult`. All randomness comes from `rng`, a
numpy Generator: torch seeds are drawn from it, so one seed fixes a whole search on CPU.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Protocol

import numpy as np
import torch

from naseval.policies.env import SearchEnv
from naseval.space import Architecture

SearchCallback = Callable[[dict[str, Any]], None]
"""Called with each history entry (a plain JSON-serialisable dict) as soon as it is complete."""


def _check_count(
    owner: str, name: str, value: Any, minimum: int = 1, optional: bool = False
) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        expected = f"an integer >= {minimum}" + (" or None" if optional else "")
        raise ValueError(f"{owner}.{name} must be {expected}, got {value!r}")


def is_real(value: Any) -> bool:
    """A finite real number (not a bool, not a string)."""
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float | np.integer | np.floating)
        and math.isfinite(value)
    )


def check_positive(owner: str, name: str, value: Any, *, allow_zero: bool = False) -> None:
    """Raise a ValueError naming `owner.name` unless `value` is a finite number > 0 (or >= 0)."""
    if not (is_real(value) and (value >= 0 if allow_zero else value > 0)):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{owner}.{name} must be a finite number {bound}, got {value!r}")


def check_count(owner: str, name: str, value: Any, minimum: int = 1) -> None:
    """Raise a ValueError naming `owner.name` unless `value` is an integer >= `minimum`."""
    _check_count(owner, name, value, minimum)


@dataclass(frozen=True)
class Budget:
    """How much search to run; None fields fall back to the policy's Config (its authors' values).

    Every policy reads `epochs` and `steps_per_epoch`; the other fields scale down the parts
    of particular policies for cheap presets and are ignored by the rest.
    """

    epochs: int  # passes of shared-weight training (DARTS: of alternating alpha/weight steps)
    steps_per_epoch: int | None = None  # minibatches per epoch; None = env.steps_per_epoch
    controller_steps: int | None = (
        None  # ENAS: controller updates per epoch; NAO: EPD epochs per round
    )
    final_samples: int | None = None  # ENAS: architectures sampled at the end; random-WS: ranked
    eval_every: int | None = None  # NAO: epochs between pool evaluations (and EPD rounds)

    def __post_init__(self) -> None:
        _check_count("Budget", "epochs", self.epochs)
        for name in ("steps_per_epoch", "controller_steps", "final_samples", "eval_every"):
            _check_count("Budget", name, getattr(self, name), optional=True)

    def steps(self, env: SearchEnv) -> int:
        """Minibatches per epoch in `env`."""
        if self.steps_per_epoch is not None:
            return int(self.steps_per_epoch)
        steps = env.steps_per_epoch
        if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 1:
            raise ValueError(
                f"env.steps_per_epoch is {steps!r}; Budget.steps_per_epoch must be set (>= 1)"
            )
        return int(steps)

    def to_dict(self) -> dict[str, int | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class SearchResult:
    """What a search found, how the policy ranks what it looked at, and how it got there."""

    policy: str  # registry name of the policy, e.g. "enas"
    arch: Architecture  # the architecture the policy chose
    ranking: list[tuple[Architecture, float]]  # the policy's own final ranking, best first
    score: str  # what the ranking's scores mean (and which direction is better)
    history: list[dict[str, Any]] = field(default_factory=list)  # per-epoch plain-JSON records

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable view: architectures as their canonical text."""
        return {
            "policy": self.policy,
            "arch": str(self.arch),
            "genotype": self.arch.to_genotype(),
            "score": self.score,
            # non-finite scores (diverged evaluations) become null: strict JSON has no inf
            "ranking": [[str(arch), json_number(score)] for arch, score in self.ranking],
            "history": self.history,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchResult:
        return cls(
            policy=data["policy"],
            arch=Architecture.parse(data["arch"]),
            ranking=[
                (Architecture.parse(a), math.inf if s is None else float(s))
                for a, s in data["ranking"]
            ],
            score=data["score"],
            history=list(data.get("history", [])),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


class Policy(Protocol):
    """The shape of every search policy; the registry maps names to classes of this shape."""

    name: ClassVar[str]  # registry name
    needs_mixture: ClassVar[bool]  # the supernet must be built in mixture mode (DARTS)
    trains_supernet: ClassVar[bool]  # False when the policy never trains shared weights

    def search(
        self,
        env: SearchEnv,
        budget: Budget,
        rng: np.random.Generator,
        callback: SearchCallback | None = None,
    ) -> SearchResult: ...


# -- helpers shared by the policies ---------------------------------------------------------


def check_rng(rng: Any) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator (np.random.default_rng(seed)), got {rng!r}")
    return rng


SINGLE_PATH_MEMBERS = ("steps_per_epoch", "train_shared", "evaluate", "parameters")
MIXTURE_MEMBERS = ("steps_per_epoch", "train_shared", "mixture_loss", "parameters")


def check_env(env: Any, members: tuple[str, ...] = ()) -> None:
    """Raise a TypeError naming the SearchEnv members `env` lacks (`space` always needed)."""
    missing = [name for name in ("space", *members) if not hasattr(env, name)]
    if missing:
        raise TypeError(
            f"env {type(env).__name__} lacks {', '.join(missing)} of the SearchEnv protocol"
        )


def check_budget(budget: Any) -> Budget:
    if not isinstance(budget, Budget):
        raise TypeError(f"budget must be a naseval.policies.Budget, got {budget!r}")
    return budget


def check_search_args(env: Any, budget: Any, rng: Any, members: tuple[str, ...] = ()) -> None:
    """The checks every `search` starts with: a Budget, an env with `members`, a numpy rng."""
    check_budget(budget)
    check_env(env, members)
    check_rng(rng)


def env_device(env: SearchEnv) -> torch.device:
    """The device of the env's shared weights; the policy's own networks live there too."""
    for param in env.parameters():
        return param.device
    return torch.device("cpu")


def draw_seed(rng: np.random.Generator) -> int:
    """A torch seed drawn from the policy's rng, so the rng alone fixes the run."""
    return int(rng.integers(2**31 - 1))


@contextlib.contextmanager
def torch_seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Run a block under torch's global RNG seeded with `seed`, restoring the caller's state.

    Module initialisers and dropout draw from the global RNG; forking it keeps a search
    reproducible without disturbing whoever called us.
    """
    cuda_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(seed)
        yield


def sample_index(probs: torch.Tensor, rng: np.random.Generator) -> int:
    """Draw an index from a probability vector with the numpy rng (same draws on any device)."""
    p = probs.detach().double().cpu().numpy()
    p = p / p.sum()
    return int(rng.choice(len(p), p=p))


def rank_by_perplexity(
    scored: list[tuple[Architecture, float]],
) -> list[tuple[Architecture, float]]:
    """Best (lowest perplexity) first, stable; NaN and inf (diverged evaluations) go last."""
    return sorted(scored, key=lambda pair: pair[1] if math.isfinite(pair[1]) else math.inf)


def json_number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def emit(
    history: list[dict[str, Any]], entry: dict[str, Any], callback: SearchCallback | None
) -> None:
    history.append(entry)
    if callback is not None:
        callback(entry)
