"""What the integration tests that drive `nas` in a subprocess share."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

Run = Callable[[Sequence[str], Path], subprocess.CompletedProcess[str]]
KillWhen = Callable[[Sequence[str], Path, Callable[[], bool], str], None]


def _cli_env() -> dict[str, str]:
    """The user's environment, without the settings the tests' own runs must not inherit."""
    env = {**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    for name in ("NASEVAL_CLI_JOBS", "MLFLOW_TRACKING_URI"):
        env.pop(name, None)
    return env


@pytest.fixture
def run_cli() -> Run:
    """Run a command to its end in `cwd`, capturing its output."""

    def run(command: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(command), cwd=cwd, env=_cli_env(), capture_output=True,
                              text=True, timeout=600)

    return run


@pytest.fixture
def sigkill_when() -> KillWhen:
    """Start a command in `cwd` and SIGKILL its whole process group once `ready()` holds.

    Its output goes to cwd/first.log, which a failure shows; `what` names what never happened.
    """

    def kill(command: Sequence[str], cwd: Path, ready: Callable[[], bool], what: str) -> None:
        with open(cwd / "first.log", "w") as log:
            process = subprocess.Popen(list(command), cwd=cwd, env=_cli_env(), stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
            deadline = time.monotonic() + 300
            while not ready():
                assert process.poll() is None, (cwd / "first.log").read_text()
                assert time.monotonic() < deadline, f"no {what} appeared"
                time.sleep(0.02)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        assert process.returncode == -signal.SIGKILL

    return kill
