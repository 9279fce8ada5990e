"""Every run command with the real libraries (trainer, policies, analysis), tiny and synthetic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import nas
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.usefixtures("workdir")

SMALL = [
    "--set", "data.corpus=synthetic", "--set", "data.synthetic_tokens=2000",
    "--set", "search.budget.epochs=2", "--set", "search.budget.steps_per_epoch=3",
    "--set", "evaluation.train.epochs=2", "--set", "evaluation.train.max_steps_per_epoch=5",
    "--set", "ground_truth.seeds=1",
    "--set", "ranking.supernet.epochs=1", "--set", "ranking.supernet.max_steps_per_epoch=5",
]


def test_compare_runs_every_policy_for_real(workdir: Path) -> None:
    result = nas("run", "compare", "--space", "3", "--policies", "darts,nao,enas,random-ws,random",
                 "--seeds", "1", "--json", *SMALL)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    labels = [row["label"] for row in data["results"]["comparison"]["rows"]]
    assert labels == ["DARTS", "NAO", "ENAS", "RANDOM-WS", "RANDOM"]
    client = MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("naseval-compare")
    assert experiment is not None
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    train = runs["train/darts/seed=0"]
    assert [m.step for m in client.get_metric_history(train.info.run_id, "valid_ppl")] == [1, 2]
    assert {"train_loss", "best_valid_ppl", "asgd"} <= set(train.data.metrics)
    search = runs["search/enas/seed=0"]
    assert search.data.tags["arch"] and search.data.params["config.policy.lstm_size"] == "16"


def test_search_and_train_commands(workdir: Path) -> None:
    found = nas("run", "search", "--policy", "enas", "--space", "3", "--seed", "1", "--json", *SMALL)
    assert found.exit_code == 0, found.output
    arch = json.loads(found.stdout)["results"]["searches"][0]["arch"]
    genotype = workdir / "found.json"
    genotype.write_text(json.dumps(json.loads(found.stdout)["results"]["searches"][0]["genotype"]))
    trained = nas("run", "train", "--arch", str(genotype), "--json", *SMALL)
    assert trained.exit_code == 0, trained.output
    result = json.loads(trained.stdout)["results"]["trained"][0]
    assert result["arch"] == arch and result["valid_ppl"] > 1 and result["test_ppl"] > 1
    again = nas("run", "train", "--arch", arch, *SMALL)  # the same job: reused, not retrained
    assert again.exit_code == 0 and "(1 job(s) reused)" in again.stderr


def test_ws_ranking_and_sharing(workdir: Path) -> None:
    ranking = nas("run", "ws-ranking", "--space", "2", "--json", *SMALL)
    assert ranking.exit_code == 0, ranking.output
    study = json.loads(ranking.stdout)["results"]["ws_ranking"]
    assert len(study["seeds"]) == 2 and -1 <= study["mean_tau"] <= 1
    again = nas("run", "ground-truth", "--space", "2", *SMALL)  # reuses the ranking's ground truth
    assert again.exit_code == 0 and "(1 job(s) reused)" in again.stderr
    assert "| RANK | ARCHITECTURE" in again.stdout
    sharing = nas("run", "sharing", "--json", "--out", "sharing", *SMALL)
    assert sharing.exit_code == 0, sharing.output
    assert json.loads(sharing.stdout)["results"]["sharing"]["fixed"] == "tanh:0 relu:1"
    assert (workdir / "sharing" / "sharing.md").exists()
    assert any((workdir / "sharing" / "figures").glob("*.png"))


@pytest.mark.usefixtures("fake_jobs")
def test_paper_composes_every_study(workdir: Path) -> None:
    result = nas("run", "paper", "--out", "paper", "--set", "seeds=2", *SMALL)
    assert result.exit_code == 0, result.output
    report = (workdir / "paper" / "report.md").read_text()
    for part in ("REAL-BEST", "Kendall", "RANK"):
        assert part in report, part
    assert {"table_space8.md", "table_space2.md", "ws_ranking.md", "sharing.md"} <= {
        p.name for p in (workdir / "paper").iterdir()}
