"""`nas report RUN`: re-render a finished invocation's tables, figures and report from MLflow.

The parent run holds `invocation.json` (the command and its identity) and `jobs.json` (each
job's spec and run id); every job's run holds its `results.json`. From those the command's own
analysis runs again, so a report can be rebuilt with a newer naseval.analysis.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from naseval.cli import experiments
from naseval.cli.console import Console
from naseval.cli.driver import (
    INVOCATION_ARTIFACT,
    JOBS_ARTIFACT,
    Report,
    markdown_report,
    write_report,
)
from naseval.cli.errors import UsageError
from naseval.cli.plan import JobOutcome, JobSpec
from naseval.cli.presets import PRESETS
from naseval.cli.tracking import KIND_TAG, Tracker
from naseval.space import Architecture, Space


def _load_json(tracker: Tracker, run_id: str, name: str) -> Any:
    with tempfile.TemporaryDirectory() as tmp:
        path = tracker.client.download_artifacts(run_id, name, tmp)
        return json.loads(Path(path).read_text())


def _spec(data: dict[str, Any]) -> JobSpec:
    return JobSpec(**data)


def analysis_for(command: str, identity: dict[str, Any]) -> experiments.Analyse:
    """The analysis `command` ran, rebuilt from what identifies the invocation."""
    if command == "compare":
        space = Space(int(identity["space"]))
        return experiments.compare_analysis(space, f"{space.n_nodes}-node space, "
                                            f"{len(identity.get('seeds', []))} seeds")
    if command == "search":
        return experiments.search_analysis()
    if command == "train":
        return experiments.train_analysis()
    if command == "ground-truth":
        return experiments.ground_truth_analysis(Space(int(identity["space"])))
    if command == "ws-ranking":
        return experiments.ws_ranking_analysis(Space(int(identity["space"])))
    if command == "sharing":
        return experiments.sharing_analysis(Space.from_dict(identity["sharing_space"]))
    if command == "paper":
        preset = PRESETS.get(str(identity.get("preset", {}).get("name", "quick")), PRESETS["quick"])()
        fixed = identity.get("preset", {}).get("ranking", {})
        shared = Space(int(fixed.get("sharing_nodes", preset.ranking.sharing_nodes)),
                       fixed=Architecture.parse(fixed.get("sharing_fixed", preset.ranking.sharing_fixed)))
        seeds = identity.get("seeds", [])
        return experiments.combined_analysis([
            experiments.compare_analysis(Space(8), f"8-node space, {len(seeds)} seeds", stem="table_space8"),
            experiments.compare_analysis(Space(2), f"2-node space, {len(seeds)} seeds", stem="table_space2"),
            experiments.ws_ranking_analysis(Space(2)),
            experiments.sharing_analysis(shared),
        ], title="naseval paper study")
    raise UsageError(f"run was made by an unknown command {command!r}")


def render_report(tracker: Tracker, run_id: str, *, out: Path | None, json_mode: bool,
                  console: Console) -> Report:
    try:
        run = tracker.client.get_run(run_id)
    except Exception:
        raise UsageError(f"no run {run_id!r} in {tracker.uri}; copy a parent run id from the end "
                         "of a `nas run` or from `nas ui`") from None
    if run.data.tags.get(KIND_TAG) == "job":
        parent = run.data.tags.get("mlflow.parentRunId")
        raise UsageError(f"run {run_id} is one job of an invocation; pass its parent run {parent}")
    if run.data.tags.get(KIND_TAG) != "invocation":
        raise UsageError(f"run {run_id} was not made by nas; pass the parent run of a `nas run`")
    try:
        invocation = _load_json(tracker, run_id, INVOCATION_ARTIFACT)
        jobs = _load_json(tracker, run_id, JOBS_ARTIFACT)
    except Exception:
        raise UsageError(f"run {run_id} has no job list yet (it is still running, or was killed "
                         "before any job ended); re-run its command to finish it") from None
    outcomes: dict[str, JobOutcome] = {}
    missing = []
    for job in jobs:
        spec = _spec(job["spec"])
        if job["status"] == "FAILED" or not job.get("run_id"):
            missing.append(f"{spec.name}: {job.get('error')}")
            outcomes[job["job_id"]] = JobOutcome(spec, "FAILED", None, error=job.get("error"))
            continue
        result = tracker.load_result(job["run_id"])
        outcomes[job["job_id"]] = JobOutcome(spec, job["status"], result, run_id=job["run_id"])
    analyse = analysis_for(invocation["command"], invocation["identity"])
    with tempfile.TemporaryDirectory(prefix="naseval-report-") as scratch:
        report = analyse(outcomes, Path(scratch))
        title = run.data.tags.get("mlflow.runName", run_id)
        report.files.setdefault("report.md", markdown_report(title, report, missing))
        tracker.client.log_text(run_id, report.files["report.md"], "report.md")
        if out is not None:
            write_report(report, out)
    if json_mode:
        print(json.dumps({"run_id": run_id, "results": report.results, "missing": missing}, default=str))
    else:
        print(report.files["report.md"])
    if out is not None:
        console.info(f"report written to {out}")
    return report
