from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from scipy import stats

from naseval.policies import (
    Budget,
    RandomPolicy,
    RandomWSPolicy,
    SearchResult,
    TabularEnv,
    make_policy,
)
from naseval.space import Architecture, Space


def test_random_is_uniform_over_space2_by_chi_square():
    space = Space(2)
    env = TabularEnv(space, {arch: 100.0 for arch in space})
    policy = RandomPolicy()
    rng = np.random.default_rng(0)
    draws = Counter(policy.search(env, Budget(epochs=1), rng).arch for _ in range(6400))
    observed = [draws[arch] for arch in space]
    assert sum(observed) == 6400 and len(draws) == 32
    assert stats.chisquare(observed).pvalue > 0.01


def test_random_same_seed_same_arch_and_no_training(space4, table4):
    env = TabularEnv(space4, table4)
    first = RandomPolicy().search(env, Budget(epochs=3), np.random.default_rng(42))
    again = RandomPolicy().search(env, Budget(epochs=3), np.random.default_rng(42))
    other = RandomPolicy().search(env, Budget(epochs=3), np.random.default_rng(43))
    assert first.arch == again.arch != other.arch
    assert first.arch == space4.sample(np.random.default_rng(42))
    assert env.train_steps == 0 and env.evaluations == 0
    assert RandomPolicy.trains_supernet is False and RandomPolicy.needs_mixture is False


def test_random_ws_returns_the_best_of_what_it_ranked(space4, table4):
    env = TabularEnv(space4, table4, noise=0.2, seed=5, steps_per_epoch=4)
    result = RandomWSPolicy().search(
        env, Budget(epochs=2, final_samples=50), np.random.default_rng(1)
    )
    assert env.train_steps == 8  # one sampled cell per minibatch, 2 epochs of 4
    assert len(result.ranking) == 50 and len({a for a, _ in result.ranking}) == 50
    scores = [s for _, s in result.ranking]
    assert scores == sorted(scores)
    # every score is the env's answer on the same validation batch (offset 0, 1 batch)
    for arch, score in result.ranking:
        assert score == env.evaluate(arch, batches=1, offset=0)
    assert result.arch == min(result.ranking, key=lambda pair: pair[1])[0]
    assert result.history[-1]["ranked"][0] == [str(result.arch), scores[0]]


def test_random_ws_ranks_the_whole_of_a_small_space():
    space = Space(2)
    table = {arch: 50.0 + i for i, arch in enumerate(space)}
    env = TabularEnv(space, table)
    result = make_policy("random-ws", small_space=True).search(
        env, Budget(epochs=1, steps_per_epoch=1), np.random.default_rng(0)
    )
    assert len(result.ranking) == 32 and result.arch == space.at(0)


@pytest.mark.parametrize("bad", [0, -1, 1.5, None])
def test_budget_below_one_epoch_is_rejected_naming_the_field(bad):
    with pytest.raises(ValueError, match="Budget.epochs"):
        Budget(epochs=bad)


def test_budget_steps_come_from_the_env_unless_given(space4, table4):
    env = TabularEnv(space4, table4, steps_per_epoch=9)
    assert Budget(epochs=1).steps(env) == 9
    assert Budget(epochs=1, steps_per_epoch=2).steps(env) == 2
    with pytest.raises(ValueError, match="Budget.steps_per_epoch"):
        Budget(epochs=1, steps_per_epoch=0)
    with pytest.raises(ValueError, match="Budget.final_samples"):
        Budget(epochs=1, final_samples=0)


def test_random_rejects_a_plain_seed(space4, table4):
    with pytest.raises(TypeError, match="numpy Generator"):
        RandomPolicy().search(TabularEnv(space4, table4), Budget(epochs=1), 0)  # type: ignore[arg-type]
    assert isinstance(Architecture.parse("tanh:0"), Architecture)


def test_random_ws_ranks_diverged_cells_last_and_serialises_them_as_null():
    space = Space(2)
    table = {arch: 50.0 + i for i, arch in enumerate(space)}
    worst = space.at(0)

    class Diverging(TabularEnv):  # the supernet's evaluate can overflow to inf
        def evaluate(self, arch: Architecture, batches: int = 1, offset: int = 0) -> float:
            return float("inf") if arch == worst else super().evaluate(arch, batches, offset)

    env = Diverging(space, table)
    result = RandomWSPolicy().search(
        env, Budget(epochs=1, steps_per_epoch=1, final_samples=32), np.random.default_rng(0)
    )
    assert result.ranking[-1][0] == worst and result.arch == space.at(1)
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["ranking"][-1] == [str(worst), None]
    assert SearchResult.from_dict(data).ranking[-1][1] == float("inf")
