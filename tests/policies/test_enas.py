from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch
from scipy import stats

from naseval.policies import Budget, EnasConfig, EnasPolicy, TabularEnv
from naseval.space import Architecture, Space


def test_controller_probabilities_sum_to_one_over_the_space():
    space = Space(3)
    policy = EnasPolicy()
    controller = policy.build_controller(space, np.random.default_rng(0), torch.device("cpu"))
    with torch.no_grad():
        total = sum(math.exp(float(controller.log_prob(arch))) for arch in space)
    assert total == pytest.approx(1.0, abs=1e-5)


def test_controller_samples_follow_its_own_probabilities():
    space = Space(2)
    controller = EnasPolicy().build_controller(space, np.random.default_rng(1), torch.device("cpu"))
    with torch.no_grad():
        # sharpen the first op decision so the test has power against a skewed policy
        controller.op_heads[0].bias.copy_(torch.tensor([8.0, 0.0, -8.0, 0.0]))
        rng = np.random.default_rng(2)
        draws = Counter(controller.sample(rng)[0] for _ in range(2000))
        expected = np.array([math.exp(float(controller.log_prob(a))) for a in space]) * 2000
    observed = np.array([draws[a] for a in space])
    keep = expected > 5
    pooled_obs = np.append(observed[keep], observed[~keep].sum())
    pooled_exp = np.append(expected[keep], expected[~keep].sum())
    assert stats.chisquare(pooled_obs, pooled_exp).pvalue > 0.01


def test_logits_are_bounded_by_the_tanh_constant():
    space = Space(2)
    controller = EnasPolicy().build_controller(space, np.random.default_rng(0), torch.device("cpu"))
    with torch.no_grad():
        controller.op_heads[1].weight.mul_(1e4)
        # the most a choice can get among 4: e^2.5 / (e^2.5 + 3 e^-2.5)
        bound = math.exp(2.5) / (math.exp(2.5) + 3 * math.exp(-2.5))
        assert max(math.exp(float(controller.log_prob(a))) for a in space) <= bound**2 + 1e-6


def test_enas_probability_of_the_planted_best_exceeds_one_half(space4, table4, planted4):
    """REINFORCE with the published settings climbs to the planted best of 6144 cells."""
    env = TabularEnv(space4, table4)
    policy = EnasPolicy()
    rng = np.random.default_rng(2)
    controller = policy.build_controller(space4, rng, torch.device("cpu"))
    optimizer = torch.optim.Adam(controller.parameters(), lr=policy.config.lr)
    with torch.no_grad():
        start = math.exp(float(controller.log_prob(planted4)))
    assert start < 0.01
    probability = start
    for update in range(1, 1001):
        policy.controller_step(env, controller, optimizer, rng, offset=0)
        if update % 100 == 0:
            with torch.no_grad():
                probability = math.exp(float(controller.log_prob(planted4)))
            if probability > 0.5:
                break
    assert probability > 0.5, f"P(best) = {probability:.3f} after {update} updates"
    assert controller.most_likely() == planted4


def test_enas_search_end_to_end_on_a_table(space4, table4):
    env = TabularEnv(space4, table4, steps_per_epoch=3)
    config = EnasConfig(controller_steps=30, final_samples=20)
    result = EnasPolicy(config).search(env, Budget(epochs=2), np.random.default_rng(0))
    assert env.train_steps == 6
    assert len(result.history) == 3 and result.history[0]["n_sampled"] == 30
    assert set(result.history[0]) >= {"reward", "baseline", "entropy", "train_loss", "sampled_top"}
    scores = [s for _, s in result.ranking]
    assert scores == sorted(scores) and result.arch == result.ranking[0][0]
    assert result.arch in space4 and scores[0] == table4[result.arch]


def test_enas_respects_a_fixed_prefix():
    fixed = Architecture.parse("tanh:0 relu:1")
    space = Space(4, fixed=fixed)
    env = TabularEnv(space, {arch: 60.0 + i for i, arch in enumerate(space)})
    result = EnasPolicy(EnasConfig(controller_steps=5, final_samples=10)).search(
        env, Budget(epochs=1, steps_per_epoch=2), np.random.default_rng(0)
    )
    assert all(arch.nodes[:2] == fixed.nodes for arch, _ in result.ranking)


def test_enas_small_space_variant():
    config = EnasConfig.small_space()
    assert (config.controller_steps, config.reward_batches) == (20, 10)
    assert EnasConfig().controller_steps == 2000


@pytest.mark.parametrize(
    ("field", "value"),
    [("temperature", 0.0), ("lstm_layers", 0), ("baseline_decay", 1.0), ("lr", -1e-3)],
)
def test_enas_invalid_settings_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"EnasConfig.{field}"):
        EnasConfig(**{field: value})
