"""Cheap SearchEnvs: a table of recorded perplexities, and a toy mixture with a planted optimum.

`TabularEnv` replays recorded ground truth (or any arch -> perplexity function): policies
search it in seconds, which is how they are tested and how a user asks "what would ENAS have
found if weight sharing were perfect?". `ToyMixtureEnv` is a small differentiable problem with a
known optimal architecture, for DARTS's first- and second-order steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import torch

from naseval.space import Architecture, Space

Table = Mapping[Architecture, float] | Callable[[Architecture], float]

_MARGINAL_ENUMERATION_LIMIT = 50_000  # spaces up to this size are enumerated for edge scores
_MARGINAL_SAMPLES = 4096  # otherwise the edge scores are estimated from this many samples


def _alpha_row(j: int, i: int) -> int:
    return j * (j - 1) // 2 + i


def _check_space(space: Any) -> Space:
    if not isinstance(space, Space):
        raise TypeError(f"space must be a naseval.space.Space, got {space!r}")
    return space


def _check_in_space(space: Space, arch: Any, what: str = "arch") -> Architecture:
    if not isinstance(arch, Architecture):
        raise TypeError(f"{what} must be an Architecture, got {arch!r}")
    if arch not in space:
        raise ValueError(f"{what} {arch} is not in {space!r}")
    return arch


def _check_steps(steps: Any) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    return int(steps)


def _check_weights(space: Space, weights: Any) -> torch.Tensor:
    rows = space.n_nodes * (space.n_nodes + 1) // 2
    if not isinstance(weights, torch.Tensor) or weights.shape != (rows, len(space.ops)):
        shape = (
            tuple(weights.shape) if isinstance(weights, torch.Tensor) else type(weights).__name__
        )
        raise ValueError(
            f"weights must be a tensor of shape ({rows}, {len(space.ops)}) for {space!r}, got {shape}"
        )
    return weights


def _check_state(env: TabularEnv | ToyMixtureEnv, state: Any, identity: dict[str, Any]) -> None:
    """Raise a ValueError unless `state` is `env`'s kind of state, saved for the same problem."""
    name = type(env).__name__
    if not isinstance(state, Mapping) or state.get("format") != identity["format"]:
        found = state.get("format") if isinstance(state, Mapping) else type(state).__name__
        raise ValueError(f"not a {name} state (format {found!r}, expected {identity['format']!r})")
    for key, value in identity.items():
        if state.get(key) != value:
            raise ValueError(
                f"{name} state was saved with {key} {state.get(key)!r}, this env has {value!r}"
            )


def node_choice_probs(weights: torch.Tensor, n_nodes: int) -> list[torch.Tensor]:
    """Per node j, its block of rows normalised into a distribution over (pred, op) choices.

    weights (n(n+1)/2, K) -> list of n tensors, node j's of shape (j, K) summing to 1. A one-hot
    architecture table gives one-hot blocks; DARTS's row-wise softmax gives each pred 1/j.
    """
    blocks = []
    for j in range(1, n_nodes + 1):
        block = weights[_alpha_row(j, 0) : _alpha_row(j, 0) + j]  # (j, K)
        blocks.append(block / block.sum().clamp_min(1e-12))
    return blocks


