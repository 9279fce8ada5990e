"""What every policy shares: the budget it runs under, the result it returns, its calling shape,
and the checkpoints that make a search resumable.

A policy is a class with a `Config` dataclass (its authors' published defaults) and
`search(env, budget, rng, callback=None, checkpoint=None) -> SearchResult`. All randomness comes
from `rng`, a numpy Generator: torch seeds are drawn from it, so one seed fixes a whole search on
CPU, and a checkpoint (the rng's state, the env's, the policy's) continues it bit for bit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
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


CHECKPOINT_FORMAT = "naseval.search/1"
ENV_STATE_MEMBERS = ("state_dict", "load_state_dict")


class SearchCheckpoint(Protocol):
    """Where a search keeps its state between epochs (`FileCheckpoint`: one file)."""

    def load(self) -> dict[str, Any] | None:
        """The state saved last, or None when nothing has been saved yet."""
        ...

    def save(self, state: dict[str, Any]) -> None:
        """Keep `state` in place of the previous one. It holds the search's live tensors (shared
        weights, optimiser moments), which change as soon as the search goes on: serialise or
        copy it before returning."""
        ...


@dataclass
class FileCheckpoint:
    """A search checkpoint in one file: `torch.save`d, replaced atomically, loaded on the CPU
    with `weights_only=True` (plain containers, numbers, strings and tensors only)."""

    path: str | os.PathLike[str]

    def save(self, state: dict[str, Any]) -> None:
        target = Path(self.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        # A kill mid-write must leave the previous checkpoint whole: write beside it, then rename.
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        os.close(fd)
        try:
            torch.save(state, tmp)
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def load(self) -> dict[str, Any] | None:
        target = Path(self.path)
        if not target.exists():
            return None
        try:
            state = torch.load(target, map_location="cpu", weights_only=True)
        except Exception as error:  # truncated, foreign or unsafe files fail in many ways
            lines = str(error).strip().splitlines()
            reason = f"{type(error).__name__}: {lines[0][:200]}" if lines else type(error).__name__
            raise ValueError(
                f"search checkpoint {target} is unreadable ({reason}); delete it to restart the search"
            ) from error
        if not isinstance(state, dict):
            raise ValueError(
                f"search checkpoint {target} holds a {type(state).__name__}, not a search state; "
                "delete it to restart the search"
            )
        return state


class Policy(Protocol):
    """The shape of every search policy; the registry maps names to classes of this shape."""

    name: ClassVar[str]  # registry name
    needs_mixture: ClassVar[bool]  # the supernet must be built in mixture mode (DARTS)
    trains_supernet: ClassVar[bool]  # False when the policy never trains shared weights
    config: Any  # the policy's Config (a frozen dataclass)

    def search(
        self,
        env: SearchEnv,
        budget: Budget,
        rng: np.random.Generator,
        callback: SearchCallback | None = None,
        checkpoint: SearchCheckpoint | None = None,
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


def rank_on_validation(
    env: SearchEnv, archs: list[Architecture], batches: int
) -> list[tuple[Architecture, float]]:
    """`archs` scored under the shared weights, all on the same `batches` validation minibatches
    (offset 0), best (lowest perplexity) first."""
    scored = [(a, float(env.evaluate(a, batches=batches, offset=0))) for a in archs]
    return rank_by_perplexity(scored)


def finish_with_ranking(
    progress: SearchProgress,
    policy: str,
    env: SearchEnv,
    candidates: list[Architecture],
    batches: int,
    score: str,
    epoch: int,
    state: PolicyState | None = None,
    **extra: Any,
) -> SearchResult:
    """Rank `candidates` with `rank_on_validation` and close the search with the final-stage
    history entry (`extra` joins it)."""
    ranking = rank_on_validation(env, candidates, batches)
    result = SearchResult(policy=policy, arch=ranking[0][0], ranking=ranking, score=score,
                          history=progress.history)
    final = {"epoch": epoch, "stage": "final",
             "ranked": [[str(a), json_number(s)] for a, s in ranking], **extra}
    return progress.finish(result, state, entry=final)


def json_number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def plain(value: Any) -> Any:
    """`value` with numpy scalars and arrays as Python numbers and lists, which
    `torch.load(weights_only=True)` accepts; dicts, lists and tuples rebuilt, the rest as is."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        items = [plain(v) for v in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    return value


PolicyState = Callable[[], dict[str, Any]]
"""Returns what a policy's loop carries (networks' and optimisers' state_dicts, cursors...)."""


