"""The policies' own networks follow the env's device; CUDA runs where one is present."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from naseval.policies import POLICIES, Budget, ToyMixtureEnv, make_policy
from naseval.space import Architecture, Space

CHEAP = {
    "random": {},
    "random-ws": {"final_samples": 10},
    "enas": {"controller_steps": 5, "final_samples": 5},
    "darts": {"second_order": True, "xi": 0.2},
    "nao": {"seed_pool": 12, "new_archs": 3, "random_archs": 2, "top_k": 4, "epd_epochs": 3},
}


def _networks(policy) -> list[torch.Tensor]:
    if policy.name == "enas":
        return list(policy.controller.parameters())
    if policy.name == "nao":
        return list(policy.epd.parameters())
    if policy.name == "darts":
        return [policy.alpha]
    return []


@pytest.mark.parametrize("name", list(POLICIES))
def test_policy_networks_live_on_the_env_device_cpu(name):
    env = ToyMixtureEnv(Space(3), seed=0, steps_per_epoch=2)
    policy = make_policy(name, CHEAP[name])
    result = policy.search(env, Budget(epochs=2, eval_every=1), np.random.default_rng(0))
    assert result.arch in env.space
    assert all(t.device.type == "cpu" for t in _networks(policy))


@pytest.mark.cuda
@pytest.mark.parametrize("name", list(POLICIES))
def test_policy_runs_on_cuda_and_matches_cpu_choices(name):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    found = {}
    for device in ("cpu", "cuda"):
        env = ToyMixtureEnv(Space(3), seed=0, steps_per_epoch=2, device=device)
        policy = make_policy(name, CHEAP[name])
        result = policy.search(env, Budget(epochs=2, eval_every=1), np.random.default_rng(0))
        assert all(t.device.type == device for t in _networks(policy))
        found[device] = result
    assert found["cuda"].arch in Space(3)
    if name == "darts":  # deterministic maths: the same cell on both devices
        assert found["cuda"].arch == found["cpu"].arch


@pytest.mark.cuda
def test_darts_recovers_the_planted_optimum_on_cuda():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    planted = Architecture.parse("tanh:0 relu:1 sigmoid:1 identity:2")
    env = ToyMixtureEnv(Space(4), planted, seed=3, lr=0.2, device="cuda")
    policy = make_policy("darts", {"second_order": True, "xi": 0.2})
    result = policy.search(env, Budget(epochs=8, steps_per_epoch=25), np.random.default_rng(0))
    assert result.arch == planted


def test_a_non_env_is_rejected_naming_what_it_lacks():
    @dataclasses.dataclass
    class SpaceOnly:
        space: Space

    env = SpaceOnly(Space(2))
    assert make_policy("random").search(env, Budget(epochs=1), np.random.default_rng(0)).arch
    with pytest.raises(TypeError, match="lacks steps_per_epoch, train_shared, evaluate"):
        make_policy("enas").search(env, Budget(epochs=1), np.random.default_rng(0))
    with pytest.raises(TypeError, match="mixture_loss"):
        make_policy("darts").search(env, Budget(epochs=1), np.random.default_rng(0))
