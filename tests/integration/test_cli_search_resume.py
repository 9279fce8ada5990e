"""A search killed with SIGKILL after some of its epochs and re-run continues from its last
checkpointed epoch: it ends with the architecture, ranking and metrics of an uninterrupted one,
and no metric step is logged twice."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow

EPOCHS = 24
SEARCH = [
    sys.executable, "-m", "naseval.cli.main", "run", "search", "--policy", "enas", "--space", "3",
    "--set", "data.corpus=synthetic", "--set", "data.synthetic_tokens=3000",
    "--set", f"search.budget.epochs={EPOCHS}", "--set", "search.budget.steps_per_epoch=12",
    "--json",
]


def _search_result(stdout: str) -> dict[str, object]:
    """The job's result, without the run ids and timings that differ between invocations."""
    (search,) = json.loads(stdout)["results"]["searches"]
    return {"arch": search["arch"], "search": search["search"]}


def _checkpoint(cwd: Path) -> Path | None:
    found = list((cwd / ".naseval" / "checkpoints").glob("search-*/search.pt"))
    return found[0] if found else None


def _metrics(cwd: Path) -> dict[str, list[tuple[int, float]]]:
    client = MlflowClient(tracking_uri=f"sqlite:///{cwd / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("naseval-search")
    assert experiment is not None
    (job,) = [r for r in client.search_runs([experiment.experiment_id])
              if r.data.tags.get("naseval.kind") == "job"]
    assert job.info.status == "FINISHED"
    # System metrics (system/...) are sampled on a timer: which ones a run gets depends on how
    # long it ran, not on the search.
    return {key: [(m.step, m.value) for m in client.get_metric_history(job.info.run_id, key)]
            for key in job.data.metrics if not key.startswith("system/")}


def test_sigkill_mid_search_then_rerun_continues_and_matches(
        tmp_path: Path, run_cli: Callable[..., subprocess.CompletedProcess[str]],
        sigkill_when: Callable[..., None]) -> None:
    reference_dir, killed_dir = tmp_path / "reference", tmp_path / "killed"
    reference_dir.mkdir()
    killed_dir.mkdir()
    reference = run_cli(SEARCH, reference_dir)
    assert reference.returncode == 0, reference.stderr
    sigkill_when(SEARCH, killed_dir, lambda: _checkpoint(killed_dir) is not None,
                 "search checkpoint")
    checkpoint = _checkpoint(killed_dir)
    assert checkpoint is not None
    saved_epoch = int(torch.load(checkpoint, map_location="cpu", weights_only=True)["epoch"])
    assert 1 <= saved_epoch < EPOCHS  # killed mid-search, not after it

    resumed = run_cli(SEARCH, killed_dir)
    assert resumed.returncode == 0, resumed.stderr
    assert "continuing run" in resumed.stderr
    assert _search_result(resumed.stdout) == _search_result(reference.stdout)

    metrics, expected = _metrics(killed_dir), _metrics(reference_dir)
    assert metrics.keys() == expected.keys()
    for key, logged in metrics.items():
        steps = [step for step, _ in logged]
        assert steps == sorted(set(steps)), (key, steps)  # no step twice
        assert logged == expected[key], key
    assert [step for step, _ in metrics["reward"]] == list(range(1, EPOCHS + 1))
