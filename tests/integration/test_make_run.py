"""A newcomer's main command, `make run`, works on a fresh clone: venv, install, main job."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.ptb
def test_make_run_on_a_fresh_clone(tmp_path: Path) -> None:
    if not os.environ.get("NASEVAL_DATA_DIR"):
        pytest.skip("NASEVAL_DATA_DIR is not set (the main job reads real PTB)")
    if not (ROOT / ".git").exists() or shutil.which("make") is None:
        pytest.skip("needs a git checkout and make")
    clone = tmp_path / "naseval"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(str(ROOT / ".venv"))
    )
    result = subprocess.run(
        ["make", "run"], cwd=clone, env=env, capture_output=True, text=True, timeout=1500
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # The scale is said first; the table and where it is in MLflow come at the end.
    assert "quick preset" in result.stderr and "pipeline, not the science" in result.stderr
    for row in ("| DARTS |", "| NAO |", "| ENAS |", "| RANDOM |"):
        assert row in result.stdout
    assert "MLflow: run" in result.stdout + result.stderr
    assert (clone / "mlflow.db").exists()
