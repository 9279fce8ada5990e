"""`nas run compare` against a real `mlflow server` on 127.0.0.1, checked through its REST API."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

NAS = [sys.executable, "-m", "naseval.cli.main"]
TINY = ["--set", "data.corpus=synthetic", "--set", "data.synthetic_tokens=2000",
        "--set", "evaluation.train.epochs=2", "--set", "search.budget.epochs=1",
        "--set", "search.supernet.epochs=1"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(base: str, path: str, **params: Any) -> Any:
    url = f"{base}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def _post(base: str, path: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(f"{base}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    mlflow = shutil.which("mlflow") or str(Path(sys.executable).with_name("mlflow"))
    process = subprocess.Popen(
        [mlflow, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--artifacts-destination", str(tmp_path / "server-artifacts")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                _get(base, "/api/2.0/mlflow/experiments/search", max_results=1)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("mlflow server did not start") from None
                time.sleep(0.5)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def test_compare_against_a_tracking_server(server: str, tmp_path: Path) -> None:
    env = {**os.environ, "MLFLOW_TRACKING_URI": server}
    env.pop("NASEVAL_CLI_JOBS", None)
    result = subprocess.run(
        [*NAS, "run", "compare", "--space", "3", "--policies", "random", "--seeds", "2", *TINY],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "| RANDOM " in result.stdout

    experiment = _get(server, "/api/2.0/mlflow/experiments/get-by-name", experiment_name="naseval-compare")
    experiment_id = experiment["experiment"]["experiment_id"]
    runs = _post(server, "/api/2.0/mlflow/runs/search",
                 {"experiment_ids": [experiment_id], "max_results": 100})["runs"]

    def tags(run: dict[str, Any]) -> dict[str, str]:
        return {t["key"]: t["value"] for t in run["data"].get("tags", [])}

    parents = [r for r in runs if tags(r).get("naseval.kind") == "invocation"]
    children = [r for r in runs if tags(r).get("naseval.kind") == "job"]
    assert len(parents) == 1 and parents[0]["info"]["status"] == "FINISHED"
    parent_id = parents[0]["info"]["run_id"]
    assert sorted(r["info"]["run_name"] for r in children) == [
        "search/random/seed=0", "search/random/seed=1",
        "train/random/seed=0", "train/random/seed=1",
    ]
    assert all(tags(r)["mlflow.parentRunId"] == parent_id for r in children)
    assert all(r["info"]["status"] == "FINISHED" for r in children)

    train = next(r for r in children if r["info"]["run_name"] == "train/random/seed=0")
    history = _get(server, "/api/2.0/mlflow/metrics/get-history", run_id=train["info"]["run_id"],
                   metric_key="valid_ppl")["metrics"]
    assert sorted(m["step"] for m in history) == [1, 2]
    params = {p["key"]: p["value"] for p in train["data"]["params"]}
    assert params["config.train.epochs"] == "2"

    def artifacts(run_id: str) -> set[str]:
        files = _get(server, "/api/2.0/mlflow/artifacts/list", run_id=run_id).get("files", [])
        return {f["path"] for f in files}

    assert {"genotype.json", "results.json"} <= artifacts(train["info"]["run_id"])
    assert {"results.json", "table.md", "report.md", "jobs.json"} <= artifacts(parent_id)
