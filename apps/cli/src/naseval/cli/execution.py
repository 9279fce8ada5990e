"""The worker side of a job: open its MLflow child run, run its body, record how it ended.

`execute_job` runs in the driver's process (local executor) or on a Ray worker; everything it
needs travels in the picklable `JobSpec` and `JobRuntime`. Job bodies (naseval.cli.jobs) see a
`JobContext`: metrics they report go to MLflow (never the same step twice) and to the progress
display; checkpoints go to a directory that is stable per job, so a re-run continues there.
"""

from __future__ import annotations

import importlib
import json
import logging
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mlflow.entities import Param, RunTag
from mlflow.tracking import MlflowClient

from naseval.cli.plan import JobOutcome, JobSpec
from naseval.cli.settings import stable_hash
from naseval.cli.tracking import FAILURE_TAG, RESULT_ARTIFACT, MetricLog, tracking_client

log = logging.getLogger(__name__)

DEFAULT_JOBS_MODULE = "naseval.cli.jobs"


class ProgressSink(Protocol):
    """Where job events go: the terminal's progress display, or nowhere (Ray workers)."""

    def job_started(self, spec: JobSpec, resumed: bool) -> None: ...

    def job_progress(self, spec: JobSpec, done: int, total: int | None, metrics: dict[str, float]) -> None: ...

    def job_finished(self, outcome: JobOutcome) -> None: ...


@dataclass(frozen=True)
class JobRuntime:
    """What every job of one invocation shares; picklable, so it travels to Ray workers."""

    tracking_uri: str  # the MLflow store the child runs live in
    experiment_id: str  # the invocation's experiment
    checkpoint_root: str  # per-job checkpoint directories live here, named by job id
    device: str  # "auto", "cpu" or "cuda", handed to the trainer
    tags: Mapping[str, str] = field(default_factory=dict)  # preset, versions, git commit, ...
    jobs_module: str = DEFAULT_JOBS_MODULE  # module whose JOBS maps a command to its body
    system_metrics: bool = True  # log CPU/memory/GPU while a job runs (needs psutil)
    fresh: bool = False  # --fresh: ignore and delete existing checkpoints


