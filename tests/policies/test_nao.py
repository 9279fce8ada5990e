from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from naseval.policies import Budget, NaoConfig, NaoPolicy, TabularEnv, make_policy
from naseval.policies.nao import (
    ArchCodec,
    EncoderPredictorDecoder,
    log_perplexities,
    normalise_scores,
)
from naseval.space import Architecture, Space


@pytest.fixture(scope="module")
def fitted(space4, table4):
    """An EPD fitted on a 100-cell pool of the planted table, as NAO's first round does."""
    rng = np.random.default_rng(0)
    pool = list(dict.fromkeys(space4.sample(rng) for _ in range(100)))
    scores = np.array([table4[a] for a in pool])
    policy = NaoPolicy(NaoConfig(seed_pool=100, new_archs=20, random_archs=10, top_k=20))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures run before conftest's per-test one
    epd, optimizer = policy.build_epd(space4, np.random.default_rng(1), torch.device("cpu"))
    losses = epd.fit(pool, normalise_scores(scores), 400, rng, optimizer)
    torch.set_num_threads(threads)
    return policy, epd, pool, scores, losses


def test_codec_round_trips_and_constrains_tokens():
    space = Space(3, fixed=Architecture.parse("tanh:0"))
    codec = ArchCodec(space)
    arch = Architecture.parse("tanh:0 relu:1 sigmoid:2")
    tokens = codec.encode([arch])[0].tolist()
    assert tokens == [2, 1 + 3 + 3, 3, 1 + 3 + 1]  # free nodes 2, 3: pred+1, 1+n+op
    assert codec.decode(tokens) == arch
    assert codec.allowed(0) == (1, 3) and codec.allowed(2) == (1, 4) and codec.allowed(1) == (4, 8)


def test_nao_decoder_reconstructs_its_pool(fitted):
    _, epd, pool, _, losses = fitted
    accuracy = np.mean([a == b for a, b in zip(pool, epd.reconstruct(pool))])
    assert accuracy >= 0.95
    assert losses["nll"] < 0.2


def test_nao_predictor_ranks_the_pool_like_the_table(fitted):
    _, epd, pool, scores, _ = fitted
    tau = stats.kendalltau(scores, epd.predict(pool)).statistic
    assert tau >= 0.6


def test_nao_proposals_beat_the_pool_mean(fitted, table4):
    policy, epd, pool, scores, _ = fitted
    ranked = [pool[i] for i in np.argsort(scores)]
    new, step_size = policy.generate(epd, ranked, set(pool))
    assert len(new) == 20 and len(set(new)) == 20 and not set(new) & set(pool)
    assert 1 <= step_size <= policy.config.max_step_size
    assert np.mean([table4[a] for a in new]) < scores.mean()


def test_nao_search_end_to_end_on_a_table(space4, table4):
    env = TabularEnv(space4, table4, steps_per_epoch=2)
    config = NaoConfig(seed_pool=40, new_archs=10, random_archs=5, top_k=10, epd_epochs=20)
    result = NaoPolicy(config).search(env, Budget(epochs=4, eval_every=2), np.random.default_rng(0))
    assert env.train_steps == 8
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4]
    rounds = [h for h in result.history if "pool" in h]
    assert [h["epoch"] for h in rounds] == [2, 4]
    assert len(rounds[0]["new_archs"]) <= 10 and len(rounds[0]["random_archs"]) == 5
    # the pool keeps its size and has no repeats; the ranking is the final pool, best first
    assert len(result.ranking) == 40 == len({a for a, _ in result.ranking})
    scores = [s for _, s in result.ranking]
    assert scores == sorted(scores) and result.arch == result.ranking[0][0]
    assert scores[0] == table4[result.arch]
    # new cells enter the pool in round 2
    assert set(rounds[0]["new_archs"]) <= {str(a) for a, _ in result.ranking}


def test_nao_small_space_variant_runs_on_space2():
    space = Space(2)
    env = TabularEnv(space, {arch: 50.0 + i for i, arch in enumerate(space)})
    policy = make_policy("nao", {"epd_epochs": 5}, small_space=True)
    assert (policy.config.seed_pool, policy.config.eval_every, policy.config.top_k) == (6, 50, 4)
    result = policy.search(env, Budget(epochs=3, eval_every=1), np.random.default_rng(0))
    assert len(result.ranking) == 6 and result.arch in space


def test_nao_pool_larger_than_the_space_is_rejected():
    env = TabularEnv(Space(2), {arch: 50.0 for arch in Space(2)})
    with pytest.raises(ValueError, match="NaoConfig.seed_pool"):
        NaoPolicy().search(env, Budget(epochs=1), np.random.default_rng(0))


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"trade_off": 1.5}, "trade_off"),
        ({"seed_pool": 0}, "seed_pool"),
        ({"seed_pool": 10, "new_archs": 8, "random_archs": 5}, "new_archs"),
        ({"encoder_dropout": 1.0}, "encoder_dropout"),
    ],
)
def test_nao_invalid_settings_name_the_field(settings, field):
    with pytest.raises(ValueError, match=f"NaoConfig.{field}"):
        NaoConfig(**settings)


