"""Train-step throughput of DartsLM against ReferenceLM, measured in the same run.

`nas bench` and `benchmarks/bench_model.py` call these. Steps of the two models are interleaved
so that load from other processes on a shared machine hits both alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn

from naseval.space import Architecture
from naseval.trainer.config import TrainConfig
from naseval.trainer.device import resolve_device, synchronize
from naseval.trainer.model import DARTS_V2, DartsLM, build_model, lm_loss, sample_masks
from naseval.trainer.reference import ReferenceLM
from naseval.trainer.train import dropouts_of


def make_train_step(model: nn.Module, config: TrainConfig, vocab_size: int,
                    device: torch.device, seed: int = 0) -> Callable[[], float]:
    """A closure running one training step (masks, loss with AR/TAR, clip, SGD) on fixed tokens."""
    gen = torch.Generator().manual_seed(seed)
    batch, steps = config.batch_size, config.bptt
    tokens = torch.randint(vocab_size, (steps + 1, batch), generator=gen).to(device)
    mask_gen = torch.Generator(device=device).manual_seed(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, weight_decay=config.wdecay)
    hidden = torch.zeros(batch, config.nhid, device=device)
    dropouts = dropouts_of(config)

    def step() -> float:
        masks = sample_masks(dropouts, vocab_size, config.nhid, batch, mask_gen, hidden)
        optimizer.zero_grad(set_to_none=True)
        if isinstance(model, DartsLM):  # the path train_architecture takes
            loss = model.loss(tokens[:-1], tokens[1:], hidden, masks, config.alpha, config.beta)[0]
        else:
            out = model(tokens[:-1], hidden, masks)
            loss, _ = lm_loss(out, tokens[1:], config.alpha, config.beta)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
        optimizer.step()
        return float(loss.detach())

    return step


def bench_train_step(
    config: TrainConfig, arch: Architecture = DARTS_V2, device: str | torch.device = "auto",
    steps: int = 10, vocab_size: int = 10_000, warmup: int = 2, reference: bool = True,
) -> dict[str, float | int | str]:
    """Tokens per second of a full training step, for DartsLM and (optionally) ReferenceLM.

    Returns fast_tokens_per_s, reference_tokens_per_s and ratio (fast / reference), plus the
    sizes measured. Each model runs `warmup` untimed steps, then `steps` timed ones interleaved.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    dev = resolve_device(device)
    fast = build_model(arch, vocab_size, config.nhid, seed=0).to(dev)
    runners: dict[str, Callable[[], float]] = {
        "fast": make_train_step(fast, config, vocab_size, dev)}
    if reference:
        runners["reference"] = make_train_step(ReferenceLM.from_model(fast), config, vocab_size,
                                               dev)
    for run in runners.values():
        for _ in range(warmup):
            run()
    seconds = dict.fromkeys(runners, 0.0)
    for _ in range(steps):
        for name, run in runners.items():
            synchronize(dev)
            start = time.perf_counter()
            run()
            synchronize(dev)
            seconds[name] += time.perf_counter() - start
    tokens = steps * config.batch_size * config.bptt
    result: dict[str, float | int | str] = {
        "arch": str(arch), "device": str(dev), "nhid": config.nhid, "batch_size": config.batch_size,
        "bptt": config.bptt, "vocab_size": vocab_size, "steps": steps,
        "threads": torch.get_num_threads(),
        "fast_tokens_per_s": tokens / seconds["fast"],
    }
    if reference:
        result["reference_tokens_per_s"] = tokens / seconds["reference"]
        result["ratio"] = seconds["reference"] / seconds["fast"]
    return result


def estimate_epoch_seconds(train_tokens: int, tokens_per_s: float, epochs: int = 1) -> float:
    """Training time of `epochs` passes over `train_tokens` at a measured throughput.

    Evaluation passes are not included (they cost roughly a third of a training step per token).
    """
    if tokens_per_s <= 0:
        raise ValueError(f"tokens_per_s must be > 0, got {tokens_per_s}")
    return epochs * train_tokens / tokens_per_s