@dataclass
class JobContext:
    """A job body's view of the world."""

    spec: JobSpec
    runtime: JobRuntime
    run_id: str
    resumed: bool  # an unfinished run of this job is being continued
    checkpoint_dir: Path  # stable per job: a re-run of the same job finds its checkpoints here
    metrics: MetricLog
    client: MlflowClient
    sink: ProgressSink

    @property
    def device(self) -> str:
        return self.runtime.device

    def report(self, step: int, metrics: Mapping[str, float], total: int | None = None,
               prefix: str = "", done: int | None = None) -> None:
        """Log `metrics` at `step` (skipped if already logged) and show progress.

        `done` (default step + 1, for 0-based steps) of `total` is what the progress bar shows.
        """
        self.metrics.log(step, metrics, prefix=prefix)
        shown = {f"{prefix}{k}": float(v) for k, v in metrics.items() if _is_number(v)}
        self.sink.job_progress(self.spec, step + 1 if done is None else done, total, shown)

    def log_json(self, artifact_file: str, data: Any) -> None:
        self.client.log_text(self.run_id, json.dumps(data, indent=2, default=str), artifact_file)

    def log_text(self, artifact_file: str, text: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self.metrics.set_tags(tags)


JobBody = Callable[[JobContext], dict[str, Any]]


def job_bodies(module_name: str) -> Mapping[str, JobBody]:
    module = importlib.import_module(module_name)
    bodies: Mapping[str, JobBody] = module.JOBS
    return bodies


def checkpoint_dir_for(runtime: JobRuntime, spec: JobSpec) -> Path:
    return Path(runtime.checkpoint_root) / f"{spec.command}-{spec.job_id}"


def execute_job(
    spec: JobSpec, run_id: str, resumed: bool, runtime: JobRuntime, sink: ProgressSink
) -> JobOutcome:
    """Run one job in its child run; any exception becomes a FAILED outcome with its reason."""
    quiet_mlflow()
    client = tracking_client(runtime.tracking_uri)
    checkpoint_dir = checkpoint_dir_for(runtime, spec)
    if runtime.fresh and not resumed and checkpoint_dir.exists():
        shutil.rmtree(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    monitor = _system_metrics_monitor(run_id, runtime, resumed)
    threads = _use_threads(spec.num_cpus)
    try:
        metrics = MetricLog(client, run_id)
        _log_job_params(client, run_id, spec, runtime)
        context = JobContext(spec, runtime, run_id, resumed, checkpoint_dir, metrics, client, sink)
        body = job_bodies(runtime.jobs_module).get(spec.command)
        if body is None:
            raise ValueError(f"no job body for command {spec.command!r} in {runtime.jobs_module}")
        result = body(context)
        result = {"job": spec.to_dict(), "job_id": spec.job_id, **result}
        context.log_json(RESULT_ARTIFACT, result)
        client.set_terminated(run_id, "FINISHED")
        return JobOutcome(spec, "FINISHED", result, run_id=run_id)
    except KeyboardInterrupt:
        _mark(client, run_id, "KILLED", "interrupted")
        raise
    except Exception as error:
        reason = f"{type(error).__name__}: {_first_line(error)}"
        log.debug("job %s failed", spec.name, exc_info=True)
        _mark(client, run_id, "FAILED", reason)
        return JobOutcome(spec, "FAILED", None, error=reason, run_id=run_id)
    finally:
        _use_threads(threads)
        if monitor is not None:
            monitor.finish()


def _use_threads(count: float) -> int:
    """Give torch the CPUs the job asked for; returns the previous thread count.

    On a busy machine torch's default (every core) makes tiny ops hundreds of times slower,
    and a job should compute the same on a 1-CPU Ray task as in this process.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, int(count)))
    return previous


def quiet_mlflow() -> None:
    """MLflow's INFO lines (system metrics started/stopped, ...) would drown the progress."""
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _log_job_params(client: MlflowClient, run_id: str, spec: JobSpec, runtime: JobRuntime) -> None:
    """Every resolved setting of the job as a param (once; a resumed run already has them)."""
    existing = client.get_run(run_id).data.params
    flat = _flatten({"config": spec.config, "inputs": spec.inputs})
    flat.update({"device": runtime.device, "config_hash": spec.config_hash,
                 "identity": stable_hash(spec.identity)})
    params = [Param(k, v[:6000]) for k, v in flat.items() if k not in existing]
    for start in range(0, len(params), 100):
        client.log_batch(run_id, params=params[start : start + 100])
    if runtime.tags:
        client.log_batch(run_id, tags=[RunTag(k, str(v)[:5000]) for k, v in runtime.tags.items()])


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(_flatten(value, prefix=f"{path}."))
        else:
            out[path] = value if isinstance(value, str) else json.dumps(value, default=str)
    return out


def _mark(client: MlflowClient, run_id: str, status: str, reason: str) -> None:
    try:
        client.set_tag(run_id, FAILURE_TAG, reason[:5000])
        client.set_terminated(run_id, status)
    except Exception:  # the store itself may be what failed; the outcome still says why
        log.debug("could not mark run %s %s", run_id, status, exc_info=True)


def _system_metrics_monitor(run_id: str, runtime: JobRuntime, resumed: bool) -> Any:
    if not runtime.system_metrics:
        return None
    try:
        import psutil  # noqa: F401
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor
    except ImportError:
        return None
    try:
        monitor = SystemMetricsMonitor(run_id, sampling_interval=5, resume_logging=resumed,
                                       tracking_uri=runtime.tracking_uri)
        monitor.start()
    except Exception:
        log.debug("system metrics unavailable", exc_info=True)
        return None
    return monitor


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
