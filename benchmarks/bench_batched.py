"""Ground-truth throughput: 32 architectures of the 2-node space batched vs one after another.

    .venv/bin/pytest benchmarks/bench_batched.py --benchmark-only

Hidden 64 on a CPU (the issue's target: no slower), hidden 256 on a GPU (target: 5x); batch 64,
bptt 35, vocabulary 10,000. Recorded in docs/benchmarks.md; nothing here asserts a speed.
"""

from __future__ import annotations

from typing import Any

import torch

from naseval.trainer.bench_ws import bench_batched


def test_ratio_same_run(benchmark: Any) -> None:
    cuda = torch.cuda.is_available()
    result = benchmark.pedantic(bench_batched, kwargs={
        "members": 32, "nhid": 256 if cuda else 64, "device": "cuda" if cuda else "cpu",
        "steps": 3 if cuda else 2, "warmup": 1}, rounds=1, iterations=1)
    benchmark.extra_info.update(result)
