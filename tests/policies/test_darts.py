from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from naseval.policies import (
    Budget,
    DartsConfig,
    DartsPolicy,
    TabularEnv,
    ToyMixtureEnv,
    darts_hypergradient,
    make_policy,
)
from naseval.space import Architecture, Space

PLANTED = Architecture.parse("tanh:0 relu:1 sigmoid:1 identity:2")


@pytest.mark.parametrize("second_order", [False, True])
def test_darts_recovers_the_planted_optimum(second_order):
    env = ToyMixtureEnv(Space(4), PLANTED, seed=3, lr=0.2)
    config = DartsConfig(second_order=second_order, xi=env.lr)  # xi = the weight lr
    policy = DartsPolicy(config)
    result = policy.search(env, Budget(epochs=8, steps_per_epoch=25), np.random.default_rng(0))
    assert result.arch == PLANTED
    # every planted edge's op has risen well above uniform (1/4) and above all flat rows
    weights = np.asarray(result.history[-1]["weights"])
    planted_rows = {j * (j - 1) // 2 + node.pred for j, node in enumerate(PLANTED.nodes, 1)}
    flat_max = max(weights[r].max() for r in range(10) if r not in planted_rows)
    for j, node in enumerate(PLANTED.nodes, start=1):
        assert weights[j * (j - 1) // 2 + node.pred, env.space.ops.index(node.op)] > 0.45
        assert weights[j * (j - 1) // 2 + node.pred].max() > flat_max
    losses = [h["valid_loss"] for h in result.history]
    assert losses[-1] < 0.5 * losses[0]
    assert result.ranking == [(PLANTED, result.ranking[0][1])]
    json.dumps(result.to_dict())


def test_darts_initial_alpha_does_not_decode_to_the_optimum():
    policy = DartsPolicy()
    env = ToyMixtureEnv(Space(4), PLANTED, seed=3, lr=0.2)
    result = policy.search(env, Budget(epochs=1, steps_per_epoch=1), np.random.default_rng(0))
    assert np.abs(np.asarray(result.history[0]["alpha"])).max() < 0.02  # 1e-3 N(0,1) + 1 step
    assert result.arch != PLANTED


def _unrolled_objective(env: ToyMixtureEnv, alpha: torch.Tensor, xi: float, wd: float) -> float:
    """The toy's bilevel objective after one unrolled weight step, written out by hand:
    L_valid(w, theta') + wd/2 ||theta'||^2, theta' = theta - xi (grad L_train + wd theta)."""
    theta = env.theta.detach()
    target = torch.as_tensor(env.target)
    w = torch.softmax(alpha, -1)
    unrolled = theta - xi * (2 * (theta - w) + wd * theta)
    valid = ((unrolled - target) ** 2).sum() + env.mu * ((w - target) ** 2).sum()
    return float(valid + 0.5 * wd * (unrolled**2).sum())


def test_second_order_hypergradient_matches_finite_differences():
    env = ToyMixtureEnv(Space(2), seed=7, mu=0.5)
    alpha = torch.randn(3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    xi, wd = 0.3, 0.05
    theta_before = env.theta.detach().clone()
    grad = darts_hypergradient(env, alpha, second_order=True, xi=xi, weight_decay=wd, clip=None)
    assert torch.equal(env.theta.detach(), theta_before)  # the weights are restored exactly

    eps = 1e-6
    numeric = torch.zeros_like(alpha)
    for index in np.ndindex(*alpha.shape):
        plus, minus = alpha.clone(), alpha.clone()
        plus[index] += eps
        minus[index] -= eps
        numeric[index] = (
            _unrolled_objective(env, plus, xi, wd) - _unrolled_objective(env, minus, xi, wd)
        ) / (2 * eps)
    assert torch.allclose(grad, numeric, rtol=1e-5, atol=1e-7)

    # and it is not the first-order gradient: the implicit term matters here
    first = darts_hypergradient(env, alpha, second_order=False)
    assert (grad - first).abs().max() > 1e-2


def test_first_order_hypergradient_is_the_validation_gradient():
    env = ToyMixtureEnv(Space(2), seed=7)
    alpha = torch.zeros(3, 4, dtype=torch.float64)
    grad = darts_hypergradient(env, alpha, second_order=False)
    alpha_ = alpha.clone().requires_grad_(True)
    env.mixture_loss(torch.softmax(alpha_, -1), "valid").backward()
    assert torch.allclose(grad, alpha_.grad)


def test_hypergradient_clips_the_unrolled_gradients():
    env = ToyMixtureEnv(Space(2), seed=1)
    with torch.no_grad():
        env.theta.mul_(100.0)  # large training gradients
    alpha = torch.zeros(3, 4, dtype=torch.float64)
    clipped = darts_hypergradient(env, alpha, second_order=True, xi=0.1, clip=0.25)
    free = darts_hypergradient(env, alpha, second_order=True, xi=0.1, clip=None)
    assert not torch.allclose(clipped, free)


def test_darts_on_a_table_finds_the_additive_best(additive_table):
    space = Space(3)
    planted = Architecture.parse("relu:0 sigmoid:0 tanh:2")
    env = TabularEnv(space, additive_table(space, seed=2, planted=planted))
    for second_order in (False, True):  # no shared weights: second order = first order
        policy = make_policy("darts", {"second_order": second_order, "arch_lr": 3e-2})
        result = policy.search(env, Budget(epochs=10, steps_per_epoch=20), np.random.default_rng(0))
        assert result.arch == planted
    assert env.train_steps == 400


def test_darts_keeps_a_fixed_prefix():
    fixed = Architecture.parse("identity:0")
    space = Space(3, fixed=fixed)
    env = ToyMixtureEnv(space, Architecture.parse("identity:0 relu:0 tanh:1"), seed=0)
    result = DartsPolicy().search(
        env, Budget(epochs=2, steps_per_epoch=5), np.random.default_rng(0)
    )
    assert result.arch.nodes[0] == fixed.nodes[0] and result.arch in space


@pytest.mark.parametrize(
    ("field", "value"), [("arch_lr", 0.0), ("xi", -1.0), ("clip", 0.0), ("arch_betas", (0.9,))]
)
def test_darts_invalid_settings_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"DartsConfig.{field}"):
        DartsConfig(**{field: value})


def test_darts_defaults_are_the_published_ones():
    c = DartsConfig()
    assert (c.arch_lr, c.arch_weight_decay, c.arch_betas, c.xi, c.hvp_r) == (
        3e-3,
        1e-3,
        (0.9, 0.999),
        20.0,
        1e-2,
    )
    assert DartsPolicy.needs_mixture and DartsPolicy.trains_supernet


def test_only_second_order_sees_alpha_through_the_weights():
    """With mu = 0 the validation loss depends on alpha only through the trained weights:
    first order gets a zero gradient and learns nothing; the unrolled step recovers the cell."""
    found = {}
    for second_order in (False, True):
        env = ToyMixtureEnv(Space(4), PLANTED, seed=3, lr=0.2, mu=0.0)
        policy = DartsPolicy(DartsConfig(second_order=second_order, xi=env.lr))
        result = policy.search(env, Budget(epochs=8, steps_per_epoch=25), np.random.default_rng(0))
        found[second_order] = result
    first, second = found[False], found[True]
    assert second.arch == PLANTED
    assert first.arch != PLANTED
    # first order: only Adam's weight decay moves alpha, so it stays at its 1e-3 initial scale
    assert np.abs(np.asarray(first.history[-1]["alpha"])).max() < 2e-3


class _RecordingToy(ToyMixtureEnv):
    """The toy env, keeping every mixture it is asked to train or differentiate."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen: list[torch.Tensor] = []

    def train_shared(self, arch=None, weights=None, steps=1):
        if weights is not None:
            self.seen.append(weights.detach().clone())
        return super().train_shared(arch, weights, steps)

    def mixture_loss(self, weights, split):
        self.seen.append(weights.detach().clone())
        return super().mixture_loss(weights, split)


@pytest.mark.parametrize("second_order", [False, True])
def test_darts_mixture_runs_a_fixed_prefix_as_its_single_path(second_order):
    """The fixed nodes are not searched: every mixture DARTS trains or differentiates has their
    one-hot rows (not softmax(alpha)'s), and their alpha rows get no gradient."""
    fixed = Architecture.parse("relu:0 tanh:1")
    space = Space(3, fixed=fixed)
    env = _RecordingToy(space, Architecture.parse("relu:0 tanh:1 sigmoid:0"), seed=0, lr=0.2)
    policy = DartsPolicy(DartsConfig(second_order=second_order, xi=env.lr))
    result = policy.search(env, Budget(epochs=1, steps_per_epoch=3), np.random.default_rng(0))
    one_hot = torch.as_tensor(fixed.to_alpha(space.ops))  # rows of nodes 1 and 2
    assert one_hot.shape == (3, 4) and env.seen
    for weights in env.seen:
        assert torch.equal(weights[:3], one_hot)
        assert torch.allclose(weights[3:].sum(-1), torch.ones(3, dtype=weights.dtype))
    assert np.asarray(result.history[-1]["weights"])[:3].tolist() == one_hot.tolist()
    alpha = torch.zeros(6, 4, dtype=torch.float64)
    grad = darts_hypergradient(env, alpha, second_order=second_order, xi=env.lr)
    assert torch.equal(grad[:3], torch.zeros(3, 4, dtype=torch.float64))
    assert grad[3:].abs().max() > 0
    # the ranking's score: the fixed edges count 1, so it is node 3's chosen edge-op weight
    node = result.arch.nodes[2]
    weights = result.history[-1]["weights"]
    assert result.ranking[0][1] == pytest.approx(weights[3 + node.pred][space.ops.index(node.op)])
