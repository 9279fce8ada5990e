"""Every policy end to end against the trainer's real weight-sharing supernet, at tiny sizes.

naseval.policies never imports naseval.trainer; this is where the two meet, as the CLI joins
them: the supernet must satisfy the SearchEnv protocol structurally, in single-path mode for
ENAS, NAO and random-WS and in mixture mode for DARTS (first and second order).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

from naseval.policies import (
    POLICIES,
    Budget,
    SearchEnv,
    SearchResult,
    darts_hypergradient,
    make_policy,
)
from naseval.space import Architecture, Space
from naseval.trainer import Corpus, Supernet, TrainConfig

SPACE = Space(3)
# The published loops, shrunk: a few controller updates, a small pool, few EPD epochs.
SETTINGS: dict[str, dict[str, Any]] = {
    "random": {},
    "random-ws": {"final_samples": 6},
    "enas": {"controller_steps": 4, "final_samples": 5, "lstm_size": 32},
    "darts": {"xi": 5.0},  # xi = the tiny config's weight lr
    "darts-2nd": {"xi": 5.0, "second_order": True},
    "nao": {
        "seed_pool": 8,
        "new_archs": 3,
        "random_archs": 2,
        "top_k": 4,
        "epd_epochs": 3,
        "mlp_layers": 1,
        "mlp_hidden": 16,
        "hidden_size": 16,
        "emb_size": 8,
    },
}
BUDGET = Budget(epochs=2, steps_per_epoch=3, eval_every=1)


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def corpus() -> Any:
    return Corpus.synthetic(vocab_size=30, train_tokens=2000, valid_tokens=600, seed=0)


def run(name: str, corpus: Any, seed: int) -> tuple[SearchResult, Any]:
    policy = make_policy(name.removesuffix("-2nd"), SETTINGS[name])
    env = Supernet(
        SPACE,
        corpus,
        TrainConfig.tiny(lr=5.0),
        sharing="node",
        mode="mixture" if policy.needs_mixture else "single",
        seed=seed,
        device="cpu",
    )
    assert isinstance(env, SearchEnv)
    return policy.search(env, BUDGET, np.random.default_rng(seed)), env


@pytest.mark.parametrize("name", list(SETTINGS))
def test_policy_searches_the_supernet_deterministically(name: str, corpus: Any) -> None:
    result, env = run(name, corpus, seed=3)
    assert result.arch in SPACE and result.history
    assert result.policy == name.removesuffix("-2nd")
    json.dumps(result.to_dict(), allow_nan=False)
    trains = POLICIES[result.policy].trains_supernet
    assert env.step == (BUDGET.epochs * 3 if trains else 0)
    if name == "darts-2nd":
        losses = [h["valid_loss"] for h in result.history]
        assert all(np.isfinite(losses))
    if result.ranking:
        scores = [s for _, s in result.ranking]
        if result.policy != "darts":  # perplexities under the shared weights, best first
            assert scores == sorted(scores) and all(1.0 < s < 1e4 for s in scores)
            assert scores[0] == pytest.approx(env.evaluate(result.arch, batches=1), rel=1e-6)

    again, _ = run(name, corpus, seed=3)
    assert json.dumps(again.to_dict()) == json.dumps(result.to_dict())


def test_second_order_hypergradient_leaves_the_supernet_as_it_was(corpus: Any) -> None:
    env = Supernet(SPACE, corpus, TrainConfig.tiny(), mode="mixture", seed=0, device="cpu")
    env.train_shared(None, weights=torch.full((6, 4), 0.25), steps=2)
    before = [p.detach().clone() for p in env.parameters()]
    step = env.step
    alpha = torch.zeros(6, 4)
    grad = darts_hypergradient(env, alpha, second_order=True, xi=5.0, clip=0.25)
    first = darts_hypergradient(env, alpha, second_order=False)
    assert grad.shape == (6, 4) and torch.isfinite(grad).all()
    assert not torch.allclose(grad, first)  # the unrolled step changes the direction
    assert env.step == step
    assert all(torch.equal(p, q) for p, q in zip(env.parameters(), before))


@pytest.mark.parametrize("sharing", ["edge", "edge-op"])
@pytest.mark.parametrize("name", ["enas", "darts"])
def test_policies_search_every_sharing_scheme(name: str, sharing: str, corpus: Any) -> None:
    policy = make_policy(name, SETTINGS[name])
    env = Supernet(
        SPACE,
        corpus,
        TrainConfig.tiny(lr=5.0),
        sharing=sharing,
        mode="mixture" if policy.needs_mixture else "single",
        seed=1,
        device="cpu",
    )
    result = policy.search(env, Budget(epochs=1, steps_per_epoch=2), np.random.default_rng(1))
    assert result.arch in SPACE and np.isfinite(result.history[0]["train_loss"])


@pytest.mark.parametrize("second_order", [False, True])
def test_darts_keeps_a_fixed_prefix_out_of_the_supernet_mixture(
    second_order: bool, corpus: Any
) -> None:
    """In a fixed-prefix space the fixed nodes run their own path: no gradient reaches them."""
    fixed = Architecture.parse("tanh:0 relu:1")
    space = Space(3, fixed=fixed)
    env = Supernet(space, corpus, TrainConfig.tiny(lr=5.0), mode="mixture", seed=2, device="cpu")
    grad = darts_hypergradient(env, torch.zeros(6, 4), second_order=second_order, xi=5.0)
    assert torch.equal(grad[:3], torch.zeros(3, 4)) and grad[3:].abs().max() > 0
    policy = make_policy("darts", {"xi": 5.0, "second_order": second_order})
    result = policy.search(env, Budget(epochs=1, steps_per_epoch=2), np.random.default_rng(2))
    assert result.arch in space and result.arch.nodes[:2] == fixed.nodes
    weights = result.history[-1]["weights"]
    assert weights[:3] == fixed.to_alpha(space.ops).tolist()
    assert np.isfinite(result.history[-1]["valid_loss"])


def test_mixture_loss_peeks_are_repeatable_for_the_hessian_vector_product(corpus: Any) -> None:
    env = Supernet(SPACE, corpus, TrainConfig.tiny(lr=5.0), mode="mixture", seed=0, device="cpu")
    weights = torch.full((6, 4), 0.25)
    env.train_shared(None, weights=weights, steps=2)
    with torch.no_grad():
        first = float(env.mixture_loss(weights, "train"))
        again = float(env.mixture_loss(weights, "train"))
    assert first == again
    alpha = torch.zeros(6, 4)
    grads = [darts_hypergradient(env, alpha, second_order=True, xi=5.0) for _ in range(2)]
    assert torch.allclose(grads[0], grads[1], rtol=1e-4, atol=1e-6)
