"""The weight-sharing supernet: parameter counts, equivalences, cursors, determinism, resume."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from naseval.space import Architecture, Space
from naseval.trainer.config import TrainConfig
from naseval.trainer.corpus import Corpus
from naseval.trainer.data import get_batch
from naseval.trainer.model import Dropouts, build_model, lm_loss, parameter_count
from naseval.trainer.reference_mixture import reference_mixture
from naseval.trainer.supernet import SHARING_SCHEMES, SharedLM, Supernet, matrix_count

DROPOUTS = Dropouts(dropout=0.3, dropouth=0.2, dropoutx=0.25, dropouti=0.15, dropoute=0.1)
VOCAB, HID = 23, 6


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """These tensors are tiny: extra intra-op threads only add contention on a loaded machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _lm(space: Space, sharing: str, batchnorm: bool = False, seed: int = 0) -> SharedLM:
    lm = SharedLM(space, VOCAB, HID, sharing, batchnorm=batchnorm, dropouts=DROPOUTS,
                  generator=torch.Generator().manual_seed(seed)).double()
    with torch.no_grad():  # decoder bias off zero so its gradient path is exercised too
        lm.decoder_bias.uniform_(-0.1, 0.1, generator=torch.Generator().manual_seed(seed + 7))
    return lm


def _inputs(batch: int = 3, steps: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(VOCAB, (steps + 1, batch), generator=gen)  # (T+1, B)
    hidden = torch.randn(batch, HID, generator=gen, dtype=torch.float64) * 0.5  # (B, H)
    return tokens, hidden


def _grads(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in module.named_parameters() if p.grad is not None}


# -- sizes ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("sharing", "expected"), [
    ("node", 4_810_000),  # the figure for hidden 300, 8 nodes (= DartsLM's count)
    ("edge", 3_370_000 + 36 * 180_000),  # 36 (node, pred) matrices of 300 x 600
    ("edge-op", 3_370_000 + 144 * 180_000),  # 36 x 4 ops
])
def test_parameter_counts_at_vocab_10000_hidden_300(sharing: str, expected: int) -> None:
    lm = SharedLM(Space(8), 10_000, 300, sharing)
    assert parameter_count(lm) == expected


def test_node_sharing_has_the_from_scratch_model_size_and_matrix_counts() -> None:
    arch = Architecture.parse("tanh:0 relu:1 sigmoid:1")
    assert parameter_count(SharedLM(Space(3), 100, 8)) == parameter_count(build_model(arch, 100, 8))
    assert [matrix_count(3, 4, s) for s in SHARING_SCHEMES] == [3, 6, 24]
    assert matrix_count(2, 2, "edge-op") == 6
    with pytest.raises(ValueError, match="unknown sharing scheme 'cell'"):
        matrix_count(2, 4, "cell")


def test_node_sharing_init_is_the_from_scratch_init() -> None:
    """Same seed, same draw order: the supernet starts where build_model(arch, seed) starts."""
    lm = SharedLM(Space(3), VOCAB, HID, generator=torch.Generator().manual_seed(5))
    for arch in (Space(3).at(0), Space(3).at(200)):
        scratch = build_model(arch, VOCAB, HID, seed=5)
        assert torch.equal(lm.embedding, scratch.embedding)
        assert torch.equal(lm.w0, scratch.w0)
        assert torch.equal(lm.path_matrices(arch), torch.stack(list(scratch.ws)))


# -- equivalences --------------------------------------------------------------------------------

