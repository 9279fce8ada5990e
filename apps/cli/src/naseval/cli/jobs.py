"""Job bodies: build the trainer's and the policies' objects a job needs, run them, log as they go.

Each body takes a `JobContext` and returns a JSON-serialisable result. The job's settings come
from `spec.config` (plain JSON, so the same job runs on a Ray worker); the libraries' config
dataclasses are rebuilt from it here. This is the one module that hands a trainer object (the
supernet) to a policy: they never import each other.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from naseval.cli.execution import JobBody, JobContext
from naseval.space import Architecture, Space


def _space(ctx: JobContext) -> Space:
    return Space.from_dict(dict(ctx.spec.space))


def load_corpus(data: Mapping[str, Any]) -> Any:
    """The corpus a job's `data` settings describe (see presets.DataSettings).

    Loaded once per process and settings: the jobs of a local run share it.
    """
    return _load_corpus(json.dumps(dict(data), sort_keys=True))


@functools.lru_cache(maxsize=2)
def _load_corpus(data_json: str) -> Any:
    from naseval.trainer import Corpus

    data = json.loads(data_json)
    if data.get("corpus") == "synthetic":
        n = int(data.get("synthetic_tokens", 4000))
        corpus = Corpus.synthetic(vocab_size=int(data.get("synthetic_vocab", 50)), train_tokens=n,
                                  valid_tokens=max(n // 4, 200), test_tokens=max(n // 4, 200))
    else:
        corpus = Corpus.ptb(data.get("path"), download=bool(data.get("download", True)))
    return trim_corpus(corpus, data)


def trim_corpus(corpus: Any, data: Mapping[str, Any]) -> Any:
    """Prefixes of the splits, as `train_tokens`/`valid_tokens`/`test_tokens` ask."""
    changes = {}
    for split in ("train", "valid", "test"):
        limit = data.get(f"{split}_tokens")
        if limit is not None:
            changes[split] = getattr(corpus, split)[: int(limit)].clone()
    return dataclasses.replace(corpus, **changes) if changes else corpus


def _train_config(values: Mapping[str, Any]) -> Any:
    from naseval.trainer import TrainConfig

    return TrainConfig.from_dict(_tuples(dict(values)))


def _tuples(values: dict[str, Any]) -> dict[str, Any]:
    """JSON turned tuples into lists; dataclass configs expect tuples back."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _numbers(event: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in event.items():
        if isinstance(value, bool | int | float):
            out[key] = float(value)
    return out


# -- search ----------------------------------------------------------------------------------


def search_job(ctx: JobContext) -> dict[str, Any]:
    """One policy searching the space with one seed, on the weight-sharing supernet.

    The policy checkpoints every epoch under the job's stable checkpoint dir, so a killed
    search continues from its last epoch and ends as an uninterrupted one would.
    """
    from naseval.policies import Budget, FileCheckpoint, make_policy

    config = ctx.spec.config
    space = _space(ctx)
    policy = make_policy(str(ctx.spec.policy), _tuples(dict(config.get("policy", {}))))
    budget = Budget(**config["budget"])
    env = _search_env(ctx, policy, space, config)
    total = budget.epochs

    def on_epoch(entry: dict[str, Any]) -> None:
        step = int(entry.get("epoch", 0))
        ctx.report(step, _numbers({k: v for k, v in entry.items() if k != "epoch"}), total=total)

    checkpoint = FileCheckpoint(ctx.checkpoint_dir / "search.pt")
    saved = checkpoint.load()
    # A policy saves an epoch before its callback sees it and does not resend restored epochs:
    # log the saved ones first (the store skips those it has), so metric steps stay in order.
    for entry in saved["history"] if saved is not None else []:
        on_epoch(entry)
    result = policy.search(env, budget, np.random.default_rng(ctx.spec.seed), callback=on_epoch,
                           checkpoint=checkpoint)
    found = result.to_dict()
    arch = result.arch
    ctx.log_json("genotype.json", arch.to_genotype())
    ctx.set_tags({"arch": str(arch)})
    return {"arch": str(arch), "genotype": arch.to_genotype(), "search": found}


def _search_env(ctx: JobContext, policy: Any, space: Space, config: Mapping[str, Any]) -> Any:
    """The trainer's supernet in the mode the policy needs; a bare env for Random."""
    if not policy.trains_supernet:
        return _SpaceOnly(space)
    from naseval.trainer.supernet import Supernet

    corpus = load_corpus(config["data"])
    return Supernet(
        space, corpus, _train_config(config["supernet"]),
        sharing=config.get("sharing", "node"),
        mode="mixture" if policy.needs_mixture else "single",
        seed=ctx.spec.seed, device=ctx.device,
    )


@dataclasses.dataclass
class _SpaceOnly:
    """What Random needs of an env: the space (it trains nothing, so no supernet is built)."""

    space: Space
    steps_per_epoch: int = 1

    def parameters(self) -> list[Any]:
        return []


# -- training from scratch -------------------------------------------------------------------


