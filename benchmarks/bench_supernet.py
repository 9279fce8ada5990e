"""Mixture (DARTS search) training-step throughput: folded vs the DARTS reference mixture.

    .venv/bin/pytest benchmarks/bench_supernet.py --benchmark-only

Sizes as in the issue: hidden 300, batch 64, bptt 35, 8 nodes, vocabulary 10,000, BatchNorm on.
The figure to compare is the ratio measured in one interleaved run (test_ratio_same_run); it is
recorded in docs/benchmarks.md. Nothing here asserts a speed.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from naseval.trainer import TrainConfig
from naseval.trainer.bench_ws import bench_mixture

CONFIG = TrainConfig.darts_search(batch_size=64)  # hidden 300, bptt 35, the DARTS dropouts


@pytest.fixture(scope="module")
def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("sharing", ["node", "edge-op"])
def test_ratio_same_run(benchmark: Any, device: torch.device, sharing: str) -> None:
    """Folded, DARTS reference and per-op reference interleaved in one call."""
    result = benchmark.pedantic(bench_mixture, args=(CONFIG,),
                                kwargs={"sharing": sharing, "device": device, "steps": 3,
                                        "warmup": 1}, rounds=1, iterations=1)
    benchmark.extra_info.update(result)