@pytest.mark.parametrize("sharing", SHARING_SCHEMES)
def test_single_path_equals_darts_lm_with_the_same_weights_and_masks(sharing: str) -> None:
    space = Space(3)
    arch = Architecture.parse("relu:0 tanh:0 sigmoid:2")
    lm = _lm(space, sharing)
    scratch = build_model(arch, VOCAB, HID, DROPOUTS).double()
    with torch.no_grad():
        scratch.embedding.copy_(lm.embedding)
        scratch.decoder_bias.copy_(lm.decoder_bias)
        scratch.w0.copy_(lm.w0)
        for w, shared in zip(scratch.ws, lm.path_matrices(arch)):
            w.copy_(shared)
    tokens, hidden = _inputs()
    masks = lm.sample_masks(3, torch.Generator().manual_seed(1))
    outputs = []
    for forward in (lambda: lm.forward_path(tokens[:-1], hidden, arch, masks),
                    lambda: scratch(tokens[:-1], hidden, masks)):
        out = forward()
        loss, _ = lm_loss(out, tokens[1:], alpha=0.5, beta=0.5)
        loss.backward()
        outputs.append(out)
    torch.testing.assert_close(outputs[0].logits, outputs[1].logits, rtol=0, atol=1e-12)
    torch.testing.assert_close(outputs[0].hidden, outputs[1].hidden, rtol=0, atol=1e-12)
    assert lm.ws.grad is not None
    used = lm.path_matrices(arch)  # rows of ws this path reads get exactly DartsLM's gradients
    index = [int(i) for i in range(lm.ws.size(0))
             if any(torch.equal(lm.ws[i], u) for u in used)]
    torch.testing.assert_close(lm.ws.grad[index], torch.stack([w.grad for w in scratch.ws]))
    unused = [i for i in range(lm.ws.size(0)) if i not in index]
    assert torch.count_nonzero(lm.ws.grad[unused]) == 0
    for name in ("embedding", "decoder_bias", "w0"):
        torch.testing.assert_close(getattr(lm, name).grad, getattr(scratch, name).grad)


@pytest.mark.parametrize("batchnorm", [False, True])
@pytest.mark.parametrize("sharing", SHARING_SCHEMES)
def test_one_hot_mixture_equals_the_single_path(sharing: str, batchnorm: bool) -> None:
    space = Space(3)
    arch = Architecture.parse("sigmoid:0 identity:1 relu:1")
    results = []
    for run in ("path", "mixture"):
        lm = _lm(space, sharing, batchnorm)
        tokens, hidden = _inputs()
        masks = lm.sample_masks(3, torch.Generator().manual_seed(2))
        if run == "path":
            out = lm.forward_path(tokens[:-1], hidden, arch, masks)
        else:
            out = lm.forward_mixture(tokens[:-1], hidden, torch.tensor(arch.to_alpha()), masks)
        lm_loss(out, tokens[1:], beta=0.3)[0].backward()
        results.append((out.logits, _grads(lm), dict(lm.named_buffers())))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=0, atol=1e-12)
    for name, grad in results[0][1].items():
        torch.testing.assert_close(grad, results[1][1][name], rtol=0, atol=1e-12)
    for name, buffer in results[0][2].items():  # the BatchNorm statistics move alike
        torch.testing.assert_close(buffer, results[1][2][name], rtol=0, atol=1e-12)


