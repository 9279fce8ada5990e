"""A search killed after an epoch resumes on the trainer's real supernet, bit for bit.

The supernet's `state_dict` (weights, SGD state, mask generator, BPTT and path streams, cursors,
carried hidden states) travels in the policy's checkpoint: a rerun with a fresh supernet and the
same file must end with the same result and the same supernet as a search nobody stopped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from naseval.policies import Budget, FileCheckpoint, SearchResult, make_policy
from naseval.space import Space
from naseval.trainer import Corpus, Supernet, TrainConfig

SPACE = Space(3)
SETTINGS: dict[str, dict[str, Any]] = {
    "enas": {"controller_steps": 3, "final_samples": 4, "lstm_size": 16},
    "darts": {"xi": 5.0},  # xi = the tiny config's weight lr
}
BUDGET = Budget(epochs=3, steps_per_epoch=2)
SEED = 5


class Killed(Exception):
    """Stands for the process dying."""


@pytest.fixture(scope="module")
def corpus() -> Any:
    return Corpus.synthetic(vocab_size=30, train_tokens=2000, valid_tokens=600, seed=0)


def search(
    name: str, corpus: Any, checkpoint: FileCheckpoint | None, callback: Any = None
) -> tuple[SearchResult, Supernet]:
    policy = make_policy(name, SETTINGS[name])
    env = Supernet(
        SPACE,
        corpus,
        TrainConfig.tiny(lr=5.0),
        mode="mixture" if policy.needs_mixture else "single",
        seed=SEED,
        device="cpu",
    )
    return policy.search(env, BUDGET, np.random.default_rng(SEED), callback, checkpoint), env


def assert_same(a: Any, b: Any, where: str = "supernet") -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), where
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.mark.parametrize("name", list(SETTINGS))
def test_a_search_killed_after_epoch_two_resumes_on_the_supernet(
    name: str, corpus: Any, tmp_path: Path
) -> None:
    expected, env = search(name, corpus, FileCheckpoint(tmp_path / "whole.pt"))

    checkpoint = FileCheckpoint(tmp_path / "killed.pt")

    def kill_after_epoch_two(entry: dict[str, Any]) -> None:
        if entry["epoch"] == 2:
            raise Killed

    with pytest.raises(Killed):
        search(name, corpus, checkpoint, kill_after_epoch_two)
    sent: list[dict[str, Any]] = []
    resumed, resumed_env = search(name, corpus, checkpoint, sent.append)

    assert resumed.to_dict() == expected.to_dict()
    assert [e["epoch"] for e in sent] == [e["epoch"] for e in expected.history[2:]]
    assert resumed_env.step == env.step == BUDGET.epochs * 2
    assert_same(resumed_env.state_dict(), env.state_dict())
