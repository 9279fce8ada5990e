from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from naseval.policies import (
    POLICIES,
    Budget,
    SearchResult,
    TabularEnv,
    ToyMixtureEnv,
    make_policy,
)
from naseval.space import Space

# Settings that make every policy cheap on Space(4); the loops are the published ones.
CHEAP = {
    "random": {},
    "random-ws": {"final_samples": 20},
    "enas": {"controller_steps": 10, "final_samples": 10},
    "darts": {},
    "nao": {"seed_pool": 20, "new_archs": 5, "random_archs": 5, "top_k": 5, "epd_epochs": 5},
}


def test_registry_names_and_class_attributes():
    assert list(POLICIES) == ["random", "random-ws", "enas", "darts", "nao"]
    for name, cls in POLICIES.items():
        assert cls.name == name
        assert isinstance(cls.needs_mixture, bool) and isinstance(cls.trains_supernet, bool)
        assert dataclasses.is_dataclass(cls.Config)
        assert isinstance(cls.Config.small_space(), cls.Config)
    assert [n for n, c in POLICIES.items() if c.needs_mixture] == ["darts"]
    assert [n for n, c in POLICIES.items() if not c.trains_supernet] == ["random"]


def test_make_policy_applies_settings_over_the_defaults():
    policy = make_policy("enas", {"lr": 1e-3})
    assert policy.config.lr == 1e-3 and policy.config.temperature == 5.0
    small = make_policy("enas", {"lr": 1e-3}, small_space=True)
    assert small.config.controller_steps == 20 and small.config.lr == 1e-3


def test_make_policy_unknown_names_are_listed():
    with pytest.raises(ValueError, match=r"unknown policy 'bogus' \(known: random, random-ws"):
        make_policy("bogus")
    with pytest.raises(
        ValueError, match=r"unknown setting 'temprature' for policy 'enas'.*temperature"
    ):
        make_policy("enas", {"temprature": 3.0})
    with pytest.raises(
        ValueError, match=r"unknown setting 'x' for policy 'random' \(valid: none\)"
    ):
        make_policy("random", {"x": 1})


def test_make_policy_bad_values_name_the_field():
    with pytest.raises(ValueError, match="DartsConfig.arch_lr"):
        make_policy("darts", {"arch_lr": -1.0})
    with pytest.raises(ValueError, match="RandomWSConfig.final_samples"):
        make_policy("random-ws", {"final_samples": 0})


@pytest.mark.parametrize("name", list(POLICIES))
def test_every_policy_is_deterministic_and_json_serialisable(name, space4, table4):
    def run(seed: int) -> SearchResult:
        if POLICIES[name].needs_mixture:
            env = ToyMixtureEnv(space4, seed=0, steps_per_epoch=3)
        else:
            env = TabularEnv(space4, table4, noise=0.05, steps_per_epoch=3)
        policy = make_policy(name, CHEAP[name])
        return policy.search(env, Budget(epochs=2, eval_every=1), np.random.default_rng(seed))

    first, again = run(11), run(11)
    assert first.arch in space4 and first.history
    assert json.dumps(first.to_dict(), allow_nan=False) == json.dumps(again.to_dict())
    restored = SearchResult.from_dict(json.loads(first.to_json()))
    assert restored.arch == first.arch and restored.ranking == first.ranking
    assert first.policy == name


def test_callback_receives_every_history_entry(space4, table4):
    seen = []
    env = TabularEnv(space4, table4, steps_per_epoch=2)
    result = make_policy("enas", CHEAP["enas"]).search(
        env, Budget(epochs=3), np.random.default_rng(0), callback=seen.append
    )
    assert seen == result.history and len(seen) == 4


def test_budget_overrides_the_config_counts(space4, table4):
    env = TabularEnv(space4, table4, steps_per_epoch=1)
    result = make_policy("enas", CHEAP["enas"]).search(
        env, Budget(epochs=1, controller_steps=3, final_samples=2), np.random.default_rng(0)
    )
    assert result.history[0]["n_sampled"] == 3 and result.history[-1]["n_sampled"] == 2
    assert Budget(epochs=2, steps_per_epoch=3).to_dict()["steps_per_epoch"] == 3
    assert Space(2).size == 32


@pytest.mark.parametrize(
    ("name", "field", "value"),
    [
        ("enas", "baseline_decay", "0.95"),
        ("enas", "baseline_decay", None),
        ("nao", "trade_off", "0.8"),
        ("nao", "encoder_dropout", float("nan")),
        ("darts", "arch_betas", 0.9),
        ("darts", "arch_betas", ("0.9", "0.999")),
    ],
)
def test_range_settings_of_the_wrong_type_name_the_field(name, field, value):
    """A string or None from a config file is a ValueError naming the field, not a TypeError."""
    owner = POLICIES[name].Config.__name__
    with pytest.raises(ValueError, match=rf"{owner}\.{field} must be"):
        make_policy(name, {field: value})