def test_nao_respects_a_fixed_prefix():
    fixed = Architecture.parse("tanh:0 relu:1")
    space = Space(4, fixed=fixed)  # 12 * 16 = 192 cells
    env = TabularEnv(space, {arch: 60.0 + i for i, arch in enumerate(space)})
    config = NaoConfig(seed_pool=20, new_archs=5, random_archs=3, top_k=5, epd_epochs=5)
    result = NaoPolicy(config).search(env, Budget(epochs=2, eval_every=1), np.random.default_rng(0))
    assert all(arch in space for arch, _ in result.ranking)
    assert all(a.nodes[:2] == fixed.nodes for a, _ in result.ranking)


def test_nao_budget_without_an_epd_round_is_an_error_naming_the_settings():
    """epochs <= eval_every would score one random pool and stop: NAO would be random search."""
    env = TabularEnv(Space(2), {arch: 50.0 + i for i, arch in enumerate(Space(2))})
    policy = make_policy("nao", small_space=True)  # eval_every = 50
    with pytest.raises(
        ValueError, match=r"Budget.epochs \(2\) must exceed NaoConfig.eval_every \(50\)"
    ):
        policy.search(env, Budget(epochs=2), np.random.default_rng(0))
    with pytest.raises(
        ValueError, match=r"Budget.epochs \(3\) must exceed Budget.eval_every \(3\)"
    ):
        policy.search(env, Budget(epochs=3, eval_every=3), np.random.default_rng(0))
    assert env.train_steps == 0  # refused before any training
    budget = Budget(epochs=2, eval_every=1, controller_steps=2)  # 2 EPD epochs: cheap
    result = policy.search(env, budget, np.random.default_rng(0))
    assert "epd_mse" in result.history[0] and "epd_mse" not in result.history[1]


def test_nao_fits_the_normalised_validation_loss_not_the_perplexity(monkeypatch):
    """NAO-WS scores cells by validation loss and min-max normalises the losses."""
    space = Space(2)
    table = {arch: float(np.exp(1.0 + 0.25 * i)) for i, arch in enumerate(space)}
    env = TabularEnv(space, table)
    seen = []
    fit = EncoderPredictorDecoder.fit

    def recording_fit(self, archs, targets, *args, **kwargs):
        seen.append((list(archs), np.asarray(targets)))
        return fit(self, archs, targets, *args, **kwargs)

    monkeypatch.setattr(EncoderPredictorDecoder, "fit", recording_fit)
    config = NaoConfig(seed_pool=6, new_archs=2, random_archs=1, top_k=3, epd_epochs=2)
    NaoPolicy(config).search(env, Budget(epochs=2, eval_every=1), np.random.default_rng(0))
    archs, targets = seen[0]
    index = np.array([space.index(a) for a in archs], dtype=float)  # log ppl = 1 + index / 4
    expected = (index - index.min()) / (index.max() - index.min())
    np.testing.assert_allclose(targets, expected, atol=1e-12)
    ppl = np.array([table[a] for a in archs])
    assert not np.allclose(targets, (ppl - ppl.min()) / (ppl.max() - ppl.min()), atol=1e-3)
    np.testing.assert_allclose(
        log_perplexities([np.e, 1.0, np.inf, np.nan, 0.0]), [1.0, 0.0, np.inf, np.inf, np.inf]
    )


def test_normalised_scores_are_min_max_and_survive_divergence():
    assert normalise_scores(np.array([60.0, 80.0, 100.0])).tolist() == [0.0, 0.5, 1.0]
    assert normalise_scores(np.array([60.0, np.inf, 100.0, np.nan])).tolist() == [0, 1, 1, 1]
    assert normalise_scores(np.array([5.0, 5.0])).tolist() == [0.5, 0.5]


def test_nao_initialises_the_epd_as_nao_ws():
    """encoder.py: only the predictor MLP gets U(-INITRANGE, INITRANGE) weights and zero biases;
    embeddings (N(0, 1)) and LSTMs keep PyTorch's initialisation."""
    policy = NaoPolicy(NaoConfig(seed_pool=20, new_archs=5, random_archs=5))
    epd, _ = policy.build_epd(Space(4), np.random.default_rng(0), torch.device("cpu"))
    linears = [m for m in epd.encoder.mlp if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 5  # 4 hidden layers and the output
    for layer in linears:
        weight = layer.weight.detach()
        assert weight.abs().max() <= 0.04 and weight.abs().max() > 0.03
        assert torch.equal(layer.bias, torch.zeros_like(layer.bias))
    embedding = epd.encoder.embedding.weight.detach()
    assert 0.7 < float(embedding.std()) < 1.3  # nn.Embedding's N(0, 1)
    bound = 1 / 96**0.5  # nn.LSTM's U(-1/sqrt(H), 1/sqrt(H))
    lstm = epd.encoder.rnn.weight_hh_l0.detach()
    assert lstm.abs().max() <= bound and lstm.abs().max() > 0.9 * bound
