"""Throughput of the weight-sharing mixture and of batched training, against their baselines.

`nas bench` and `benchmarks/bench_{supernet,batched}.py` call these. As in `bench.py`, the
variants' steps are interleaved so that load from other processes hits them alike, and every
figure is a ratio measured in the same run.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from naseval.space import Space
from naseval.trainer.batched import _Batch
from naseval.trainer.bench import make_train_step
from naseval.trainer.config import TrainConfig
from naseval.trainer.corpus import Corpus
from naseval.trainer.device import resolve_device, synchronize
from naseval.trainer.model import build_model, lm_loss
from naseval.trainer.reference_mixture import reference_mixture
from naseval.trainer.supernet import SharedLM
from naseval.trainer.train import dropouts_of


def _interleaved(runners: dict[str, Callable[[], int]], steps: int, warmup: int,
                 device: torch.device) -> dict[str, float]:
    """Tokens per second of each runner (it returns the tokens it trained on), round-robin."""
    for run in runners.values():
        for _ in range(warmup):
            run()
    seconds, tokens = dict.fromkeys(runners, 0.0), dict.fromkeys(runners, 0)
    for _ in range(steps):
        for name, run in runners.items():
            synchronize(device)
            start = time.perf_counter()
            tokens[name] += run()
            synchronize(device)
            seconds[name] += time.perf_counter() - start
    return {name: tokens[name] / seconds[name] for name in runners}


def bench_mixture(
    config: TrainConfig | None = None, n_nodes: int = 8, sharing: str = "node",
    vocab_size: int = 10_000, device: str | torch.device = "auto", steps: int = 3,
    warmup: int = 1, seed: int = 0,
) -> dict[str, float | int | str]:
    """Mixture training-step tokens/s: folded `forward_mixture` vs the DARTS reference.

    Default sizes: the DARTS search network (hidden 300) at batch 64, bptt 35, 8 nodes, BatchNorm
    on, with AR/TAR, clipping and SGD. "folded" is the step Supernet.train_shared runs
    (SharedLM.loss: folded mixture, fused tied decoder); two baselines with a plain decoder:
    "reference" (DARTS's code: one matmul per node, the ops' highway updates unfolded) and
    "reference_per_op" (one matmul per node and op).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    config = config or TrainConfig.darts_search(batch_size=64)
    dev = resolve_device(device)
    gen = torch.Generator().manual_seed(seed)
    lm = SharedLM(Space(n_nodes), vocab_size, config.nhid, sharing, batchnorm=True,
                  dropouts=dropouts_of(config), generator=gen).to(dev)
    rows = n_nodes * (n_nodes + 1) // 2
    weights = torch.softmax(torch.randn(rows, len(lm.ops), generator=gen), -1).to(dev)
    tokens = torch.randint(vocab_size, (config.bptt + 1, config.batch_size), generator=gen).to(dev)
    hidden = lm.init_hidden(config.batch_size)
    mask_gen = torch.Generator(device=dev).manual_seed(seed)
    optimizer = torch.optim.SGD(lm.parameters(), lr=config.lr, weight_decay=config.wdecay)

    def step(forward: Callable[..., object] | None) -> Callable[[], int]:
        """A training step through `forward` (an LMOutput) or, for None, SharedLM.loss."""
        def run() -> int:
            masks = lm.sample_masks(config.batch_size, mask_gen)
            optimizer.zero_grad(set_to_none=True)
            if forward is None:  # what Supernet.train_shared runs
                loss = lm.loss(tokens[:-1], tokens[1:], hidden, weights, masks, config.alpha,
                               config.beta)[0]
            else:
                out = forward(lm, tokens[:-1], hidden, weights, masks)
                loss = lm_loss(out, tokens[1:], config.alpha, config.beta)[0]  # type: ignore[arg-type]
            loss.backward()
            torch.nn.utils.clip_grad_norm_(lm.parameters(), config.clip)
            optimizer.step()
            return tokens[1:].numel()
        return run

    speed = _interleaved({
        "folded": step(None),
        "reference": step(reference_mixture),
        "reference_per_op": step(lambda m, tokens, hidden, weights, masks: reference_mixture(
            m, tokens, hidden, weights, masks, matmul_per_op=True)),
    }, steps, warmup, dev)
    return {
        "device": str(dev), "nhid": config.nhid, "batch_size": config.batch_size,
        "bptt": config.bptt, "n_nodes": n_nodes, "sharing": sharing, "vocab_size": vocab_size,
        "steps": steps, "threads": torch.get_num_threads(),
        "folded_tokens_per_s": speed["folded"],
        "reference_tokens_per_s": speed["reference"],
        "reference_per_op_tokens_per_s": speed["reference_per_op"],
        "ratio": speed["folded"] / speed["reference"],
        "ratio_per_op": speed["folded"] / speed["reference_per_op"],
    }


