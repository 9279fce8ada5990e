"""Store helpers: metric steps are never logged twice; sqlite lock contention is waited out."""

from __future__ import annotations

from pathlib import Path

import pytest

from naseval.cli import tracking
from naseval.cli.tracking import MetricLog, RetryingClient, resolve_tracking_uri


def test_metric_log_skips_steps_already_in_the_store(workdir: Path) -> None:
    client = tracking.tracking_client(f"sqlite:///{workdir / 'mlflow.db'}")
    run = client.create_run("0")
    first = MetricLog(client, run.info.run_id)
    first.log(1, {"valid_ppl": 10.0})
    first.log(2, {"valid_ppl": 9.0, "lr": 20.0})
    again = MetricLog(client, run.info.run_id)  # a resumed job
    assert again.last_step == {"valid_ppl": 2, "lr": 2}
    again.log(2, {"valid_ppl": 9.5, "lr": 20.0})
    again.log(3, {"valid_ppl": 8.0})
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "valid_ppl")]
    assert steps == [1, 2, 3]


def test_sqlite_lock_is_retried(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracking.time, "sleep", lambda _s: None)
    client = RetryingClient(f"sqlite:///{workdir / 'mlflow.db'}")
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("(sqlite3.OperationalError) database is locked")
        return "ok"

    monkeypatch.setattr(client._client, "search_experiments", flaky)
    assert client.search_experiments() == "ok" and len(calls) == 3

    def broken(_run_id: str) -> None:
        raise RuntimeError("no such table")

    monkeypatch.setattr(client._client, "get_run", broken)
    with pytest.raises(RuntimeError, match="no such table"):
        client.get_run("x")


def test_tracking_uri_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert resolve_tracking_uri(None) == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    assert resolve_tracking_uri("sqlite:///rel.db") == f"sqlite:///{tmp_path.resolve() / 'rel.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert resolve_tracking_uri(None) == "http://127.0.0.1:5000"
    assert resolve_tracking_uri("http://elsewhere:1") == "http://elsewhere:1"