class TabularEnv:
    """A SearchEnv whose perplexities are looked up in a table; nothing is trained.

    `table` maps each architecture to its validation perplexity (a dict, or a function for
    spaces too big to list). `evaluate` returns that value, times exp(noise * z) with z a
    standard normal drawn from (seed, architecture, offset, batches): the same question always
    gets the same answer, as with a fixed supernet, and different validation batches differ.

    DARTS on a table: `mixture_loss` is the additive surrogate of log perplexity, mean log ppl
    + sum over nodes of the node's (pred, op) distribution (`node_choice_probs`) dotted with
    per-choice scores, where a choice's score is the mean log ppl of the architectures that
    make that choice minus the overall mean. On one-hot cells it is exact for complete tables
    additive in log ppl (the main-effects model of the table otherwise). There are no shared
    weights (`parameters()` is empty), so second-order DARTS reduces to first order here.
    """

    def __init__(
        self,
        space: Space,
        table: Table,
        noise: float = 0.0,
        seed: int = 0,
        steps_per_epoch: int = 10,
    ) -> None:
        self._space = _check_space(space)
        if isinstance(table, Mapping):
            for arch, value in table.items():
                if not isinstance(arch, Architecture):
                    raise TypeError(f"table keys must be Architectures, got {arch!r}")
                if not (
                    isinstance(value, int | float | np.number)
                    and math.isfinite(value)
                    and value > 0
                ):
                    raise ValueError(
                        f"table value for {arch} must be a perplexity > 0, got {value!r}"
                    )
            self._table: dict[Architecture, float] | None = {
                arch: float(value) for arch, value in table.items() if arch in space
            }
            if not self._table:
                raise ValueError(f"table has no architecture of {space!r}")
            self._lookup: Callable[[Architecture], float] | None = None
        elif callable(table):
            self._table = None
            self._lookup = table
        else:
            raise TypeError(
                f"table must be a dict Architecture -> float or a callable, got {table!r}"
            )
        if not (isinstance(noise, int | float) and math.isfinite(noise) and noise >= 0):
            raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
        self.noise = float(noise)
        self.seed = int(seed)
        self._steps_per_epoch = _check_steps(steps_per_epoch)
        self.train_steps = 0  # training minibatches asked for so far (train_shared is a no-op)
        self.evaluations = 0  # calls to evaluate so far
        self._edge_scores: np.ndarray | None = None
        self._mean_log_ppl = 0.0

    @classmethod
    def from_records(
        cls,
        space: Space,
        records: Iterable[Mapping[str, Any]],
        value: str = "valid_ppl",
        **kwargs: Any,
    ) -> TabularEnv:
        """A table from ground-truth records like `{"architecture": "tanh:0 relu:1", value: ppl}`
        (what `nas run ground-truth` writes). Records of one architecture (several seeds) are
        averaged; records whose value is missing or not finite (diverged runs) are skipped."""
        sums: dict[Architecture, list[float]] = {}
        for k, record in enumerate(records):
            if "architecture" not in record:
                raise ValueError(f"record {k} has no 'architecture' field: {dict(record)!r}")
            arch = Architecture.parse(record["architecture"])
            ppl = record.get(value)
            if isinstance(ppl, int | float) and math.isfinite(ppl):
                sums.setdefault(arch, []).append(float(ppl))
        if not sums:
            raise ValueError(f"no record has a finite {value!r}")
        return cls(space, {arch: float(np.mean(v)) for arch, v in sums.items()}, **kwargs)

    @property
    def space(self) -> Space:
        return self._space

    @property
    def steps_per_epoch(self) -> int:
        return self._steps_per_epoch

    def true_ppl(self, arch: Architecture) -> float:
        """The table's value for `arch`, without noise."""
        _check_in_space(self._space, arch)
        if self._table is not None:
            if arch not in self._table:
                raise ValueError(f"architecture {arch} is not in the table")
            return self._table[arch]
        value = float(self._lookup(arch))  # type: ignore[misc]
        if not (math.isfinite(value) and value > 0):
            raise ValueError(
                f"table function returned {value!r} for {arch}; expected a perplexity > 0"
            )
        return value

    def train_shared(
        self,
        arch: Architecture | None = None,
        weights: torch.Tensor | None = None,
        steps: int = 1,
    ) -> float:
        steps = _check_steps(steps)
        if arch is not None:
            _check_in_space(self._space, arch)
        if weights is not None:
            _check_weights(self._space, weights)
        self.train_steps += steps
        return 0.0

    def evaluate(self, arch: Architecture, batches: int = 1, offset: int = 0) -> float:
        value = self.true_ppl(arch)
        self.evaluations += 1
        if self.noise == 0.0:
            return value
        rng = np.random.default_rng([self.seed, self._space.index(arch), int(offset), int(batches)])
        return float(value * math.exp(self.noise * rng.standard_normal()))

    def state_dict(self) -> dict[str, Any]:
        """What a search changes: the question counters (the answers depend on nothing else)."""
        return {
            **self._identity(),
            "train_steps": self.train_steps,
            "evaluations": self.evaluations,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _check_state(self, state, self._identity())
        self.train_steps = int(state["train_steps"])
        self.evaluations = int(state["evaluations"])

    def _identity(self) -> dict[str, Any]:
        return {
            "format": "naseval.tabular/1",
            "space": self._space.to_dict(),
            "noise": self.noise,
            "seed": self.seed,
        }

    def edge_scores(self) -> np.ndarray:
        """Per (node, pred) row and op: the choice's centred mean log ppl (see the class doc)."""
        if self._edge_scores is None:
            self._edge_scores = self._compute_edge_scores()
        return self._edge_scores

    def _compute_edge_scores(self) -> np.ndarray:
        space = self._space
        if self._table is not None:
            archs: Iterable[Architecture] = self._table
        elif space.size <= _MARGINAL_ENUMERATION_LIMIT:
            archs = space
        else:
            rng = np.random.default_rng(self.seed)
            archs = [space.sample(rng) for _ in range(_MARGINAL_SAMPLES)]
        rows = space.n_nodes * (space.n_nodes + 1) // 2
        total = np.zeros((rows, len(space.ops)))
        count = np.zeros((rows, len(space.ops)))
        log_ppls = []
        for arch in archs:
            log_ppl = math.log(self.true_ppl(arch))
            log_ppls.append(log_ppl)
            one_hot = arch.to_alpha(space.ops)  # the cell's (node, pred) rows, on its ops
            total += log_ppl * one_hot
            count += one_hot
        self._mean_log_ppl = float(np.mean(log_ppls))
        return np.where(count > 0, total / np.maximum(count, 1) - self._mean_log_ppl, 0.0)

    def mixture_loss(self, weights: torch.Tensor, split: str) -> torch.Tensor:
        if split not in ("train", "valid"):
            raise ValueError(f"split must be 'train' or 'valid', got {split!r}")
        _check_weights(self._space, weights)
        scores = torch.as_tensor(self.edge_scores(), dtype=weights.dtype, device=weights.device)
        blocks = node_choice_probs(weights, self._space.n_nodes)
        loss = weights.new_tensor(self._mean_log_ppl)
        for j, block in enumerate(blocks, start=1):
            loss = loss + (block * scores[_alpha_row(j, 0) : _alpha_row(j, 0) + j]).sum()
        return loss

    def parameters(self) -> list[torch.nn.Parameter]:
        return []


class ToyMixtureEnv:
    """A differentiable SearchEnv with a planted optimal architecture, for testing DARTS.

    Shared weights theta have the alpha layout (n(n+1)/2, K). With w the mixture weights
    (an architecture's one-hot table for single-path calls), T the target table:

        L_train(w, theta) = sum (theta - w)^2                         theta*(alpha) = w
        L_valid(w, theta) = sum (theta - T)^2 + mu * sum (w - T)^2

    so the bilevel optimum is w = T. T's rows for the planted architecture's edges are one-hot
    on the planted op; every other row is a flat distribution (largest entry < 1/2), so
    `Architecture.from_alpha(T)` is the planted architecture, and so is the single path with
    the lowest `evaluate`. Every minibatch is the same, so the losses are exact functions of
    (w, theta): finite differences check DARTS's hypergradient against them.
    """

    def __init__(
        self,
        space: Space,
        optimum: Architecture | None = None,
        *,
        seed: int = 0,
        lr: float = 0.5,
        mu: float = 1.0,
        steps_per_epoch: int = 10,
        dtype: torch.dtype = torch.float64,
        device: str | torch.device = "cpu",
    ) -> None:
        self._space = _check_space(space)
        rng = np.random.default_rng(seed)
        self.optimum = (
            space.sample(rng) if optimum is None else _check_in_space(space, optimum, "optimum")
        )
        if not (isinstance(lr, int | float) and lr > 0):
            raise ValueError(f"lr must be > 0, got {lr!r}")
        if not (isinstance(mu, int | float) and mu >= 0):
            raise ValueError(f"mu must be >= 0, got {mu!r}")
        self.lr = float(lr)
        self.mu = float(mu)
        self._steps_per_epoch = _check_steps(steps_per_epoch)
        self._rng = rng
        k = len(space.ops)
        rows = space.n_nodes * (space.n_nodes + 1) // 2
        # Flat rows: 70% uniform + 30% of a random distribution, so their largest entry is < 1/2.
        target = 0.7 / k + 0.3 * rng.dirichlet(np.ones(k), size=rows)
        for j, node in enumerate(self.optimum.nodes, start=1):
            target[_alpha_row(j, node.pred)] = np.eye(k)[space.ops.index(node.op)]
        self.target = target  # (rows, K)
        self._target = torch.as_tensor(target, dtype=dtype, device=device)
        self.theta = torch.nn.Parameter(
            torch.as_tensor(rng.normal(0, 0.1, (rows, k)), dtype=dtype, device=device)
        )

    @property
    def space(self) -> Space:
        return self._space

    @property
    def steps_per_epoch(self) -> int:
        return self._steps_per_epoch

    def _one_hot(self, arch: Architecture) -> torch.Tensor:
        return torch.as_tensor(
            arch.to_alpha(self._space.ops), dtype=self.theta.dtype, device=self.theta.device
        )

    def _loss(self, w: torch.Tensor, theta: torch.Tensor, split: str) -> torch.Tensor:
        if split == "train":
            return ((theta - w) ** 2).sum()
        if split == "valid":
            t = self._target
            return ((theta - t) ** 2).sum() + self.mu * ((w - t) ** 2).sum()
        raise ValueError(f"split must be 'train' or 'valid', got {split!r}")

    def train_shared(
        self,
        arch: Architecture | None = None,
        weights: torch.Tensor | None = None,
        steps: int = 1,
    ) -> float:
        steps = _check_steps(steps)
        if arch is not None and weights is not None:
            raise ValueError("pass either arch or weights, not both")
        if arch is not None:
            _check_in_space(self._space, arch)
        if weights is not None:
            _check_weights(self._space, weights)
        losses = []
        for _ in range(steps):
            if weights is not None:
                w = weights.detach().to(self.theta)
            else:
                w = self._one_hot(arch if arch is not None else self._space.sample(self._rng))
            loss = self._loss(w, self.theta, "train")
            (grad,) = torch.autograd.grad(loss, [self.theta])
            with torch.no_grad():
                self.theta.sub_(self.lr * grad)
            losses.append(float(loss.detach()))
        return float(np.mean(losses))

    def evaluate(self, arch: Architecture, batches: int = 1, offset: int = 0) -> float:
        _check_in_space(self._space, arch)
        with torch.no_grad():
            return math.exp(float(self._loss(self._one_hot(arch), self.theta, "valid")))

    def mixture_loss(self, weights: torch.Tensor, split: str) -> torch.Tensor:
        _check_weights(self._space, weights)
        return self._loss(weights, self.theta, split)

    def state_dict(self) -> dict[str, Any]:
        """What a search changes: theta and the stream of uniform cells `train_shared` draws."""
        return {
            **self._identity(),
            "theta": self.theta.detach().clone(),
            "rng": self._rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _check_state(self, state, self._identity())
        with torch.no_grad():
            self.theta.copy_(state["theta"])
        self._rng.bit_generator.state = state["rng"]

    def _identity(self) -> dict[str, Any]:
        return {
            "format": "naseval.toy-mixture/1",
            "space": self._space.to_dict(),
            "optimum": str(self.optimum),
            "lr": self.lr,
            "mu": self.mu,
        }

    def parameters(self) -> list[torch.nn.Parameter]:
        return [self.theta]