def bench_batched(
    n_nodes: int = 2, members: int = 32, nhid: int = 64, batch_size: int = 64, bptt: int = 35,
    vocab_size: int = 10_000, device: str | torch.device = "auto", steps: int = 2,
    warmup: int = 1, seed: int = 0, group_size: int | None = None,
) -> dict[str, float | int | str]:
    """One training step of `members` architectures: batched vs one DartsLM after another.

    The members are the first `members` architectures of Space(n_nodes), all with one seed (so
    their BPTT windows agree, as in one seed's ground truth). Both sides do the whole step:
    masks, forward, loss with AR/TAR, backward, clipping, SGD. The batched side draws its window
    lengths as training does (the sequential side uses bptt): throughput counts real tokens.
    `group_size` batches at most that many members together, as train_batched's option does.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    dev = resolve_device(device)
    space = Space(n_nodes)
    if members > space.size:
        raise ValueError(f"Space({n_nodes}) has {space.size} architectures, fewer than {members}")
    archs = [space.at(i) for i in range(members)]
    config = TrainConfig.darts_eval(emsize=nhid, nhid=nhid, nhidlast=nhid, batch_size=batch_size,
                                    bptt=bptt)
    gen = torch.Generator().manual_seed(seed)
    rows = (bptt + config.max_seq_len_delta + 2) * (steps + warmup + 1) * 4
    corpus = Corpus(torch.randint(vocab_size, (rows * batch_size,), generator=gen),
                    torch.randint(vocab_size, (1000,), generator=gen),
                    torch.randint(vocab_size, (1000,), generator=gen),
                    vocab=[f"w{i}" for i in range(vocab_size)])
    size = members if group_size is None else group_size
    groups = [_Batch(archs[lo : lo + size], [seed] * len(archs[lo : lo + size]), corpus, config,
                     dev, None, None) for lo in range(0, members, size)]
    singles = [make_train_step(build_model(a, vocab_size, nhid, dropouts_of(config), seed=seed)
                               .to(dev), config, vocab_size, dev, seed) for a in archs]

    def one_after_another() -> int:
        for run in singles:
            run()
        return members * batch_size * bptt

    def all_at_once() -> int:  # windows are drawn per step: count the tokens really trained
        done = 0
        for batched in groups:
            before = sum(m.progress.loss_tokens for m in batched.members)
            batched.train_step()
            done += sum(m.progress.loss_tokens for m in batched.members) - before
        return done

    speed = _interleaved({"batched": all_at_once, "sequential": one_after_another}, steps,
                         warmup, dev)
    return {
        "device": str(dev), "members": members, "group_size": size, "n_nodes": n_nodes,
        "nhid": nhid,
        "batch_size": batch_size, "bptt": bptt, "vocab_size": vocab_size, "steps": steps,
        "threads": torch.get_num_threads(),
        "batched_tokens_per_s": speed["batched"],
        "sequential_tokens_per_s": speed["sequential"],
        "ratio": speed["batched"] / speed["sequential"],
    }
