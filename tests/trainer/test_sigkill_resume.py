"""A run killed with SIGKILL mid-epoch and resumed ends bitwise equal to an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from naseval.trainer import load_checkpoint

WORKER = Path(__file__).with_name("resume_worker.py")


def start(mode: str, folder: Path, tag: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), mode, str(folder / f"ckpt-{tag}"),
         str(folder / f"{tag}.json"), str(folder / f"{tag}.marker")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def finish(process: subprocess.Popen[bytes]) -> None:
    output, _ = process.communicate(timeout=240)
    assert process.returncode == 0, output.decode()


def test_sigkill_mid_epoch_then_resume_is_bitwise(tmp_path: Path) -> None:
    uninterrupted = start("run", tmp_path, "full")
    victim = start("freeze", tmp_path, "killed")
    marker = tmp_path / "killed.marker"
    deadline = time.monotonic() + 240
    while not marker.exists():
        assert victim.poll() is None, victim.communicate()[0].decode()
        assert time.monotonic() < deadline, "the worker never reached the freeze step"
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    assert marker.read_text() == "2"  # killed in the second epoch

    state = load_checkpoint(tmp_path / "ckpt-killed")
    assert state is not None and state["result"] is None
    assert state["progress"]["step"] == 28 and state["progress"]["epoch_step"] > 0

    finish(start("run", tmp_path, "killed"))  # resumes from the step-28 checkpoint
    finish(uninterrupted)
    full = json.loads((tmp_path / "full.json").read_text())
    resumed = json.loads((tmp_path / "killed.json").read_text())
    assert resumed == full
    assert full["epochs_run"] == 2 and full["steps"] > 30
    a, b = load_checkpoint(tmp_path / "ckpt-full"), load_checkpoint(tmp_path / "ckpt-killed")
    assert a is not None and b is not None
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    assert torch.equal(a["mask_rng"], b["mask_rng"]) and a["len_rng"] == b["len_rng"]