def train_job(ctx: JobContext) -> dict[str, Any]:
    """One architecture trained from scratch; continues from its checkpoint when re-run."""
    from naseval.trainer import train_architecture

    config = ctx.spec.config
    arch = Architecture.parse(str(ctx.spec.inputs["arch"]))
    train_config = _train_config(config["train"])
    corpus = load_corpus(config["data"])
    total = train_config.epochs

    def on_event(event: Mapping[str, Any]) -> None:
        if event.get("kind") == "epoch":  # epochs count from 1; so do their metric steps
            ctx.report(int(event["epoch"]), _numbers(event), total=total, done=int(event["epoch"]))
        elif event.get("kind") == "rollback":
            ctx.set_tags({"nan_rollback": json.dumps(dict(event), default=str)})

    result = train_architecture(
        arch, corpus, train_config, seed=int(config.get("train_seed", ctx.spec.seed)),
        device=ctx.device, checkpoint_dir=ctx.checkpoint_dir, callback=on_event,
    )
    record = _as_record(result)
    history = [e for e in record.get("history", []) if isinstance(e, Mapping)]
    for event in history:  # epochs the callback did not see (killed between checkpoint and log)
        ctx.metrics.log(int(event["epoch"]), _numbers(event))
    ctx.log_json("genotype.json", arch.to_genotype())
    return {
        "arch": str(arch),
        "genotype": arch.to_genotype(),
        "valid_ppl": _finite(record.get("best_valid_ppl")),
        "test_ppl": _finite(record.get("test_ppl")),
        "valid_curve": [float(e.get("valid_ppl", math.nan)) for e in history],
        "training": {k: v for k, v in record.items() if k != "history"},
    }


def _as_record(result: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return dataclasses.asdict(result)
    return dict(result)


# -- the small space, exhaustively -------------------------------------------------------------


def ground_truth_job(ctx: JobContext) -> dict[str, Any]:
    """Every architecture of the space trained from scratch with one seed.

    On a GPU all at once with `train_batched`; on a CPU one after another with
    `train_architecture`, which is faster there (the trainer guarantees both give the same
    numbers). Either way every epoch is checkpointed under the job's stable checkpoint dir, so a
    killed ground truth continues where it stopped.
    """
    from naseval.trainer import resolve_device, train_architecture, train_batched

    config = ctx.spec.config
    space = _space(ctx)
    archs = list(space)
    train_config = _train_config(config["train"])
    corpus = load_corpus(config["data"])

    def on_epoch(event: Mapping[str, Any]) -> None:
        if event.get("kind") == "epoch":
            ctx.report(int(event["epoch"]), _numbers(event), total=train_config.epochs,
                       done=int(event["epoch"]))

    if resolve_device(ctx.device).type == "cuda":
        results = [_as_record(r) for r in train_batched(
            archs, corpus, train_config, [ctx.spec.seed] * len(archs), device=ctx.device,
            checkpoint_dir=ctx.checkpoint_dir, callback=on_epoch)]
    else:
        results = []
        for index, arch in enumerate(archs):
            results.append(_as_record(train_architecture(
                arch, corpus, train_config, seed=ctx.spec.seed, device=ctx.device,
                checkpoint_dir=ctx.checkpoint_dir / f"arch-{index:05d}")))
            ctx.report(index, {"valid_ppl": float(results[-1]["best_valid_ppl"])},
                       total=len(archs))
    records = [
        {"architecture": str(arch), "seed": ctx.spec.seed,
         "valid_ppl": _finite(result.get("best_valid_ppl")), "test_ppl": _finite(result.get("test_ppl"))}
        for arch, result in zip(archs, results)
    ]
    return {"records": records}


def ws_ranking_job(ctx: JobContext) -> dict[str, Any]:
    """A supernet trained on uniformly sampled paths, then every architecture scored with it."""
    from naseval.trainer.ranking import ws_ranking
    from naseval.trainer.supernet import Supernet

    config = ctx.spec.config
    space = _space(ctx)
    supernet_config = _train_config(config["supernet"])
    supernet = Supernet(space, load_corpus(config["data"]), supernet_config,
                        sharing=config.get("sharing", "node"), mode="single",
                        seed=ctx.spec.seed, device=ctx.device)
    epochs = supernet_config.epochs
    for epoch in range(epochs):
        loss = supernet.train_shared(None, steps=supernet.steps_per_epoch)
        ctx.report(epoch, {"train_loss": loss}, total=epochs)
    batches = int(config.get("eval_batches", 0))
    scores = {str(arch): ppl for arch, ppl in ws_ranking(supernet, space, batches=batches)}
    best = min(scores, key=lambda a: scores[a])
    ctx.set_tags({"ws_best_arch": best})
    return {"seed": ctx.spec.seed, "scores": scores, "sharing": config.get("sharing", "node")}


JOBS: dict[str, JobBody] = {
    "search": search_job,
    "train": train_job,
    "ground-truth": ground_truth_job,
    "ws-ranking": ws_ranking_job,
}
