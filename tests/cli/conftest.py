"""Shared fixtures of the CLI tests: an isolated store per test and the fake job bodies."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # fake_jobs, for NASEVAL_CLI_JOBS=fake_jobs


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated MLflow sqlite store (creating one costs seconds of migrations)."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_store: Path) -> Path:
    """A fresh working directory holding an empty default store ./mlflow.db."""
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return tmp_path


@pytest.fixture
def fake_jobs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run plans with tests/cli/fake_jobs.py instead of the libraries (framework tests)."""
    monkeypatch.setenv("NASEVAL_CLI_JOBS", "fake_jobs")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.delenv("FAKE_FAIL_POLICY", raising=False)
    monkeypatch.delenv("FAKE_EPOCH_SECONDS", raising=False)
    yield


def nas(*args: str) -> Result:
    """`nas ARGS` in this process."""
    from naseval.cli.main import app

    return CliRunner().invoke(app, list(args))


def assert_usage_error(result: Result, *fragments: str) -> None:
    """Exit code 2, one `error:` line that contains every fragment, no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert "Traceback" not in result.output


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


TINY = [
    "--set", "data.corpus=synthetic",
    "--set", "data.synthetic_tokens=2000",
    "--set", "search.budget.epochs=2",
    "--set", "evaluation.train.epochs=3",
    "--set", "ground_truth.seeds=2",
]
"""Settings that make every job of the fake (and the real) bodies small."""
