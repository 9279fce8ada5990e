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


def test_paper_preset_gives_each_policy_its_authors_search_epochs() -> None:
    from naseval.cli.experiments import search_spec
    from naseval.cli.presets import paper
    from naseval.policies import Budget
    from naseval.space import Space

    preset = paper()
    epochs = {
        policy: Budget(**search_spec(preset, Space(8), policy, 0).config["budget"]).epochs
        for policy in ("darts", "enas", "nao", "random-ws")
    }
    assert epochs == {"darts": 50, "enas": 150, "nao": 1000, "random-ws": 50}
    # NAO runs its encoder-predictor-decoder only every eval_every epochs: the budget must
    # leave it rounds to run, in the 8-node space and in the small-space variant alike.
    for space in (Space(8), Space(2)):
        nao = preset.policy_config("nao", space.size)
        assert epochs["nao"] // nao.eval_every >= 4
