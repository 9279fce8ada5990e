"""MLflow: the store, experiments, one parent run per invocation, a child run per job, resume.

Conventions (shared/DESIGN.md): the default store is an absolute `sqlite:///<cwd>/mlflow.db`;
`--tracking-uri` or `MLFLOW_TRACKING_URI` name another (e.g. a server). The driver creates the
experiment before any job starts. A child run carries its job's identity as the tag
`naseval.job_id`; a finished one is reused by any later invocation, an unfinished one (killed,
failed) is continued in place, so re-running a command never duplicates a child run. Metric steps
already in the store are never logged again (`MetricLog`).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, Run, RunTag, ViewType
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from naseval.cli.plan import JobSpec

JOB_ID_TAG = "naseval.job_id"
INVOCATION_TAG = "naseval.invocation"
KIND_TAG = "naseval.kind"  # "invocation" (a parent run) or "job" (a child run)
FAILURE_TAG = "naseval.failure"
RESULT_ARTIFACT = "results.json"


class TrackingUnavailable(RuntimeError):
    """The tracking store cannot be reached or opened."""


def default_tracking_uri(cwd: Path | None = None) -> str:
    """`sqlite:///<absolute cwd>/mlflow.db`."""
    return f"sqlite:///{((cwd or Path.cwd()) / 'mlflow.db').resolve()}"


def resolve_tracking_uri(option: str | None, cwd: Path | None = None) -> str:
    """--tracking-uri, else MLFLOW_TRACKING_URI, else the default sqlite store in `cwd`."""
    uri = option or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(cwd)
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        # A relative sqlite path: make it absolute so Ray workers and `nas ui` see the same file.
        uri = f"sqlite:///{Path(uri.removeprefix('sqlite:///')).resolve()}"
    return uri


def is_server_uri(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def check_reachable(uri: str, timeout_s: float = 5.0) -> None:
    """Raise TrackingUnavailable (with what to do) when a tracking server does not answer."""
    if not is_server_uri(uri):
        return
    url = uri.rstrip("/") + "/api/2.0/mlflow/experiments/search?max_results=1"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            response.read()
    except urllib.error.HTTPError as error:
        if error.code in (401, 403):
            raise TrackingUnavailable(
                f"tracking server {uri} refused access (HTTP {error.code}); set "
                "MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN"
            ) from None
        raise TrackingUnavailable(
            f"tracking server {uri} answered HTTP {error.code}; check that it is an MLflow server"
        ) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise TrackingUnavailable(
            f"tracking server {uri} does not answer ({reason}); start it, or leave out "
            "--tracking-uri/MLFLOW_TRACKING_URI to use the local store ./mlflow.db"
        ) from None


def _artifact_root_for(uri: str) -> str | None:
    """For a sqlite store, artifacts go beside the database, by absolute path."""
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///"))
        return (db.parent / "mlartifacts").resolve().as_uri()
    return None


LOCK_RETRIES = 8  # attempts of a store call that hit "database is locked" (parallel sqlite writers)


class RetryingClient:
    """An MlflowClient whose calls are retried, with backoff, while a sqlite store is locked.

    Ray workers of one run write to the same sqlite file; sqlite's own 5 s lock wait is not
    always enough on a busy machine.
    """

    def __init__(self, tracking_uri: str) -> None:
        self._client = MlflowClient(tracking_uri=tracking_uri)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            for attempt in range(LOCK_RETRIES):
                try:
                    return attribute(*args, **kwargs)
                except Exception as error:
                    if "database is locked" not in str(error) or attempt == LOCK_RETRIES - 1:
                        raise
                    time.sleep(0.2 * 2**attempt)
            raise AssertionError("unreachable")

        return call


def tracking_client(uri: str) -> MlflowClient:
    """A client of `uri`; for sqlite stores one that waits out concurrent writers."""
    if uri.startswith("sqlite:"):
        client: MlflowClient = RetryingClient(uri)  # type: ignore[assignment]
        return client
    return MlflowClient(tracking_uri=uri)


class Tracker:
    """The driver's side of MLflow: experiments, parent runs, finding and preparing child runs."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.client = tracking_client(uri)

    def experiment(self, name: str) -> str:
        """The id of experiment `name`, created (once, by the driver) if it does not exist."""
        try:
            existing = self.client.get_experiment_by_name(name)
            if existing is not None:
                if existing.lifecycle_stage == "deleted":
                    self.client.restore_experiment(existing.experiment_id)
                return str(existing.experiment_id)
            return str(self.client.create_experiment(name, artifact_location=_artifact_root_for(self.uri)))
        except TrackingUnavailable:
            raise
        except Exception as error:
            again = self._quiet_get(name)
            if again is not None:
                return again
            raise TrackingUnavailable(
                f"cannot open experiment {name!r} in {self.uri}: {_one_line(error)}"
            ) from None

    def _quiet_get(self, name: str) -> str | None:
        try:
            existing = self.client.get_experiment_by_name(name)
        except Exception:
            return None
        return None if existing is None else str(existing.experiment_id)

    # -- parent runs ----------------------------------------------------------------------------

    def open_parent(
        self,
        experiment_id: str,
        *,
        invocation_key: str,
        name: str,
        tags: Mapping[str, str],
        params: Mapping[str, str],
        resume: bool,
    ) -> tuple[str, bool]:
        """(run id, resumed): the unfinished parent of the same invocation, or a new one."""
        if resume:
            for run in self._search(
                [experiment_id],
                f"tags.`{INVOCATION_TAG}` = '{invocation_key}' and tags.`{KIND_TAG}` = 'invocation'",
            ):
                if run.info.status != "FINISHED":
                    self.client.update_run(run.info.run_id, status="RUNNING")
                    return run.info.run_id, True
        run = self.client.create_run(
            experiment_id,
            run_name=name,
            tags={**tags, INVOCATION_TAG: invocation_key, KIND_TAG: "invocation"},
        )
        self.log_params(run.info.run_id, params)
        return run.info.run_id, False

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        items = [Param(key, str(value)[:6000]) for key, value in params.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[start : start + 100])

    def mark_failed(self, run_id: str, reason: str) -> None:
        """Mark a child run FAILED with its reason (a no-op for one already marked)."""
        run = self.client.get_run(run_id)
        if run.info.status != "FAILED":
            self.client.set_tag(run_id, FAILURE_TAG, reason[:5000])
            self.client.set_terminated(run_id, "FAILED")

    def finish(self, run_id: str, ok: bool) -> None:
        self.client.set_terminated(run_id, "FINISHED" if ok else "FAILED")

    # -- child runs -------------------------------------------------------------------------------

    def find_finished_job(self, job_id: str) -> Run | None:
        """The newest FINISHED child run of this job in any experiment of the store."""
        experiment_ids = [e.experiment_id for e in self.client.search_experiments(ViewType.ACTIVE_ONLY)]
        for run in self._search(experiment_ids, f"tags.`{JOB_ID_TAG}` = '{job_id}'"):
            if run.info.status == "FINISHED":
                return run
        return None

    def prepare_job_run(
        self, spec: JobSpec, *, experiment_id: str, parent_run_id: str, tags: Mapping[str, str], resume: bool
    ) -> tuple[str, bool]:
        """(run id, resumed): the job's unfinished run in this experiment, continued, or a new one."""
        if resume:
            for run in self._search([experiment_id], f"tags.`{JOB_ID_TAG}` = '{spec.job_id}'"):
                if run.info.status != "FINISHED":
                    self.client.update_run(run.info.run_id, status="RUNNING")
                    self.client.set_tag(run.info.run_id, MLFLOW_PARENT_RUN_ID, parent_run_id)
                    if FAILURE_TAG in run.data.tags:
                        self.client.delete_tag(run.info.run_id, FAILURE_TAG)
                    return run.info.run_id, True
        run = self.client.create_run(
            experiment_id,
            run_name=spec.name,
            tags={
                **tags,
                MLFLOW_PARENT_RUN_ID: parent_run_id,
                MLFLOW_RUN_NAME: spec.name,
                JOB_ID_TAG: spec.job_id,
                KIND_TAG: "job",
                "naseval.command": spec.command,
                "naseval.phase": spec.phase,
                "naseval.config_hash": spec.config_hash,
                "policy": spec.policy or "",
                "seed": str(spec.seed),
                "space": json.dumps(dict(spec.space)),
            },
        )
        return run.info.run_id, False

    def load_result(self, run_id: str) -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as tmp:
            path = self.client.download_artifacts(run_id, RESULT_ARTIFACT, tmp)
            with open(path) as handle:
                result: dict[str, Any] = json.load(handle)
        return result

    def children(self, experiment_id: str, parent_run_id: str) -> list[Run]:
        return self._search([experiment_id], f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{parent_run_id}'")

    def _search(self, experiment_ids: list[str], filter_string: str) -> list[Run]:
        runs: list[Run] = []
        token = None
        while True:
            page = self.client.search_runs(
                experiment_ids,
                filter_string=filter_string,
                order_by=["attributes.start_time DESC"],
                page_token=token,
            )
            runs.extend(page)
            token = page.token
            if not token:
                return runs


class MetricLog:
    """Logs metric steps of one run, skipping every (key, step) the store already has.

    A resumed training replays nothing it logged before: the steps it logged before the kill
    are skipped, and only steps beyond each key's last logged step reach the store.
    """

    def __init__(self, client: MlflowClient, run_id: str) -> None:
        self.client = client
        self.run_id = run_id
        self.last_step: dict[str, int] = {}
        for key in client.get_run(run_id).data.metrics:
            history = client.get_metric_history(run_id, key)
            if history:
                self.last_step[key] = max(metric.step for metric in history)

    def log(self, step: int, metrics: Mapping[str, float], prefix: str = "") -> None:
        now = int(time.time() * 1000)
        batch = []
        for key, value in metrics.items():
            full = f"{prefix}{key}"
            if step <= self.last_step.get(full, -1):
                continue
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            batch.append(Metric(full, number, now, step))
            self.last_step[full] = step
        if batch:
            self.client.log_batch(self.run_id, metrics=batch)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)[:5000]) for k, v in tags.items()])


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
