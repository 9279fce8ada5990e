"""`nas run compare --executor ray` on a real local Ray cluster gives the local executor's table."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

pytest.importorskip("ray")
pytestmark = pytest.mark.slow

COMPARE = [
    sys.executable, "-m", "naseval.cli.main", "run", "compare", "--space", "3",
    "--policies", "random,enas", "--seeds", "2",
    "--set", "data.corpus=synthetic", "--set", "data.synthetic_tokens=2000",
    "--set", "search.budget.epochs=1", "--set", "search.budget.steps_per_epoch=4",
    "--set", "evaluation.train.epochs=2", "--set", "evaluation.train.max_steps_per_epoch=10",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[tuple[str, dict[str, str]]]:
    """A one-node Ray cluster on 127.0.0.1 with token authentication, stopped afterwards."""
    ray = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    port = _free_port()
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths are capped
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": uuid.uuid4().hex, "RAY_USAGE_STATS_ENABLED": "0"}
    for name in ("RAY_ADDRESS", "NASEVAL_CLI_JOBS", "MLFLOW_TRACKING_URI"):
        env.pop(name, None)
    started = subprocess.run(
        [ray, "start", "--head", "--port", str(port), "--node-ip-address", "127.0.0.1",
         "--num-cpus", "2", "--object-store-memory", "100000000", "--include-dashboard", "false",
         "--temp-dir", temp_dir, "--disable-usage-stats"],
        env=env, capture_output=True, text=True, timeout=180,
    )
    assert started.returncode == 0, started.stderr
    try:
        yield f"127.0.0.1:{port}", env
    finally:
        subprocess.run([ray, "stop", "--force"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_ray_executor_matches_local(ray_cluster: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    address, env = ray_cluster
    (tmp_path / "local").mkdir()
    (tmp_path / "ray").mkdir()
    local = subprocess.run(COMPARE, cwd=tmp_path / "local", env=env, capture_output=True, text=True,
                           timeout=600)
    assert local.returncode == 0, local.stderr
    on_ray = subprocess.run([*COMPARE, "--executor", "ray", "--ray-address", address],
                            cwd=tmp_path / "ray", env=env, capture_output=True, text=True, timeout=600)
    assert on_ray.returncode == 0, on_ray.stderr
    assert "ray executor" in on_ray.stderr
    assert on_ray.stdout == local.stdout  # the same table, digit for digit

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'ray' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("naseval-compare")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    jobs = [r for r in runs if r.data.tags.get("naseval.kind") == "job"]
    assert len(jobs) == 8 and all(r.info.status == "FINISHED" for r in jobs)
    assert {r.data.tags["executor"] for r in runs} == {"ray"}
