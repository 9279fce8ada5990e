"""The terminal: rich progress bars on a TTY, plain log lines otherwise, results on stdout.

Everything that is not the command's result (notices, progress, warnings) goes to stderr, so
`nas ... --json > out.json` and pipes get only the result.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol, TextIO

from rich.console import Console as RichConsole
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from naseval.cli.plan import JobOutcome, JobSpec

_SHOWN_METRICS = ("valid_ppl", "train_loss", "reward", "best_valid_ppl", "loss")


class Console:
    """Where the CLI writes. `interactive` (a TTY on stderr) switches on progress bars."""

    def __init__(self, *, json_mode: bool = False, stderr: TextIO | None = None,
                 interactive: bool | None = None) -> None:
        self.json_mode = json_mode
        self.stderr = stderr or sys.stderr
        self.interactive = self.stderr.isatty() if interactive is None else interactive
        self.err = RichConsole(file=self.stderr, highlight=False, soft_wrap=True)

    def info(self, message: str) -> None:
        if self.interactive:
            self.err.print(message, markup=False)
        else:
            print(message, file=self.stderr, flush=True)

    def warn(self, message: str) -> None:
        self.info(f"warning: {message}")

    def result(self, text: str) -> None:
        """The command's result, on stdout."""
        print(text, flush=True)

    @contextmanager
    def job_progress(self, total_jobs: int) -> Iterator[JobProgress]:
        if self.interactive:
            progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[detail]}"),
                console=self.err,
                transient=False,
            )
            with progress:
                yield RichJobProgress(progress, total_jobs)
        else:
            yield PlainJobProgress(self, total_jobs)


class JobProgress(Protocol):
    """Progress display of one invocation's jobs (a ProgressSink that also hears of reuse)."""

    def job_started(self, spec: JobSpec, resumed: bool) -> None:
        ...

    def job_progress(self, spec: JobSpec, done: int, total: int | None, metrics: dict[str, float]) -> None:
        ...

    def job_finished(self, outcome: JobOutcome) -> None:
        ...

    def job_reused(self, spec: JobSpec) -> None:
        ...


def _detail(metrics: dict[str, float]) -> str:
    shown = [(k, v) for k, v in metrics.items() if k.rsplit("/", 1)[-1] in _SHOWN_METRICS]
    return " ".join(f"{k}={v:.4g}" for k, v in shown[:3])


class RichJobProgress:
    """One bar for all jobs, one for the epochs of each running job."""

    def __init__(self, progress: Progress, total_jobs: int) -> None:
        self.progress = progress
        self.overall = progress.add_task("jobs", total=total_jobs, detail="")
        self.tasks: dict[str, TaskID] = {}

    def job_started(self, spec: JobSpec, resumed: bool) -> None:
        label = f"  {spec.name}" + (" (resumed)" if resumed else "")
        self.tasks[spec.job_id] = self.progress.add_task(label, total=None, detail="")

    def job_progress(self, spec: JobSpec, done: int, total: int | None, metrics: dict[str, float]) -> None:
        task = self.tasks.get(spec.job_id)
        if task is not None:
            self.progress.update(task, completed=done, total=total, detail=_detail(metrics))

    def job_finished(self, outcome: JobOutcome) -> None:
        task = self.tasks.pop(outcome.spec.job_id, None)
        if task is not None:
            self.progress.remove_task(task)
        status = "[red]FAILED[/red] " + (outcome.error or "") if not outcome.ok else ""
        if status:
            self.progress.console.print(f"{outcome.spec.name}: {status}")
        self.progress.advance(self.overall)

    def job_reused(self, spec: JobSpec) -> None:
        self.progress.advance(self.overall)


class PlainJobProgress:
    """Log lines: one per job start and end, and at most one per job every few seconds."""

    def __init__(self, console: Console, total_jobs: int, every_s: float = 5.0) -> None:
        self.console = console
        self.total = total_jobs
        self.done = 0
        self.every_s = every_s
        self.last: dict[str, float] = {}
        self.started: dict[str, float] = {}

    def _line(self, text: str) -> None:
        self.console.info(f"[{self.done}/{self.total}] {text}")

    def job_started(self, spec: JobSpec, resumed: bool) -> None:
        self.started[spec.job_id] = time.monotonic()
        self._line(f"{spec.name}: {'resumed' if resumed else 'started'}")

    def job_progress(self, spec: JobSpec, done: int, total: int | None, metrics: dict[str, float]) -> None:
        now = time.monotonic()
        if now - self.last.get(spec.job_id, 0.0) < self.every_s and done != total:
            return
        self.last[spec.job_id] = now
        of = f"/{total}" if total else ""
        self._line(f"{spec.name}: {done}{of} {_detail(metrics)}".rstrip())

    def job_finished(self, outcome: JobOutcome) -> None:
        self.done += 1
        took = time.monotonic() - self.started.pop(outcome.spec.job_id, time.monotonic())
        if outcome.ok:
            self._line(f"{outcome.spec.name}: done in {took:.0f}s")
        else:
            self._line(f"{outcome.spec.name}: FAILED ({outcome.error})")

    def job_reused(self, spec: JobSpec) -> None:
        self.done += 1
        self._line(f"{spec.name}: finished earlier, reused")


def format_seconds(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds < 365 * 86400:
        return f"{seconds / 86400:.1f} days"
    return f"{seconds / (365 * 86400):,.0f} years"

