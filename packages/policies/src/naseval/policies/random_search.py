"""The baselines: Random (the paper's) and random search with weight sharing (Li & Talwalkar)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from naseval.policies.base import (
    SINGLE_PATH_MEMBERS,
    Budget,
    SearchCallback,
    SearchCheckpoint,
    SearchProgress,
    SearchResult,
    check_count,
    check_search_args,
    finish_with_ranking,
)
from naseval.policies.env import SearchEnv
from naseval.space import Architecture


@dataclass(frozen=True)
class RandomConfig:
    """Random has nothing to set: one uniform draw from the space (Sciuto et al. 2020, sec. 3)."""

    @classmethod
    def small_space(cls) -> RandomConfig:
        return cls()


class RandomPolicy:
    """One architecture drawn uniformly from the space with the seed; nothing is trained."""

    name: ClassVar[str] = "random"
    needs_mixture: ClassVar[bool] = False
    trains_supernet: ClassVar[bool] = False
    Config = RandomConfig

    def __init__(self, config: RandomConfig | None = None) -> None:
        self.config = config or RandomConfig()

    def search(
        self,
        env: SearchEnv,
        budget: Budget,
        rng: np.random.Generator,
        callback: SearchCallback | None = None,
        checkpoint: SearchCheckpoint | None = None,
    ) -> SearchResult:
        """Draw the architecture; with a checkpoint, a rerun returns the saved draw at once
        (the env needs no state: nothing is trained)."""
        check_search_args(env, budget, rng)
        progress = SearchProgress(self, env, budget, rng, callback, checkpoint)
        progress.resume()
        if progress.result is not None:
            return progress.result
        arch = env.space.sample(rng)
        result = SearchResult(
            policy=self.name,
            arch=arch,
            ranking=[],
            score="none: Random ranks nothing, it draws one architecture",
            history=progress.history,
        )
        return progress.finish(result, entry={"epoch": 0, "sampled": [str(arch)]})


@dataclass(frozen=True)
class RandomWSConfig:
    """Random search with weight sharing (Li & Talwalkar 2019, "Random Search and
    Reproducibility for NAS", sec. 4: train the shared weights with a uniformly sampled
    architecture per minibatch, then rank random architectures by shared-weight validation)."""

    final_samples: int = 1000  # architectures ranked at the end (Li & Talwalkar, PTB: 1000)
    eval_batches: int = 1  # validation minibatches per ranked architecture, the same for all

    def __post_init__(self) -> None:
        check_count("RandomWSConfig", "final_samples", self.final_samples)
        check_count("RandomWSConfig", "eval_batches", self.eval_batches, minimum=0)

    @classmethod
    def small_space(cls) -> RandomWSConfig:
        # The 2-node space has 32 cells: rank (in expectation) all of them.
        return cls(final_samples=32)


class RandomWSPolicy:
    """random-WS: uniform single-path supernet training, then the best of N by shared weights."""

    name: ClassVar[str] = "random-ws"
    needs_mixture: ClassVar[bool] = False
    trains_supernet: ClassVar[bool] = True
    Config = RandomWSConfig

    def __init__(self, config: RandomWSConfig | None = None) -> None:
        self.config = config or RandomWSConfig()

    def search(
        self,
        env: SearchEnv,
        budget: Budget,
        rng: np.random.Generator,
        callback: SearchCallback | None = None,
        checkpoint: SearchCheckpoint | None = None,
    ) -> SearchResult:
        """Train, then rank. With a checkpoint: saved after every epoch and at the end (see
        `SearchProgress`); everything the loop carries is in the rng's and the env's state."""
        check_search_args(env, budget, rng, SINGLE_PATH_MEMBERS)
        space = env.space
        steps = budget.steps(env)
        progress = SearchProgress(self, env, budget, rng, callback, checkpoint)
        progress.resume()
        if progress.result is not None:
            return progress.result
        for epoch in range(progress.epoch + 1, budget.epochs + 1):
            losses = []
            for _ in range(steps):
                losses.append(env.train_shared(space.sample(rng), steps=1))
            progress.record({"epoch": epoch, "train_loss": float(np.mean(losses))})

        n = budget.final_samples or self.config.final_samples
        candidates = _unique_samples(space, rng, n)
        return finish_with_ranking(
            progress, self.name, env, candidates, self.config.eval_batches,
            f"validation perplexity under the shared weights on {self.config.eval_batches} "
            "minibatch(es) (0 = the whole split), lower is better",
            budget.epochs,
        )


def _unique_samples(space: Any, rng: np.random.Generator, n: int) -> list[Architecture]:
    """n uniform draws without repeats; all of a space smaller than n, in random order."""
    if n >= space.size:
        return [space.at(int(i)) for i in rng.permutation(space.size)]
    seen: dict[Architecture, None] = {}
    while len(seen) < n:
        seen.setdefault(space.sample(rng), None)
    return list(seen)
