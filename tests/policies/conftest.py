"""Shared fixtures: planted tables over small spaces, and single-threaded torch.

The policies' networks are tiny; on a contended 2-core machine torch's intra-op threads spin
against each other and run 50x slower, so these tests use one thread (and restore it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch

from naseval.space import Architecture, Space


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _additive_table(
    space: Space, seed: int, planted: Architecture | None = None, spread: float = 0.15
) -> dict[Architecture, float]:
    """Perplexities additive in log space (one effect per node choice, median ppl ~ 100); if
    `planted` is given, its choice at every node is the best there, so it is the best cell."""
    rng = np.random.default_rng(seed)
    rows = space.n_nodes * (space.n_nodes + 1) // 2
    effects = rng.normal(0.0, spread, (rows, len(space.ops)))
    if planted is not None:
        # At every node the planted pred is the best on average over ops, and the planted op
        # the best of all: a controller choosing pred then op can climb to it.
        for j, node in enumerate(planted.nodes, start=1):
            block = effects[j * (j - 1) // 2 : j * (j + 1) // 2]  # (j, K): node j's choices
            block[node.pred] -= spread
            block[node.pred, space.ops.index(node.op)] = block.min() - spread
    table = {}
    for arch in space:
        log_ppl = 4.6 + sum(
            effects[j * (j - 1) // 2 + node.pred, space.ops.index(node.op)]
            for j, node in enumerate(arch.nodes, start=1)
        )
        table[arch] = math.exp(log_ppl)
    return table


@pytest.fixture(scope="session")
def additive_table() -> Callable[..., dict[Architecture, float]]:
    return _additive_table


@pytest.fixture(scope="session")
def space4() -> Space:
    return Space(4)


@pytest.fixture(scope="session")
def planted4() -> Architecture:
    return Architecture.parse("sigmoid:0 relu:1 tanh:1 identity:2")


@pytest.fixture(scope="session")
def table4(space4: Space, planted4: Architecture) -> dict[Architecture, float]:
    return _additive_table(space4, seed=0, planted=planted4)
