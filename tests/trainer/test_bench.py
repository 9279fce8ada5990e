from __future__ import annotations

import pytest

from naseval.space import Architecture
from naseval.trainer import TrainConfig, bench_train_step, estimate_epoch_seconds


def test_bench_reports_both_models_and_their_ratio() -> None:
    config = TrainConfig.tiny()
    result = bench_train_step(config, Architecture.parse("tanh:0 relu:1"), "cpu", steps=2,
                              vocab_size=50, warmup=1)
    assert (result["nhid"], result["batch_size"], result["bptt"], result["steps"]) == (16, 8, 10, 2)
    fast, reference = float(result["fast_tokens_per_s"]), float(result["reference_tokens_per_s"])
    assert fast > 0 and reference > 0
    assert float(result["ratio"]) == pytest.approx(fast / reference)
    alone = bench_train_step(config, device="cpu", steps=1, vocab_size=50, warmup=0,
                             reference=False)
    assert "ratio" not in alone and float(alone["fast_tokens_per_s"]) > 0
    with pytest.raises(ValueError, match="steps"):
        bench_train_step(config, steps=0)


def test_epoch_cost_estimate() -> None:
    assert estimate_epoch_seconds(929_589, 1000.0, epochs=2) == pytest.approx(1859.178)
    with pytest.raises(ValueError, match="tokens_per_s"):
        estimate_epoch_seconds(10, 0.0)
