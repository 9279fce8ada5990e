"""`nas run compare` through the whole framework (plan, driver, MLflow, resume, failures, --out),
with the fake job bodies so each run takes seconds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import TINY, nas
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.usefixtures("fake_jobs", "workdir")

COMPARE = ["run", "compare", "--space", "2", "--policies", "darts,enas,random", "--seeds", "2", *TINY]


def _client(workdir: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")


def _runs(client: MlflowClient) -> list:
    experiment = client.get_experiment_by_name("naseval-compare")
    assert experiment is not None
    return list(client.search_runs([experiment.experiment_id], max_results=1000))


def test_compare_logs_parent_children_metrics_and_artifacts(workdir: Path) -> None:
    result = nas(*COMPARE, "--out", "out")
    assert result.exit_code == 0, result.output
    first = result.stderr.splitlines()[0]
    assert first.startswith("quick preset") and "not the science" in first
    assert "jobs on cpu" in result.stderr
    for row in ("| DARTS ", "| ENAS ", "| RANDOM ", "| REAL-BEST "):
        assert row in result.stdout

    client = _client(workdir)
    runs = _runs(client)
    parents = [r for r in runs if r.data.tags.get("naseval.kind") == "invocation"]
    children = [r for r in runs if r.data.tags.get("naseval.kind") == "job"]
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.params["evaluation.train.epochs"] == "3"
    assert parent.data.tags["preset"] == "quick" and "git_commit" in parent.data.tags
    assert "version.naseval-cli" in parent.data.tags
    names = sorted(r.info.run_name for r in children)
    assert names == sorted(
        [f"search/{p}/seed={s}" for p in ("darts", "enas", "random") for s in (0, 1)]
        + [f"train/{p}/seed={s}" for p in ("darts", "enas", "random") for s in (0, 1)]
        + ["ground-truth/space=2/seed=0", "ground-truth/space=2/seed=1"]
    )
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.info.status == "FINISHED"
        assert child.data.tags["naseval.job_id"]
    train = next(r for r in children if r.info.run_name == "train/darts/seed=0")
    history = client.get_metric_history(train.info.run_id, "valid_ppl")
    assert [m.step for m in history] == [0, 1, 2]
    assert train.data.params["config.train.epochs"] == "3"
    assert train.data.tags["policy"] == "darts" and train.data.tags["seed"] == "0"
    search = next(r for r in children if r.info.run_name == "search/darts/seed=0")
    artifacts = {a.path for a in client.list_artifacts(search.info.run_id)}
    assert {"genotype.json", "results.json"} <= artifacts
    parent_artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"results.json", "table.md", "table.csv", "table.tex", "report.md", "jobs.json"} <= parent_artifacts

    out = workdir / "out"
    assert "REAL-BEST" in (out / "table.md").read_text()
    results = json.loads((out / "results.json").read_text())
    assert set(results["runs"]) == {"darts", "enas", "random"}
    assert "ground_truth" in results


def test_rerun_reuses_finished_jobs_and_fresh_starts_over(workdir: Path) -> None:
    first = nas(*COMPARE)
    assert first.exit_code == 0, first.output
    client = _client(workdir)
    children_before = [r for r in _runs(client) if r.data.tags.get("naseval.kind") == "job"]

    again = nas(*COMPARE)
    assert again.exit_code == 0, again.output
    assert again.stdout == first.stdout  # the same table
    assert "8 finished earlier and reused" in again.stderr  # the 6 searches, 2 ground truths
    assert "(14 job(s) reused)" in again.stderr
    children_after = [r for r in _runs(client) if r.data.tags.get("naseval.kind") == "job"]
    assert len(children_after) == len(children_before)  # no duplicate child runs

    fresh = nas(*COMPARE, "--fresh")
    assert fresh.exit_code == 0, fresh.output
    assert fresh.stdout == first.stdout
    children_fresh = [r for r in _runs(client) if r.data.tags.get("naseval.kind") == "job"]
    assert len(children_fresh) == 2 * len(children_before)


def test_a_failing_job_is_marked_and_the_others_go_on(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_FAIL_POLICY", "enas")
    result = nas(*COMPARE)
    assert result.exit_code == 1, result.output
    assert "search/enas/seed=0: RuntimeError: injected failure of enas" in result.stderr
    assert "2 evaluation job(s) not run" in result.stderr
    assert "| DARTS " in result.stdout and "| ENAS " not in result.stdout
    assert result.stderr.strip().splitlines()[-1].startswith("error: 2 job(s) failed, 2 not run")
    client = _client(workdir)
    failed = [r for r in _runs(client) if r.info.status == "FAILED" and r.data.tags.get("naseval.kind") == "job"]
    assert sorted(r.info.run_name for r in failed) == ["search/enas/seed=0", "search/enas/seed=1"]
    assert "injected failure" in failed[0].data.tags["naseval.failure"]

    monkeypatch.delenv("FAKE_FAIL_POLICY")
    retry = nas(*COMPARE)
    assert retry.exit_code == 0, retry.output
    assert "| ENAS " in retry.stdout
    runs = _runs(client)
    enas = [r for r in runs if r.info.run_name == "search/enas/seed=0"]
    assert len(enas) == 1 and enas[0].info.status == "FINISHED"  # continued, not duplicated
    assert len([r for r in runs if r.data.tags.get("naseval.kind") == "invocation"]) == 1


def test_json_output_and_report(workdir: Path) -> None:
    result = nas(*COMPARE, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["missing"] == []
    labels = [row["label"] for row in data["results"]["comparison"]["rows"]]
    assert labels == ["DARTS", "ENAS", "RANDOM", "REAL-BEST"]

    report = nas("report", data["parent_run_id"], "--out", "rep")
    assert report.exit_code == 0, report.output
    assert "REAL-BEST" in report.stdout
    assert (workdir / "rep" / "report.md").read_text().startswith("# compare/space=2/quick")
