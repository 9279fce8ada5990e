"""What a plan will cost here: trained tokens per job, at throughputs measured on this device."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from naseval.cli.plan import JobSpec

# A search step costs more than a plain training step: DARTS runs every edge of the mixture and
# an architecture step, ENAS/NAO add controller updates and validation rewards. Rough factors.
SEARCH_OVERHEAD = {"darts": 4.0, "enas": 1.5, "nao": 1.5, "random-ws": 1.2, "random": 0.0}
EVAL_OVERHEAD = 1.35  # validation passes after each epoch (about a third of a training step)


@dataclass(frozen=True)
class Estimate:
    """Predicted cost of the jobs of a plan on one device."""

    jobs: int  # jobs the plan will run (before reuse)
    seconds: float  # predicted wall time, run one after another
    tokens_per_s: dict[int, float]  # measured training throughput by hidden size


def _train_tokens(config: Mapping[str, Any], data: Mapping[str, Any]) -> float:
    batch, bptt = int(config["batch_size"]), int(config["bptt"])
    corpus_tokens = data.get("train_tokens") or 929_589
    if data.get("corpus") == "synthetic":
        corpus_tokens = data.get("synthetic_tokens", 4000)
    steps = max(1, int(corpus_tokens) // (batch * bptt))
    if config.get("max_steps_per_epoch"):
        steps = min(steps, int(config["max_steps_per_epoch"]))
    return float(config["epochs"]) * steps * batch * bptt


def job_tokens(spec: JobSpec) -> tuple[int, float]:
    """(hidden size, training tokens weighted by overhead) of one job."""
    config = spec.config
    if spec.command == "search":
        if "supernet" not in config:
            return 0, 0.0
        supernet, budget = config["supernet"], config["budget"]
        steps = budget.get("steps_per_epoch") or max(1, _train_tokens(supernet, config["data"])
                                                   // (supernet["epochs"] * supernet["batch_size"] * supernet["bptt"]))
        tokens = budget["epochs"] * steps * supernet["batch_size"] * supernet["bptt"]
        return int(supernet["nhid"]), tokens * SEARCH_OVERHEAD.get(str(spec.policy), 1.5)
    if spec.command == "train":
        return int(config["train"]["nhid"]), _train_tokens(config["train"], config["data"]) * EVAL_OVERHEAD
    if spec.command == "ground-truth":
        from naseval.space import Space

        n_archs = Space.from_dict(dict(spec.space)).size
        return int(config["train"]["nhid"]), _train_tokens(config["train"], config["data"]) * EVAL_OVERHEAD * n_archs
    if spec.command == "ws-ranking":
        return int(config["supernet"]["nhid"]), _train_tokens(config["supernet"], config["data"]) * EVAL_OVERHEAD
    return 0, 0.0


def measure_throughput(configs: Sequence[Mapping[str, Any]], device: str,
                       threads: int = 1) -> dict[int, float]:
    """Tokens/s of a training step at each distinct hidden size (a couple of steps each), with
    the torch threads a job gets."""
    import torch


    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _measure(configs, device)
    finally:
        torch.set_num_threads(previous)


MEASURE_BATCH = 16  # a throughput probe uses at most this batch and BPTT: seconds, not minutes
MEASURE_BPTT = 20


def _measure(configs: Sequence[Mapping[str, Any]], device: str) -> dict[int, float]:
    from naseval.trainer import TrainConfig
    from naseval.trainer.bench import bench_train_step

    out: dict[int, float] = {}
    for values in configs:
        config = TrainConfig.from_dict({k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
        if config.nhid in out:
            continue
        probe = config.replace(batch_size=min(config.batch_size, MEASURE_BATCH),
                               bptt=min(config.bptt, MEASURE_BPTT))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = bench_train_step(probe, device=device, steps=1, warmup=1, reference=False)
        out[config.nhid] = float(result["fast_tokens_per_s"])
    return out


def estimate(jobs: Sequence[tuple[JobSpec, int]], device: str) -> Estimate:
    """Predicted wall time of `jobs`: (a representative spec, how many jobs like it)."""
    configs = [spec.config[key] for spec, _ in jobs for key in ("train", "supernet") if key in spec.config]
    threads = max(1, int(jobs[0][0].num_cpus)) if jobs else 1
    throughput = measure_throughput(configs, device, threads) if configs else {}
    seconds = 0.0
    for spec, count in jobs:
        nhid, tokens = job_tokens(spec)
        if tokens and nhid in throughput:
            seconds += count * tokens / throughput[nhid]
    return Estimate(jobs=sum(count for _, count in jobs),
                    seconds=seconds if math.isfinite(seconds) else 0.0, tokens_per_s=throughput)
