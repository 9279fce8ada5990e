"""The non-experiment commands: space, data, config, version, ui, bench, report errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import assert_usage_error, free_port, nas

from naseval.space import Architecture, Space


def test_space_size_sample_show_enumerate() -> None:
    assert nas("space", "size", "8").stdout.strip() == "2,642,411,520"
    assert json.loads(nas("space", "size", "2", "--json").stdout) == {"nodes": 2, "size": 32}
    sampled = nas("space", "sample", "8", "--count", "3", "--seed", "1", "--json")
    archs = [Architecture.parse(a) for a in json.loads(sampled.stdout)]
    assert len(archs) == 3 and all(a in Space(8) for a in archs)
    assert sampled.stdout == nas("space", "sample", "8", "--count", "3", "--seed", "1", "--json").stdout
    shown = json.loads(nas("space", "show", "tanh:0 relu:1", "--json").stdout)
    assert shown["index"] == Space(2).index(Architecture.parse("tanh:0 relu:1"))
    assert shown["genotype"] == {"recurrent": [["tanh", 0], ["relu", 1]], "concat": [1, 2]}
    listed = nas("space", "enumerate", "2", "--limit", "40").stdout.splitlines()
    assert len(listed) == 32 and listed[0].split("\t") == ["0", str(Space(2).at(0))]
    truncated = nas("space", "enumerate", "8", "--limit", "2")
    assert len(truncated.stdout.splitlines()) == 2 and "more" in truncated.stderr


def test_space_show_reads_a_genotype_file(tmp_path: Path) -> None:
    path = tmp_path / "genotype.json"
    path.write_text(json.dumps({"recurrent": [["sigmoid", 0], ["relu", 1]], "concat": [1, 2]}))
    assert json.loads(nas("space", "show", str(path), "--json").stdout)["arch"] == "sigmoid:0 relu:1"
    darts = tmp_path / "darts.txt"
    darts.write_text("Genotype(recurrent=[('tanh', 0), ('relu', 1)], concat=range(1, 3))")
    assert json.loads(nas("space", "show", str(darts), "--json").stdout)["arch"] == "tanh:0 relu:1"


@pytest.mark.ptb
def test_data_path_and_verify() -> None:
    if not os.environ.get("NASEVAL_DATA_DIR"):
        pytest.skip("NASEVAL_DATA_DIR is not set (the real PTB files)")
    path = nas("data", "path")
    assert path.exit_code == 0 and Path(path.stdout.strip()) == Path(os.environ["NASEVAL_DATA_DIR"])
    verified = nas("data", "verify")
    assert verified.exit_code == 0 and "match their SHA256" in verified.stdout


def test_data_verify_catches_a_corrupt_file(tmp_path: Path) -> None:
    for name in ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"):
        (tmp_path / name).write_text("not ptb\n")
    assert_usage_error(nas("data", "verify", str(tmp_path)), "corrupt", "nas data download")


def test_config_lists_and_applies_settings(tmp_path: Path) -> None:
    listed = json.loads(nas("config", "--json").stdout)
    assert listed["evaluation.train.epochs"] == 2 and listed["policies"] == ["darts", "nao", "enas", "random"]
    assert "policy.darts.arch_lr" in listed and "policy_small.nao.seed_pool" in listed
    toml = tmp_path / "c.toml"
    toml.write_text("seeds = 5\n[evaluation.train]\nepochs = 9\n")
    changed = json.loads(nas("config", "--config", str(toml), "--set", "seeds=4", "--json").stdout)
    assert changed["seeds"] == 4 and changed["evaluation.train.epochs"] == 9
    paper = json.loads(nas("config", "--preset", "paper", "--json").stdout)
    assert paper["evaluation.train.nhid"] == 850 and paper["evaluation.train.epochs"] == 1000
    assert paper["evaluation.train.asgd"] is True and paper["seeds"] == 10
    assert paper["resources.num_gpus"] == 1.0


def test_version() -> None:
    versions = json.loads(nas("version", "--json").stdout)
    assert versions["naseval-cli"] == "0.2.0" and "torch" in versions


def test_help_at_every_level() -> None:
    for args in ([], ["run"], ["run", "compare"], ["run", "search"], ["run", "train"],
                 ["run", "ground-truth"], ["run", "ws-ranking"], ["run", "sharing"], ["run", "paper"],
                 ["space"], ["space", "show"], ["data"], ["data", "download"], ["report"], ["ui"],
                 ["bench"], ["config"]):
        result = nas(*args, "--help")
        assert result.exit_code == 0 and "Usage:" in result.stdout, args


def test_ui_serves_the_store(workdir: Path) -> None:
    from naseval.cli.commands import ui_command

    port = free_port()
    command = [sys.executable, "-m", "naseval.cli.main", "ui", "--port", str(port)]
    assert ui_command(f"sqlite:///{workdir / 'mlflow.db'}", port)[1:3] == ["ui", "--host"]
    process = subprocess.Popen(command, cwd=workdir, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert process.poll() is None, "nas ui exited"
                assert time.monotonic() < deadline, "nas ui did not answer"
                time.sleep(0.5)
        url = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=5"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert "Default" in response.read().decode()
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)


def test_ui_without_a_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert_usage_error(nas("ui"), "no MLflow store", "nas run compare")


def test_bench_measures_and_estimates() -> None:
    result = nas("bench", "--steps", "1", "--no-reference", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["throughput"]["evaluation"]["fast_tokens_per_s"] > 0
    assert data["compare_space8"]["jobs"] == 16 and data["compare_space8"]["seconds"] > 0


def test_dry_run_prints_the_plan_and_runs_nothing(workdir: Path) -> None:
    from mlflow.tracking import MlflowClient

    result = nas("run", "compare", "--space", "8", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["jobs"] == 16 and plan["estimated_seconds"] > 0
    assert [s["stage"] for s in plan["stages"]] == ["search", "evaluation"]
    assert len(plan["stages"][0]["names"]) == 8
    experiments = MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}").search_experiments()
    assert [e.name for e in experiments] == ["Default"]