@pytest.mark.parametrize("batchnorm", [False, True])
@pytest.mark.parametrize("sharing", SHARING_SCHEMES)
def test_folded_mixture_equals_the_darts_reference(sharing: str, batchnorm: bool) -> None:
    """Outputs and gradients, to the shared weights and to the mixture weights alike."""
    space = Space(3)
    logits = torch.randn(6, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    results = []
    for run in ("folded", "reference", "reference, matmul per op"):
        lm = _lm(space, sharing, batchnorm)
        weights = torch.softmax(logits, -1).requires_grad_()
        tokens, hidden = _inputs()
        masks = lm.sample_masks(3, torch.Generator().manual_seed(4))
        if run == "folded":
            out = lm.forward_mixture(tokens[:-1], hidden, weights, masks)
        else:
            out = reference_mixture(lm, tokens[:-1], hidden, weights, masks,
                                    matmul_per_op=run.endswith("per op"))
        lm_loss(out, tokens[1:], alpha=0.2, beta=0.3)[0].backward()
        results.append((out.logits, _grads(lm), weights.grad))
    for other in results[1:]:
        torch.testing.assert_close(results[0][0], other[0], rtol=0, atol=1e-12)
        for name, grad in results[0][1].items():
            torch.testing.assert_close(grad, other[1][name], rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(results[0][2], other[2], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("route", ["path", "mixture"])
def test_fused_loss_equals_the_decoded_loss(route: str) -> None:
    lm = _lm(Space(3), "edge", batchnorm=route == "mixture")
    tokens, hidden = _inputs()
    masks = lm.sample_masks(3, torch.Generator().manual_seed(5))
    arch = Architecture.parse("relu:0 tanh:0 sigmoid:2")
    path: Architecture | torch.Tensor = arch if route == "path" else \
        torch.softmax(torch.randn(6, 4, generator=torch.Generator().manual_seed(6)), -1)
    results = []
    for fused in (True, False):
        lm.zero_grad()
        if fused:
            loss, cross_entropy, hidden_out = lm.loss(tokens[:-1], tokens[1:], hidden, path,
                                                      masks, alpha=0.3, beta=0.2)
        else:
            out = (lm.forward_path(tokens[:-1], hidden, arch, masks) if route == "path" else
                   lm.forward_mixture(tokens[:-1], hidden, path, masks))  # type: ignore[arg-type]
            loss, cross_entropy = lm_loss(out, tokens[1:], alpha=0.3, beta=0.2)
            hidden_out = out.hidden
        loss.backward()
        results.append((loss.detach(), cross_entropy.detach(), hidden_out.detach(), _grads(lm)))
    for a, b in zip(results[0][:3], results[1][:3]):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    for name, grad in results[0][3].items():
        torch.testing.assert_close(grad, results[1][3][name], rtol=1e-9, atol=1e-12)


def test_mixture_over_an_op_subset_uses_the_spaces_op_order() -> None:
    space = Space(2, ops=("relu", "identity"))
    lm = _lm(space, "edge-op")
    arch = Architecture.parse("identity:0 relu:0")
    tokens, hidden = _inputs()
    path = lm.forward_path(tokens[:-1], hidden, arch)
    mixture = lm.forward_mixture(tokens[:-1], hidden, torch.tensor(arch.to_alpha(space.ops)))
    torch.testing.assert_close(path.logits, mixture.logits, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match=r"mixture weights have shape \(3, 4\); expected \(3, 2\)"):
        lm.forward_mixture(tokens[:-1], hidden, torch.zeros(3, 4))
    with pytest.raises(ValueError, match="not in the supernet's space"):
        lm.forward_path(tokens[:-1], hidden, Architecture.parse("tanh:0 relu:1"))


# -- the SearchEnv ---------------------------------------------------------------------------------

CORPUS = Corpus.synthetic(vocab_size=30, train_tokens=3000, valid_tokens=600, test_tokens=100)
CONFIG = TrainConfig.tiny(nhid=8, emsize=8, nhidlast=8, batch_size=6, eval_batch_size=4)
QUIET = CONFIG.replace(dropout=0.0, dropouth=0.0, dropoutx=0.0, dropouti=0.0, dropoute=0.0)
SPACE = Space(2)


def _supernet(config: TrainConfig = CONFIG, **kwargs: object) -> Supernet:
    return Supernet(SPACE, CORPUS, config, device="cpu", **kwargs)  # type: ignore[arg-type]


def _direct_valid_loss(net: Supernet, arch: Architecture, windows: list[int],
                       carry: bool) -> float:
    """Token-weighted validation cross-entropy computed straight from a DartsLM."""
    lm = net.model
    scratch = build_model(arch, net.vocab_size, CONFIG.nhid)
    with torch.no_grad():
        scratch.embedding.copy_(lm.embedding)
        scratch.decoder_bias.copy_(lm.decoder_bias)
        scratch.w0.copy_(lm.w0)
        for w, shared in zip(scratch.ws, lm.path_matrices(arch)):
            w.copy_(shared)
    data = net.valid_data
    total, tokens = 0.0, 0
    hidden = scratch.init_hidden(CONFIG.eval_batch_size)
    with torch.no_grad():
        for index in windows:
            inputs, targets = get_batch(data, index * CONFIG.bptt, CONFIG.bptt)
            if not carry:
                hidden = scratch.init_hidden(CONFIG.eval_batch_size)
            out = scratch(inputs, hidden)
            hidden = out.hidden
            total += float(F.cross_entropy(out.logits.reshape(-1, net.vocab_size),
                                           targets.reshape(-1), reduction="sum"))
            tokens += targets.numel()
    return total / tokens


def test_satisfies_the_search_env_protocol() -> None:
    from naseval.policies.env import SearchEnv

    env: SearchEnv = _supernet()  # mypy checks the structure; isinstance the runtime names
    assert isinstance(env, SearchEnv)


def test_evaluate_is_deterministic_and_matches_a_direct_computation() -> None:
    net = _supernet()
    net.train_shared(steps=4)
    arch = SPACE.at(13)
    n_windows = math.ceil((net.valid_data.size(0) - 1) / CONFIG.bptt)
    assert net.evaluate(arch, batches=3, offset=2) == net.evaluate(arch, batches=3, offset=2)
    expected = _direct_valid_loss(net, arch, [2, 3, 4], carry=False)
    assert net.evaluate(arch, batches=3, offset=2) == pytest.approx(math.exp(expected), rel=1e-6)
    wrapped = _direct_valid_loss(net, arch, [n_windows - 1, 0], carry=False)
    assert net.evaluate(arch, 2, n_windows - 1) == pytest.approx(math.exp(wrapped), rel=1e-6)
    whole = _direct_valid_loss(net, arch, list(range(n_windows)), carry=True)
    assert net.evaluate(arch, batches=0) == pytest.approx(math.exp(whole), rel=1e-6)


def test_evaluate_does_not_disturb_training() -> None:
    plain, probed = _supernet(), _supernet()
    losses = [plain.train_shared(steps=3) for _ in range(3)]
    probed_losses = []
    for _ in range(3):
        probed.evaluate(SPACE.at(1), batches=2)
        probed_losses.append(probed.train_shared(steps=3))
    assert losses == probed_losses


@pytest.mark.parametrize("mode", ["single", "mixture"])
def test_peeks_show_the_minibatches_the_protocol_names(mode: str) -> None:
    net = _supernet(QUIET, mode=mode)
    weights = torch.softmax(torch.randn(3, 4, generator=torch.Generator().manual_seed(0)), -1)
    net.train_shared(steps=2)
    peeked = net.mixture_loss(weights, "train").detach().item()
    assert net.mixture_loss(weights, "train").detach().item() == peeked  # a peek consumes nothing
    valid_before = net.mixture_loss(weights, "valid").detach().item()
    assert net.train_shared(weights=weights) == pytest.approx(peeked, rel=1e-6)
    # The valid cursor advanced by one: the next valid minibatch, from the carried hidden state.
    assert net.mixture_loss(weights, "valid").detach().item() != valid_before
    net2 = _supernet(QUIET, mode=mode)
    net2.load_state_dict(net.state_dict())
    start = net2._search_windows[net2._valid_index]
    data, targets = get_batch(net2.search_data, start, CONFIG.bptt)
    assert net2._valid_index == 3
    with torch.no_grad():
        out = net2.model.forward_mixture(data, net2._valid_hidden, weights)
    direct = F.cross_entropy(out.logits.reshape(-1, out.logits.size(-1)), targets.reshape(-1))
    assert net.mixture_loss(weights, "valid").detach().item() == pytest.approx(direct.item(), rel=1e-6)


@pytest.mark.parametrize("mode", ["single", "mixture"])
def test_repeated_peeks_with_dropout_are_identical(mode: str) -> None:
    """DARTS's finite-difference Hessian-vector product compares two peeks at one cursor."""
    net = _supernet(mode=mode)
    weights = torch.softmax(torch.randn(3, 4, generator=torch.Generator().manual_seed(2)), -1)
    net.train_shared(steps=2)
    for split in ("train", "valid"):
        first = net.mixture_loss(weights, split).detach().item()
        assert net.mixture_loss(weights, split).detach().item() == first
    before = net.mixture_loss(weights, "train").detach().item()
    net.train_shared(weights=weights)
    assert net.mixture_loss(weights, "train").detach().item() != before  # a new cursor


def test_peeks_do_not_change_the_training_stream() -> None:
    plain, peeking = _supernet(), _supernet()
    weights = torch.full((3, 4), 0.25)
    losses, peeked_losses = [], []
    for _ in range(4):
        losses.append(plain.train_shared(weights=weights))
        peeking.mixture_loss(weights, "train").backward()
        peeking.mixture_loss(weights, "valid")
        peeked_losses.append(peeking.train_shared(weights=weights))
    assert losses == peeked_losses


def test_mixture_loss_is_differentiable_in_the_weights_and_parameters() -> None:
    net = _supernet(mode="mixture")
    alpha = torch.zeros(3, 4, requires_grad=True)
    loss = net.mixture_loss(torch.softmax(alpha, -1), "valid")
    loss.backward()
    assert alpha.grad is not None and torch.isfinite(alpha.grad).all()
    assert torch.count_nonzero(alpha.grad) > 0
    assert all(p.grad is not None for p in net.parameters())


def test_epochs_wrap_and_steps_per_epoch() -> None:
    net = _supernet(CONFIG.replace(max_steps_per_epoch=4))
    assert net.steps_per_epoch == 4
    full = _supernet()
    assert full.steps_per_epoch == math.ceil((full.train_data.size(0) - 1) / CONFIG.bptt)
    net.train_shared(steps=4)
    assert (net.epoch, net._row, net.step) == (1, 0, 4)
    assert torch.count_nonzero(net._hidden) == 0  # each epoch starts from a zero state
    steps = 0
    while full.epoch == 0:
        full.train_shared()
        steps += 1
    assert abs(steps - full.steps_per_epoch) <= 0.3 * full.steps_per_epoch


# Over seeds 0-4 the 120 steps end at 0.31-0.44 of the initial perplexity in single-path mode and
# at 0.57-0.78 in mixture mode (every op of every row trained at once, behind BatchNorm), and
# float rounding alone moves one seed within that spread: the bars leave room for it.
@pytest.mark.parametrize(("mode", "bar"), [("single", 0.6), ("mixture", 0.9)])
def test_training_lowers_validation_perplexity(mode: str, bar: float) -> None:
    net = _supernet(mode=mode)
    arch = SPACE.at(21)
    before = net.evaluate(arch, batches=0)
    assert before == pytest.approx(CORPUS.vocab_size, rel=0.2)  # near-uniform at init
    for _ in range(120):
        if mode == "single":
            net.train_shared()
        else:
            net.train_shared(weights=torch.full((3, 4), 0.25))
    assert net.evaluate(arch, batches=0) < bar * before


def test_random_ws_paths_depend_on_the_seed_only() -> None:
    a, b, c = _supernet(seed=4), _supernet(seed=4), _supernet(seed=5)
    la, lb, lc = (net.train_shared(steps=5) for net in (a, b, c))
    assert la == lb and la != lc
    assert torch.equal(a.model.ws, b.model.ws)


@pytest.mark.parametrize("mode", ["single", "mixture"])
def test_save_and_load_resume_identically(mode: str, tmp_path: pytest.TempPathFactory) -> None:
    weights = torch.softmax(torch.randn(3, 4, generator=torch.Generator().manual_seed(1)), -1)

    def work(net: Supernet) -> list[float]:
        out = [net.train_shared(steps=2), net.train_shared(SPACE.at(7)),
               net.train_shared(weights=weights, steps=2)]
        out.append(net.mixture_loss(weights, "valid").detach().item())
        return out

    first = _supernet(mode=mode)
    work(first)
    path = first.save(tmp_path / "supernet.pt")  # type: ignore[operator]
    expected = work(first) + work(first)
    resumed = _supernet(mode=mode, seed=99)  # a different seed: everything comes from the file
    resumed.load(path)
    assert work(resumed) + work(resumed) == expected
    for (name, p), q in zip(first.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(p, q), name
    assert resumed.evaluate(SPACE.at(3), 2) == first.evaluate(SPACE.at(3), 2)


def test_load_refuses_a_different_supernet(tmp_path: pytest.TempPathFactory) -> None:
    path = _supernet(sharing="edge").save(tmp_path / "s.pt")  # type: ignore[operator]
    with pytest.raises(ValueError, match="different sharing"):
        _supernet(sharing="node").load(path)


def test_bad_arguments_name_the_problem() -> None:
    net = _supernet()
    with pytest.raises(ValueError, match="not both"):
        net.train_shared(SPACE.at(0), torch.full((3, 4), 0.25))
    with pytest.raises(ValueError, match="split must be 'train' or 'valid', got 'test'"):
        net.mixture_loss(torch.full((3, 4), 0.25), "test")
    with pytest.raises(ValueError, match="steps must be >= 1"):
        net.train_shared(steps=0)
    with pytest.raises(ValueError, match="3 nodes, the supernet 2"):
        net.evaluate(Architecture.parse("tanh:0 tanh:1 tanh:2"))
    with pytest.raises(ValueError, match="unknown supernet mode 'darts'"):
        _supernet(mode="darts")
    with pytest.raises(ValueError, match="unknown sharing scheme 'op'"):
        _supernet(sharing="op")


def test_nonfinite_loss_is_an_error() -> None:
    net = _supernet()
    with torch.no_grad():
        net.model.ws.fill_(np.nan)
    with pytest.raises(FloatingPointError, match="training loss is nan at step 0"):
        net.train_shared()


@pytest.mark.cuda
@pytest.mark.parametrize("mode", ["single", "mixture"])
def test_supernet_on_cuda(mode: str, tmp_path: pytest.TempPathFactory) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    lm = SharedLM(Space(3), VOCAB, HID, "edge", batchnorm=mode == "mixture",
                  dropouts=DROPOUTS).cuda()
    tokens, hidden = _inputs()
    tokens, hidden = tokens.cuda(), hidden.float().cuda()
    weights = torch.softmax(torch.randn(6, 4), -1).cuda()
    masks = lm.sample_masks(3, torch.Generator("cuda").manual_seed(0))
    folded = lm.forward_mixture(tokens[:-1], hidden, weights, masks).logits
    reference = reference_mixture(lm, tokens[:-1], hidden, weights, masks).logits
    torch.testing.assert_close(folded, reference, rtol=1e-5, atol=1e-5)
    net = Supernet(SPACE, CORPUS, CONFIG, mode=mode, device="cuda")  # type: ignore[arg-type]
    net.train_shared(steps=3)
    net.train_shared(weights=torch.full((3, 4), 0.25), steps=2)
    arch = SPACE.at(5)
    assert net.evaluate(arch, 2) == net.evaluate(arch, 2)
    path = net.save(tmp_path / "cuda.pt")  # type: ignore[operator]
    expected = [net.train_shared(steps=2), net.evaluate(arch, 2)]
    resumed = Supernet(SPACE, CORPUS, CONFIG, mode=mode, device="cuda")  # type: ignore[arg-type]
    resumed.load(path)
    assert [resumed.train_shared(steps=2), resumed.evaluate(arch, 2)] == expected
