"""Bad input: one `error:` line that says what to do, exit code 2, no traceback, nothing lost."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import TINY, assert_usage_error, free_port, nas
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.usefixtures("workdir", "fake_jobs")


def test_unknown_policy() -> None:
    assert_usage_error(nas("run", "compare", "--policies", "darts,enass"), "unknown policy 'enass'",
                       "did you mean enas")
    assert_usage_error(nas("run", "search", "--policy", "bogus"), "unknown policy 'bogus'")


@pytest.mark.parametrize("space", ["0", "-3"])
def test_space_zero(space: str) -> None:
    assert_usage_error(nas("run", "compare", "--space", space), "--space must be >= 1")
    assert_usage_error(nas("space", "size", "--", space), ">= 1")


@pytest.mark.parametrize("arch", ["tanh:3", "tanh:0 relu", "banana:0", "x.json"])
def test_malformed_architecture(arch: str) -> None:
    result = nas("run", "train", "--arch", arch)
    assert_usage_error(result)
    assert_usage_error(nas("space", "show", arch))


def test_malformed_genotype_file(tmp_path: Path) -> None:
    path = tmp_path / "g.json"
    path.write_text('{"recurrent": [["tanh", 4]], "concat": [1]}')
    assert_usage_error(nas("run", "train", "--arch", str(path)), "node 1")


def test_unknown_set_key() -> None:
    assert_usage_error(nas("run", "compare", "--set", "evaluation.train.epoch=3"),
                       "unknown setting 'evaluation.train.epoch'", "evaluation.train.epochs")
    assert_usage_error(nas("run", "compare", "--set", "evaluation.train.epochs"), "key=value")
    assert_usage_error(nas("run", "compare", "--set", "evaluation.train.epochs=lots"), "integer")


def test_config_file_errors(tmp_path: Path) -> None:
    assert_usage_error(nas("run", "compare", "--config", str(tmp_path / "none.toml")), "does not exist")
    bad = tmp_path / "bad.toml"
    bad.write_text("[evaluation.train]\nepochz = 3\n")
    assert_usage_error(nas("run", "compare", "--config", str(bad)), "epochz", "epochs")


def test_tracking_server_that_does_not_answer(workdir: Path) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    result = nas("run", "compare", "--space", "2", "--tracking-uri", uri, *TINY)
    assert_usage_error(result, "does not answer", uri)
    client = MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")
    assert client.search_experiments()[0].name == "Default"  # nothing written elsewhere instead
    assert len(client.search_experiments()) == 1


def test_missing_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NASEVAL_DATA_DIR", str(tmp_path / "nowhere"))
    assert_usage_error(nas("run", "compare", "--space", "2"), "lacks", "nas data download")
    assert_usage_error(nas("data", "path"), "lacks")
    assert_usage_error(nas("data", "verify", str(tmp_path)), "missing")


def test_ptb_download_failure_is_one_error_before_any_job(
        workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No PTB anywhere and no network: the download is tried once, up front, and its failure is
    one line (not one failed job per job), with nothing logged."""
    import urllib.error
    import urllib.request

    monkeypatch.delenv("NASEVAL_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(workdir / "cache"))
    tried: list[str] = []

    def offline(url: str, timeout: float = 0.0) -> None:
        tried.append(url)
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    result = nas("run", "compare", "--space", "8")
    assert_usage_error(result, "downloading", "ptb.train.txt", "check the network",
                       str(workdir / "cache" / "naseval" / "ptb"))
    assert len(tried) == 1
    client = MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")
    assert [e.name for e in client.search_experiments()] == ["Default"]


def test_other_bad_options() -> None:
    assert_usage_error(nas("run", "compare", "--preset", "huge"), "unknown preset 'huge'", "quick")
    assert_usage_error(nas("run", "compare", "--seeds", "two"), "--seeds")
    assert_usage_error(nas("run", "compare", "--device", "tpu"), "auto, cpu or cuda")
    assert_usage_error(nas("run", "compare", "--executor", "slurm", *TINY), "local or ray")
    assert_usage_error(nas("run", "ground-truth", "--space", "8"), "too many")
    assert_usage_error(nas("report", "0123456789abcdef"), "no run")


def test_ray_cluster_that_does_not_answer() -> None:
    pytest.importorskip("ray")
    address = f"127.0.0.1:{free_port()}"
    result = nas("run", "compare", "--space", "3", "--executor", "ray", "--ray-address", address, *TINY)
    assert_usage_error(result, f"Ray at {address} does not answer", "ray start --head")


def test_cuda_without_a_device() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible")
    assert_usage_error(nas("run", "compare", "--device", "cuda"), "no CUDA device")
