from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from naseval.policies import TabularEnv, ToyMixtureEnv
from naseval.space import Architecture, Space


def test_tabular_env_looks_up_and_counts(space4, table4, planted4):
    env = TabularEnv(space4, table4, steps_per_epoch=7)
    assert env.space == space4 and env.steps_per_epoch == 7
    assert env.evaluate(planted4) == table4[planted4]
    assert env.train_shared(planted4, steps=3) == 0.0
    assert env.train_shared() == 0.0
    assert env.train_steps == 4 and env.evaluations == 1
    assert env.parameters() == []


def test_tabular_env_accepts_a_function():
    space = Space(3)
    env = TabularEnv(space, lambda a: 10.0 + space.index(a))
    arch = space.at(17)
    assert env.evaluate(arch) == 27.0


def test_tabular_noise_is_reproducible_per_question_and_multiplicative(space4, table4, planted4):
    env = TabularEnv(space4, table4, noise=0.1, seed=3)
    again = TabularEnv(space4, table4, noise=0.1, seed=3)
    a = env.evaluate(planted4, batches=1, offset=5)
    assert a == again.evaluate(planted4, batches=1, offset=5) == env.evaluate(planted4, 1, 5)
    assert a != env.evaluate(planted4, batches=1, offset=6)
    # log-normal noise: the log-ratio over many questions has mean 0 and sd 0.1
    ratios = [math.log(env.evaluate(planted4, 1, k) / table4[planted4]) for k in range(2000)]
    assert abs(np.mean(ratios)) < 0.01 and abs(np.std(ratios) - 0.1) < 0.01


def test_tabular_errors_name_the_problem(space4, table4):
    env = TabularEnv(space4, table4)
    with pytest.raises(ValueError, match="not in Space"):
        env.evaluate(Architecture.parse("tanh:0"))
    with pytest.raises(ValueError, match="not in the table"):
        TabularEnv(space4, {space4.at(0): 50.0}).evaluate(space4.at(1))
    with pytest.raises(ValueError, match="perplexity > 0"):
        TabularEnv(space4, {space4.at(0): -1.0})
    with pytest.raises(ValueError, match="noise"):
        TabularEnv(space4, table4, noise=-0.5)
    with pytest.raises(ValueError, match="steps"):
        env.train_shared(steps=0)
    with pytest.raises(ValueError, match=r"shape \(10, 4\)"):
        env.mixture_loss(torch.ones(3, 4), "valid")
    with pytest.raises(ValueError, match="split"):
        env.mixture_loss(torch.ones(10, 4), "test")


def test_tabular_mixture_loss_is_exact_for_additive_tables_on_one_hot_cells(additive_table):
    space = Space(3)
    table = additive_table(space, seed=4)
    env = TabularEnv(space, table)
    for index in (0, 50, 143):
        arch = space.at(index)
        weights = torch.as_tensor(arch.to_alpha(), dtype=torch.float64)
        assert float(env.mixture_loss(weights, "valid")) == pytest.approx(math.log(table[arch]))


def test_tabular_mixture_loss_is_differentiable_and_prefers_better_choices(space4, table4):
    env = TabularEnv(space4, table4)
    alpha = torch.zeros(10, 4, dtype=torch.float64, requires_grad=True)
    env.mixture_loss(torch.softmax(alpha, -1), "valid").backward()
    scores = env.edge_scores()
    # descending the gradient raises the weight of each row's lowest-scoring op
    for row in range(10):
        assert int(torch.argmin(alpha.grad[row])) == int(np.argmin(scores[row]))


def test_toy_env_planted_optimum_is_the_best_single_path_and_the_decoded_target():
    space = Space(3)
    optimum = Architecture.parse("relu:0 tanh:1 sigmoid:0")
    env = ToyMixtureEnv(space, optimum, seed=1)
    assert Architecture.from_alpha(env.target) == optimum
    for _ in range(200):  # train the shared weights uniformly, then rank every cell
        env.train_shared()
    ppl = {arch: env.evaluate(arch) for arch in space}
    assert min(ppl, key=ppl.__getitem__) == optimum


def test_toy_env_weight_training_reaches_the_inner_optimum():
    space = Space(2)
    env = ToyMixtureEnv(space, seed=0, lr=0.25)
    weights = torch.softmax(torch.randn(3, 4, dtype=torch.float64), -1)
    for _ in range(60):
        env.train_shared(None, weights=weights)
    # L_train = sum (theta - w)^2 has its minimum at theta = w
    assert torch.allclose(env.theta.detach(), weights, atol=1e-8)
    assert float(env.mixture_loss(weights, "train").detach()) < 1e-12


def test_tabular_env_from_ground_truth_records():
    space = Space(2)
    records = [
        {"architecture": "tanh:0 relu:1", "seed": 0, "valid_ppl": 80.0},
        {"architecture": "tanh:0 relu:1", "seed": 1, "valid_ppl": 90.0},
        {"architecture": "relu:0 relu:0", "seed": 0, "valid_ppl": None},  # diverged
        {"architecture": "relu:0 relu:1", "seed": 0, "valid_ppl": 70.0, "test_ppl": 68.0},
    ]
    env = TabularEnv.from_records(space, records, noise=0.0)
    assert env.evaluate(Architecture.parse("tanh:0 relu:1")) == 85.0
    assert env.evaluate(Architecture.parse("relu:0 relu:1")) == 70.0
    with pytest.raises(ValueError, match="not in the table"):
        env.evaluate(Architecture.parse("relu:0 relu:0"))
    assert (
        TabularEnv.from_records(space, records, value="test_ppl").true_ppl(
            Architecture.parse("relu:0 relu:1")
        )
        == 68.0
    )
    with pytest.raises(ValueError, match="record 0 has no 'architecture'"):
        TabularEnv.from_records(space, [{"valid_ppl": 1.0}])
