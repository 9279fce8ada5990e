"""Training-step throughput of the evaluation model against the per-timestep reference.

    .venv/bin/pytest benchmarks/bench_model.py --benchmark-only

Sizes as in the issue: DARTS_V2, hidden 300, batch 64, bptt 35, vocabulary 10,000. Figures are
recorded in docs/benchmarks.md; nothing here asserts a speed.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from naseval.trainer import DARTS_V2, TrainConfig, bench_train_step, build_model
from naseval.trainer.bench import make_train_step
from naseval.trainer.reference import ReferenceLM

VOCAB = 10_000
CONFIG = TrainConfig.darts_search(batch_size=64)  # hidden 300, bptt 35, the DARTS dropouts


@pytest.fixture(scope="module")
def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("implementation", ["fast", "reference"])
def test_train_step(benchmark: Any, implementation: str, device: torch.device) -> None:
    model: torch.nn.Module = build_model(DARTS_V2, VOCAB, CONFIG.nhid, seed=0).to(device)
    if implementation == "reference":
        model = ReferenceLM.from_model(model)  # type: ignore[arg-type]
    step = make_train_step(model, CONFIG, VOCAB, device)
    benchmark.extra_info["tokens_per_step"] = CONFIG.batch_size * CONFIG.bptt
    benchmark.pedantic(step, rounds=8, warmup_rounds=2)


def test_ratio_same_run(benchmark: Any, device: torch.device) -> None:
    """Both models measured interleaved in one call: the ratio is the figure to compare."""
    result = benchmark.pedantic(bench_train_step, args=(CONFIG, DARTS_V2, device),
                                kwargs={"steps": 8, "warmup": 2}, rounds=1, iterations=1)
    benchmark.extra_info.update(result)


@pytest.mark.parametrize("decoder", ["fused", "plain"])
def test_decoder_step(benchmark: Any, decoder: str, device: torch.device) -> None:
    """Tied decoder + cross-entropy, forward and backward, on 64 x 35 rows."""
    from naseval.trainer.model import TiedDecoderLoss

    gen = torch.Generator().manual_seed(0)
    rows = CONFIG.batch_size * CONFIG.bptt
    weight = (torch.randn(VOCAB, CONFIG.nhid, generator=gen) * 0.1).to(device).requires_grad_()
    bias = torch.zeros(VOCAB, device=device, requires_grad=True)
    x = torch.randn(rows, CONFIG.nhid, generator=gen).to(device).requires_grad_()
    targets = torch.randint(VOCAB, (rows,), generator=gen).to(device)

    def step() -> None:
        if decoder == "fused":
            loss = TiedDecoderLoss.apply(x, weight, bias, targets)
        else:
            loss = torch.nn.functional.cross_entropy(
                torch.nn.functional.linear(x, weight, bias), targets)
        loss.backward()
        if device.type == "cuda":  # time the kernels, not just their launches
            torch.cuda.synchronize(device)

    benchmark.pedantic(step, rounds=8, warmup_rounds=1)
