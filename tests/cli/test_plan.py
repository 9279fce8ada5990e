"""Job identity and --seeds."""

from __future__ import annotations

import dataclasses

import pytest

from naseval.cli.plan import JobSpec, seeds_from_option


def _spec(**changes: object) -> JobSpec:
    spec = JobSpec(command="search", space={"n_nodes": 2}, policy="darts", seed=0, phase="search",
                   config={"budget": {"epochs": 2}}, label="search/darts/seed=0")
    return dataclasses.replace(spec, **changes)  # type: ignore[arg-type]


def test_identity_ignores_label_and_resources_but_not_config() -> None:
    base = _spec()
    assert base.job_id == _spec(label="elsewhere", num_gpus=1.0).job_id
    assert base.job_id != _spec(config={"budget": {"epochs": 3}}).job_id
    assert base.job_id != _spec(seed=1).job_id
    assert base.job_id != _spec(policy="enas").job_id
    assert base.job_id != _spec(inputs={"arch": "tanh:0"}).job_id
    assert set(base.identity) == {"command", "space", "policy", "seed", "phase", "config_hash"}


def test_seeds_option() -> None:
    assert seeds_from_option(None, [0, 1]) == [0, 1]
    assert seeds_from_option("3", []) == [0, 1, 2]
    assert seeds_from_option("0,4,7", []) == [0, 4, 7]
    for bad in ("0", "x", "1,1", "-1,2", ""):
        with pytest.raises(ValueError, match="--seeds"):
            seeds_from_option(bad, [])
