"""Progress: rich bars on a terminal, plain lines otherwise."""

from __future__ import annotations

import io

from naseval.cli.console import Console
from naseval.cli.plan import JobOutcome, JobSpec

SPEC = JobSpec(command="train", space={"n_nodes": 2}, policy="darts", seed=1, phase="eval",
               config={}, label="train/darts/seed=1")


def _drive(console: Console) -> None:
    with console.job_progress(2) as progress:
        progress.job_started(SPEC, resumed=True)
        progress.job_progress(SPEC, 1, 3, {"valid_ppl": 123.4, "ignored": 1.0})
        progress.job_progress(SPEC, 3, 3, {"valid_ppl": 99.5})
        progress.job_finished(JobOutcome(SPEC, "FAILED", None, error="RuntimeError: boom"))
        progress.job_reused(SPEC)


def test_plain_lines_when_not_a_terminal() -> None:
    stream = io.StringIO()
    _drive(Console(stderr=stream, interactive=False))
    lines = stream.getvalue().splitlines()
    assert lines[0] == "[0/2] train/darts/seed=1: resumed"
    assert lines[1] == "[0/2] train/darts/seed=1: 1/3 valid_ppl=123.4"
    assert lines[2] == "[0/2] train/darts/seed=1: 3/3 valid_ppl=99.5"  # the last epoch always shows
    assert lines[3] == "[1/2] train/darts/seed=1: FAILED (RuntimeError: boom)"
    assert lines[4] == "[2/2] train/darts/seed=1: finished earlier, reused"


def test_rich_bars_on_a_terminal() -> None:
    stream = io.StringIO()
    _drive(Console(stderr=stream, interactive=True))
    text = stream.getvalue()
    assert "jobs" in text and "2/2" in text
    assert "train/darts/seed=1: FAILED RuntimeError: boom" in text