class SearchProgress:
    """A search's history and, with a checkpoint, its saving and resuming: what every policy's
    loop shares.

    `record(entry, state)` closes an epoch in this order: the entry joins the history, the
    checkpoint is saved, then the callback gets the entry. A kill before the save loses that
    epoch only: the resumed search redoes it and sends its entry, which was never sent. A kill
    after the save (in the callback, or before the next epoch is done) resumes after it, so no
    entry reaches the callback twice; restored entries are not sent again. `finish` saves the
    result as well, so a rerun of a finished search returns it at once.

    A saved state holds the format tag, the policy's name, its Config as a dict, the budget, the
    rng's state when the search began (a rerun must start from the same seed) and now, the
    epoch reached, `env.state_dict()` (not for Random, which trains nothing), the history, the
    policy's own state and, once finished, the result.
    """

    def __init__(
        self,
        policy: Policy,
        env: Any,
        budget: Budget,
        rng: np.random.Generator,
        callback: SearchCallback | None,
        checkpoint: SearchCheckpoint | None,
    ) -> None:
        self.history: list[dict[str, Any]] = []
        self.epoch = 0  # the last epoch recorded; `resume` sets the saved one
        self.result: SearchResult | None = None  # a finished search's, set by `resume`
        self._env, self._rng, self._callback, self._checkpoint = env, rng, callback, checkpoint
        # Random trains nothing, so it neither needs an env state nor saves one.
        self._env_state = bool(policy.trains_supernet)
        self._identity: dict[str, Any] = {}
        if checkpoint is None:
            return
        if not all(callable(getattr(checkpoint, m, None)) for m in ("load", "save")):
            raise TypeError(f"checkpoint must have load() and save(state), got {checkpoint!r}")
        missing = [m for m in ENV_STATE_MEMBERS if not callable(getattr(env, m, None))]
        if self._env_state and missing:
            raise TypeError(
                f"env {type(env).__name__} lacks {', '.join(missing)}, which a search with a "
                "checkpoint needs to save and restore it (or pass checkpoint=None)"
            )
        self._identity = {
            "format": CHECKPOINT_FORMAT,
            "policy": policy.name,
            "config": plain(dataclasses.asdict(policy.config)),
            "budget": plain(budget.to_dict()),
            "rng_start": plain(rng.bit_generator.state),
        }

    def resume(self) -> dict[str, Any] | None:
        """Restore the checkpoint's search into this one and return the policy's own state
        (None: nothing saved, start afresh).

        Call it once everything a fresh search builds is built, so that the rng has made the
        same draws; it then sets the rng, the env, the history, `epoch` and, if the search had
        finished, `result`. A checkpoint of another search is a ValueError naming the first
        field that differs.
        """
        if self._checkpoint is None:
            return None
        state = self._checkpoint.load()
        if state is None:
            return None
        self._check(state)
        self._rng.bit_generator.state = state["rng"]
        if self._env_state:
            self._env.load_state_dict(state["env"])
        self.history[:] = state["history"]
        self.epoch = int(state["epoch"])
        if state["result"] is not None:
            self.result = SearchResult.from_dict({**state["result"], "history": self.history})
        return dict(state["policy_state"])

    def record(self, entry: dict[str, Any], state: PolicyState | None = None) -> None:
        """Close epoch `entry["epoch"]`: history, then checkpoint (with `state()`), then callback."""
        self.history.append(entry)
        self.epoch = int(entry["epoch"])
        self._save(state, None)
        if self._callback is not None:
            self._callback(entry)

    def finish(
        self,
        result: SearchResult,
        state: PolicyState | None = None,
        entry: dict[str, Any] | None = None,
    ) -> SearchResult:
        """Close the search: the final-stage `entry` (if any) joins the history, which `result`
        shares; the checkpoint saves the result; the callback gets the entry."""
        if entry is not None:
            self.history.append(entry)
        self._save(state, result)
        if entry is not None and self._callback is not None:
            self._callback(entry)
        return result

    def _save(self, state: PolicyState | None, result: SearchResult | None) -> None:
        if self._checkpoint is None:
            return
        finished = None if result is None else result.to_dict()
        if finished is not None:
            del finished["history"]  # the same as the state's own
        self._checkpoint.save(
            {
                **self._identity,
                "epoch": self.epoch,
                "rng": plain(self._rng.bit_generator.state),
                "env": self._env.state_dict() if self._env_state else None,
                "history": plain(self.history),
                "policy_state": {} if state is None else state(),
                "result": finished,
            }
        )

    def _check(self, state: dict[str, Any]) -> None:
        mine = _flat(self._identity)
        theirs = _flat({key: state.get(key, "<missing>") for key in self._identity})
        for key in [*mine, *(k for k in theirs if k not in mine)]:
            here, saved = mine.get(key, "<missing>"), theirs.get(key, "<missing>")
            if here == saved:
                continue
            where = getattr(self._checkpoint, "path", None) or type(self._checkpoint).__name__
            what = (
                "another rng (seed)"
                if key == "rng_start"
                else f"{key} = {saved!r} (this search: {here!r})"
            )
            raise ValueError(
                f"search checkpoint {where} was saved with {what}; use another checkpoint "
                "or delete it to restart the search"
            )


def _flat(identity: dict[str, Any]) -> dict[str, Any]:
    """{"config": {"lr": 1}} -> {"config.lr": 1}, so a mismatch names the field itself."""
    flat: dict[str, Any] = {}
    for key, value in identity.items():
        if key in ("config", "budget") and isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return flat
