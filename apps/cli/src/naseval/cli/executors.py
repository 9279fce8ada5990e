"""Executors run jobs: in this process (`local`, the default) or as tasks on a Ray cluster (`ray`).

Both take the same `JobTask`s and yield the same `JobOutcome`s, so a plan gives the same results
whichever runs it. A job's own failure (an exception in the job) is caught by `execute_job` and
comes back as a FAILED outcome; Ray retries only system failures (a worker that died).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from naseval.cli.execution import JobRuntime, ProgressSink, execute_job
from naseval.cli.plan import JobOutcome, JobSpec


@dataclass(frozen=True)
class Ticket:
    """A job ready to run: its MLflow child run, created or continued by the driver."""

    run_id: str  # the child run the job logs to
    resumed: bool  # an unfinished run of the same job is being continued


StartJob = Callable[[JobSpec], Ticket]  # the driver's hook, called just before a job is dispatched


class ExecutorUnavailable(RuntimeError):
    """The executor asked for cannot run here (Ray missing, cluster unreachable)."""


class Executor(Protocol):
    """Runs a stage's jobs and yields each outcome as it finishes (in any order)."""

    name: str

    def run(
        self, specs: Sequence[JobSpec], start: StartJob, runtime: JobRuntime, sink: ProgressSink
    ) -> Iterator[JobOutcome]: ...

    def close(self) -> None: ...


class LocalExecutor:
    """Jobs one after another in this process, with per-epoch progress."""

    name = "local"

    def run(
        self, specs: Sequence[JobSpec], start: StartJob, runtime: JobRuntime, sink: ProgressSink
    ) -> Iterator[JobOutcome]:
        for spec in specs:
            ticket = start(spec)
            sink.job_started(spec, ticket.resumed)
            outcome = execute_job(spec, ticket.run_id, ticket.resumed, runtime, sink)
            sink.job_finished(outcome)
            yield outcome

    def close(self) -> None:
        return None


class _NullSink:
    """Ray workers cannot reach the driver's terminal; progress there is per job."""

    def job_started(self, spec: JobSpec, resumed: bool) -> None:
        return None

    def job_progress(self, spec: JobSpec, done: int, total: int | None, metrics: dict[str, float]) -> None:
        return None

    def job_finished(self, outcome: JobOutcome) -> None:
        return None


def _run_on_worker(spec: JobSpec, run_id: str, resumed: bool, runtime: JobRuntime) -> JobOutcome:
    return execute_job(spec, run_id, resumed, runtime, _NullSink())


class RayExecutor:
    """Jobs as Ray tasks on an existing cluster (`address`), or on a local Ray instance.

    Each task asks for the job's `num_cpus`/`num_gpus` and is retried `max_retries` times when
    its worker dies. At most `max_in_flight` tasks are submitted at once, so child runs are only
    opened for jobs that are about to run.
    """

    name = "ray"

    def __init__(self, address: str | None, max_retries: int = 2, max_in_flight: int | None = None,
                 env_vars: dict[str, str] | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise ExecutorUnavailable(
                "--executor ray needs Ray: pip install 'naseval-cli[ray]'"
            ) from None
        self._ray = ray
        address = address or os.environ.get("RAY_ADDRESS") or None
        if address is not None:
            check_ray_reachable(address)
        runtime_env = {"env_vars": {**_forwarded_env(), **(env_vars or {})}}
        try:
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False,
                     runtime_env=runtime_env, include_dashboard=False if address is None else None)
        except Exception as error:
            where = address or "a local Ray instance"
            raise ExecutorUnavailable(f"cannot connect to Ray at {where}: {_first_line(error)}; check "
                               "--ray-address/RAY_ADDRESS and that `ray status` works") from None
        self.max_retries = max_retries
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.max_in_flight = max_in_flight or max(1, cpus)
        self._remote = ray.remote(_run_on_worker)

    def run(
        self, specs: Sequence[JobSpec], start: StartJob, runtime: JobRuntime, sink: ProgressSink
    ) -> Iterator[JobOutcome]:
        pending: dict[Any, tuple[JobSpec, Ticket]] = {}
        try:
            yield from self._dispatch(list(specs), pending, start, runtime, sink)
        except BaseException:  # Ctrl-C or a driver error: do not leave tasks running
            for ref in pending:
                self._ray.cancel(ref, force=True)
            raise

    def _dispatch(self, queue: list[JobSpec], pending: dict[Any, tuple[JobSpec, Ticket]],
                  start: StartJob, runtime: JobRuntime, sink: ProgressSink) -> Iterator[JobOutcome]:
        ray = self._ray
        while queue or pending:
            while queue and len(pending) < self.max_in_flight:
                spec = queue.pop(0)
                ticket = start(spec)
                sink.job_started(spec, ticket.resumed)
                ref = self._remote.options(
                    num_cpus=spec.num_cpus, num_gpus=spec.num_gpus, max_retries=self.max_retries,
                    name=spec.name,
                ).remote(spec, ticket.run_id, ticket.resumed, runtime)
                pending[ref] = (spec, ticket)
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                spec, ticket = pending.pop(ref)
                try:
                    outcome: JobOutcome = ray.get(ref)
                except Exception as error:  # the task's worker died beyond its retries
                    outcome = JobOutcome(spec, "FAILED", None, run_id=ticket.run_id,
                                         error=f"Ray task failed: {_first_line(error)}")
                sink.job_finished(outcome)
                yield outcome

    def close(self) -> None:
        self._ray.shutdown()


def check_ray_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast (Ray itself waits minutes) when a head's GCS port does not accept connections."""
    if address == "auto" or ("://" in address and not address.startswith("ray://")):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ExecutorUnavailable(f"--ray-address {address!r} is not host:port (e.g. 127.0.0.1:6379)")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as error:
        raise ExecutorUnavailable(
            f"Ray at {address} does not answer ({error}); start it with `ray start --head` or "
            "fix --ray-address/RAY_ADDRESS"
        ) from None


def _forwarded_env() -> dict[str, str]:
    """Settings a worker needs to find the same data and code as the driver."""
    names = ("NASEVAL_DATA_DIR", "NASEVAL_CLI_JOBS", "PYTHONPATH", "MLFLOW_TRACKING_USERNAME",
             "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")
    return {name: os.environ[name] for name in names if name in os.environ}


def make_executor(name: str, ray_address: str | None = None) -> Executor:
    if name == "local":
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(ray_address)
    raise ValueError(f"unknown executor {name!r}; use local or ray")


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
