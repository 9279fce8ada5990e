"""A compare killed with SIGKILL mid-training and re-run ends exactly like an uninterrupted one:
the same table, no duplicate child runs, no metric step logged twice."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow

COMPARE = [
    sys.executable, "-m", "naseval.cli.main", "run", "compare", "--space", "3",
    "--policies", "random,enas", "--seeds", "2",
    "--set", "data.corpus=synthetic", "--set", "data.synthetic_tokens=3000",
    "--set", "search.budget.epochs=1", "--set", "search.budget.steps_per_epoch=4",
    "--set", "evaluation.train.epochs=4", "--set", "evaluation.train.max_steps_per_epoch=10",
]


def _checkpointed_training(cwd: Path) -> bool:
    """A from-scratch training has written a checkpoint (and so is mid-run)."""
    return any(p.is_file() for p in (cwd / ".naseval" / "checkpoints").glob("train-*/**/*"))


def test_sigkill_mid_run_then_rerun_matches_an_uninterrupted_run(
        tmp_path: Path, run_cli: Callable[..., subprocess.CompletedProcess[str]],
        sigkill_when: Callable[..., None]) -> None:
    reference_dir, killed_dir = tmp_path / "reference", tmp_path / "killed"
    reference_dir.mkdir()
    killed_dir.mkdir()
    reference = run_cli(COMPARE, reference_dir)
    assert reference.returncode == 0, reference.stderr
    sigkill_when(COMPARE, killed_dir, lambda: _checkpointed_training(killed_dir),
                 "training checkpoint")

    resumed = run_cli(COMPARE, killed_dir)
    assert resumed.returncode == 0, resumed.stderr
    assert "continuing run" in resumed.stderr
    assert resumed.stdout == reference.stdout  # the same table, digit for digit

    client = MlflowClient(tracking_uri=f"sqlite:///{killed_dir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("naseval-compare")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    kinds = Counter(r.data.tags.get("naseval.kind") for r in runs)
    assert kinds == {"invocation": 1, "job": 8}
    names = Counter(r.info.run_name for r in runs if r.data.tags.get("naseval.kind") == "job")
    assert all(count == 1 for count in names.values()), names
    assert all(r.info.status == "FINISHED" for r in runs)
    for run in runs:
        for key in run.data.metrics:
            steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
            assert len(steps) == len(set(steps)), (run.info.run_name, key, steps)
    train = next(r for r in runs if r.info.run_name == "train/random/seed=0")
    assert [m.step for m in client.get_metric_history(train.info.run_id, "valid_ppl")] == [1, 2, 3, 4]
