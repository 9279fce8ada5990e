"""The driver: one invocation = one MLflow parent run, its plan's jobs as child runs, one report.

It creates the experiment before any job starts, opens (or, on resume, continues) the parent
run, reuses finished jobs found in the store, dispatches the others to the executor stage by
stage, and logs the command's report (results.json, tables, figures) on the parent run and
into `--out`. A failed job does not stop the others; the summary names what is missing.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from naseval.cli.console import Console, JobProgress
from naseval.cli.execution import JobRuntime
from naseval.cli.executors import Executor, Ticket
from naseval.cli.plan import JobOutcome, JobSpec, Plan
from naseval.cli.settings import stable_hash
from naseval.cli.tracking import Tracker

INVOCATION_ARTIFACT = "invocation.json"  # on the parent run: the command and what identifies it
JOBS_ARTIFACT = "jobs.json"  # on the parent run: every job's spec, status and run id


@dataclass(frozen=True)
class Invocation:
    """What the user asked for, as the store records it on the parent run."""

    command: str  # the nas command, e.g. "compare"
    experiment: str  # MLflow experiment name (one per command unless --experiment)
    run_name: str  # the parent run's name, e.g. "compare/space=8/quick"
    identity: Mapping[str, Any]  # what makes two invocations the same (resume finds the parent)
    params: Mapping[str, str]  # every resolved setting, as parent-run params
    tags: Mapping[str, str]  # preset, versions, git commit, device, ...


@dataclass
class Report:
    """A command's analysis of its outcomes."""

    results: dict[str, Any]  # results.json
    text: str  # what the terminal shows (a Markdown table)
    files: dict[str, str] = field(default_factory=dict)  # extra text artifacts: table.md, .csv, .tex
    figures: dict[str, Path] = field(default_factory=dict)  # figure file name -> file written


Analyse = Callable[[Mapping[str, JobOutcome], Path], Report]  # outcomes, a scratch dir -> report


@dataclass
class RunSummary:
    """How an invocation ended."""

    experiment_id: str
    parent_run_id: str
    outcomes: dict[str, JobOutcome]  # job id -> outcome
    missing: list[str]  # one line per failed job or group of jobs never built
    report: Report | None
    not_run: int = 0  # jobs never built because the jobs they need failed

    @property
    def failed(self) -> int:
        return sum(1 for o in self.outcomes.values() if not o.ok)

    @property
    def ok(self) -> bool:
        return not self.missing


