"""Job bodies that stand in for the libraries in CLI framework tests: fast and deterministic.

Selected with NASEVAL_CLI_JOBS=fake_jobs (this folder on sys.path / PYTHONPATH). They log
per-epoch metrics and checkpoint like the real bodies, so resume, failure and executor
behaviour can be tested in seconds. Knobs (environment):
  FAKE_FAIL_POLICY=nao     the search job of that policy raises
  FAKE_EPOCH_SECONDS=0.5   each training epoch sleeps this long (so a test can kill mid-run)
"""

from __future__ import annotations

import json
import os
import time
import zlib
from typing import Any

import numpy as np

from naseval.cli.execution import JobBody, JobContext
from naseval.space import Space


def _space(ctx: JobContext) -> Space:
    return Space.from_dict(dict(ctx.spec.space))


def _score(arch: str, seed: int) -> float:
    """A made-up perplexity: fixed per (architecture, seed)."""
    return 60.0 + (zlib.crc32(f"{arch}/{seed}".encode()) % 4000) / 100.0


def search(ctx: JobContext) -> dict[str, Any]:
    if os.environ.get("FAKE_FAIL_POLICY") == ctx.spec.policy:
        raise RuntimeError(f"injected failure of {ctx.spec.policy}")
    space = _space(ctx)
    rng = np.random.default_rng([ctx.spec.seed, zlib.crc32(str(ctx.spec.policy).encode())])
    epochs = int(ctx.spec.config["budget"]["epochs"])
    sampled = [space.sample(rng) for _ in range(4)]
    for epoch in range(epochs):
        ctx.report(epoch, {"reward": float(epoch + 1), "loss": 5.0 - epoch}, total=epochs)
    arch = min(sampled, key=lambda a: _score(str(a), 0))
    ranking = [[str(a), _score(str(a), 0)] for a in sorted(sampled, key=lambda a: _score(str(a), 0))]
    ctx.log_json("genotype.json", arch.to_genotype())
    return {"arch": str(arch), "genotype": arch.to_genotype(),
            "search": {"policy": ctx.spec.policy, "arch": str(arch), "ranking": ranking, "history": []}}


def train(ctx: JobContext) -> dict[str, Any]:
    arch = str(ctx.spec.inputs["arch"])
    seed = int(ctx.spec.config.get("train_seed", ctx.spec.seed))
    epochs = int(ctx.spec.config["train"]["epochs"])
    pause = float(os.environ.get("FAKE_EPOCH_SECONDS", "0"))
    state_file = ctx.checkpoint_dir / "state.json"
    start = json.loads(state_file.read_text())["next_epoch"] if state_file.exists() else 0
    final = _score(arch, seed)
    curve = [final * (1.0 + 1.0 / (e + 1)) for e in range(epochs)]
    for epoch in range(start, epochs):
        time.sleep(pause)
        ctx.report(epoch, {"valid_ppl": curve[epoch], "train_loss": 6.0 - epoch * 0.1}, total=epochs)
        state_file.write_text(json.dumps({"next_epoch": epoch + 1}))
    return {"arch": arch, "valid_ppl": curve[-1], "test_ppl": curve[-1] * 0.97,
            "valid_curve": curve, "resumed_from_epoch": start}


def ground_truth(ctx: JobContext) -> dict[str, Any]:
    space = _space(ctx)
    records = [
        {"architecture": str(a), "seed": ctx.spec.seed, "valid_ppl": _score(str(a), ctx.spec.seed),
         "test_ppl": _score(str(a), ctx.spec.seed) * 0.97}
        for a in space
    ]
    ctx.report(0, {"archs": float(len(records))}, total=1)
    return {"records": records}


def ws_ranking(ctx: JobContext) -> dict[str, Any]:
    space = _space(ctx)
    scores = {str(a): _score(str(a), 100 + ctx.spec.seed) for a in space}
    ctx.report(0, {"train_loss": 5.0}, total=1)
    return {"seed": ctx.spec.seed, "scores": scores, "sharing": ctx.spec.config.get("sharing")}


JOBS: dict[str, JobBody] = {
    "search": search,
    "train": train,
    "ground-truth": ground_truth,
    "ws-ranking": ws_ranking,
}