@dataclass
class Driver:
    """Runs plans against one tracking store with one executor."""

    tracker: Tracker
    executor: Executor
    console: Console
    checkpoint_root: Path  # per-job checkpoint directories (stable across re-runs)
    device: str = "auto"
    resume: bool = True  # False (--fresh): new runs for every job, old checkpoints deleted
    jobs_module: str = "naseval.cli.jobs"
    system_metrics: bool = True

    def run(self, invocation: Invocation, plan: Plan, analyse: Analyse, out: Path | None) -> RunSummary:
        experiment_id = self.tracker.experiment(invocation.experiment)
        invocation_key = stable_hash(invocation.identity)
        parent_run_id, resumed = self.tracker.open_parent(
            experiment_id,
            invocation_key=invocation_key,
            name=invocation.run_name,
            tags=invocation.tags,
            params=invocation.params,
            resume=self.resume,
        )
        if resumed:
            self.console.info(f"continuing run {parent_run_id} of an earlier, unfinished invocation")
        else:
            self.tracker.client.log_text(
                parent_run_id,
                json.dumps({"command": invocation.command, "identity": invocation.identity},
                           indent=2, default=str),
                INVOCATION_ARTIFACT,
            )
        runtime = JobRuntime(
            tracking_uri=self.tracker.uri,
            experiment_id=experiment_id,
            checkpoint_root=str(self.checkpoint_root),
            device=self.device,
            tags=dict(invocation.tags),
            jobs_module=self.jobs_module,
            system_metrics=self.system_metrics,
            fresh=not self.resume,
        )
        outcomes: dict[str, JobOutcome] = {}
        missing: list[str] = []
        not_run = 0
        try:
            with self.console.job_progress(plan.expected_jobs) as progress:
                for stage in plan.stages:
                    specs = stage.build(outcomes)
                    if len(specs) < stage.expected_jobs:
                        not_run += stage.expected_jobs - len(specs)
                        missing.append(
                            f"{stage.expected_jobs - len(specs)} {stage.name} job(s) not run: "
                            "the jobs they need failed"
                        )
                    self._run_stage(specs, parent_run_id, experiment_id, runtime, progress, outcomes,
                                    invocation)
        except KeyboardInterrupt:
            self.tracker.client.set_terminated(parent_run_id, "KILLED")
            raise
        missing.extend(
            f"{o.spec.name}: {o.error}" for o in outcomes.values() if not o.ok
        )
        self.tracker.client.log_text(parent_run_id, json.dumps(jobs_record(outcomes), indent=2),
                                     JOBS_ARTIFACT)
        report = self._report(analyse, outcomes, parent_run_id, out, invocation, missing)
        self.tracker.finish(parent_run_id, ok=not missing)
        return RunSummary(experiment_id, parent_run_id, outcomes, missing, report, not_run)

    def _run_stage(
        self,
        specs: list[JobSpec],
        parent_run_id: str,
        experiment_id: str,
        runtime: JobRuntime,
        progress: JobProgress,
        outcomes: dict[str, JobOutcome],
        invocation: Invocation,
    ) -> None:
        to_run: list[JobSpec] = []
        for spec in specs:
            if spec.job_id in outcomes:
                continue
            finished = self.tracker.find_finished_job(spec.job_id) if self.resume else None
            if finished is not None:
                try:
                    result = self.tracker.load_result(finished.info.run_id)
                except Exception:  # a finished run without its result: run the job again
                    result = None
                if result is not None:
                    outcomes[spec.job_id] = JobOutcome(spec, "REUSED", result, run_id=finished.info.run_id)
                    progress.job_reused(spec)
                    continue
            to_run.append(spec)

        def start(spec: JobSpec) -> Ticket:
            run_id, resumed = self.tracker.prepare_job_run(
                spec, experiment_id=experiment_id, parent_run_id=parent_run_id,
                tags=invocation.tags, resume=self.resume,
            )
            return Ticket(run_id, resumed)

        for outcome in self.executor.run(to_run, start, runtime, progress):
            if not outcome.ok and outcome.run_id is not None:
                self.tracker.mark_failed(outcome.run_id, outcome.error or "failed")
            outcomes[outcome.spec.job_id] = outcome

    def _report(
        self, analyse: Analyse, outcomes: Mapping[str, JobOutcome], parent_run_id: str,
        out: Path | None, invocation: Invocation, missing: list[str],
    ) -> Report | None:
        with tempfile.TemporaryDirectory(prefix="naseval-report-") as scratch:
            scratch_dir = Path(scratch)
            try:
                report = analyse(outcomes, scratch_dir)
            except Exception as error:
                self.console.warn(f"analysis failed: {type(error).__name__}: {error}")
                return None
            report.files.setdefault("report.md", markdown_report(invocation.run_name, report, missing))
            client = self.tracker.client
            client.log_text(parent_run_id, json.dumps(report.results, indent=2, default=str), "results.json")
            for name, text in report.files.items():
                client.log_text(parent_run_id, text, name)
            for path in report.figures.values():
                client.log_artifact(parent_run_id, str(path), "figures")
            if out is not None:
                write_report(report, out)
            # Figures live in the scratch dir; point the report at the copies that stay.
            report.figures = {name: (out / "figures" / name) if out else Path(name)
                              for name in report.figures}
            return report


def jobs_record(outcomes: Mapping[str, JobOutcome]) -> list[dict[str, Any]]:
    """What `nas report` needs to find every job's result again."""
    return [
        {"job_id": job_id, "status": o.status, "run_id": o.run_id, "error": o.error,
         "spec": o.spec.to_dict()}
        for job_id, o in outcomes.items()
    ]


def write_report(report: Report, out: Path) -> None:
    """Write a report's results.json, its files and a copy of its figures under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(report.results, indent=2, default=str))
    for name, text in report.files.items():
        (out / name).write_text(text)
    if report.figures:
        (out / "figures").mkdir(exist_ok=True)
    for name, path in report.figures.items():
        shutil.copy(path, out / "figures" / name)


def markdown_report(title: str, report: Report, missing: list[str]) -> str:
    lines = [f"# {title}", "", report.text or "(no results)"]
    if missing:
        lines += ["", "## Missing", ""] + [f"- {line}" for line in missing]
    if report.figures:
        lines += ["", "## Figures", ""] + [f"![{name}](figures/{name})" for name in report.figures]
    return "\n".join(lines) + "\n"
