from __future__ import annotations

import pytest
import torch

from naseval.space import Architecture, Space
from naseval.trainer.model import (
    DARTS_V2,
    DartsLM,
    Dropouts,
    build_model,
    lm_loss,
    parameter_count,
)
from naseval.trainer.reference import ReferenceLM

ALL_DROPOUTS = Dropouts(dropout=0.3, dropouth=0.25, dropoutx=0.4, dropouti=0.2, dropoute=0.1)


@pytest.mark.parametrize(
    ("nhid", "arch", "expected"),
    [(850, DARTS_V2, 22_960_000), (850, Architecture.parse("tanh:0 relu:1"), 14_290_000),
     (300, DARTS_V2, 4_810_000)],
)
def test_parameter_counts_at_ptb_vocab(nhid: int, arch: Architecture, expected: int) -> None:
    with torch.device("meta"):  # counts without allocating 90 MB
        model = DartsLM(arch, 10_000, nhid)
    assert parameter_count(model) == expected


def test_init_ranges_and_tying() -> None:
    model = build_model(DARTS_V2, 100, 32, seed=0)
    assert model.w0.shape == (64, 64) and all(w.shape == (32, 64) for w in model.ws)
    assert len(model.ws) == 8
    assert model.w0.abs().max() <= 0.04 and model.w0.abs().max() > 0.039
    assert model.embedding.abs().max() <= 0.1 and model.embedding.abs().max() > 0.099
    assert torch.equal(model.decoder_bias, torch.zeros(100))
    assert torch.equal(build_model(DARTS_V2, 100, 32, seed=0).w0, model.w0)


def run_both(arch: Architecture, dtype: torch.dtype, masked: bool, seed: int = 0,
             steps: int = 7, batch: int = 5, nhid: int = 12, vocab: int = 31,
             ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Loss, outputs and gradients of DartsLM and ReferenceLM on the same weights and masks."""
    model = build_model(arch, vocab, nhid, ALL_DROPOUTS, seed=seed).to(dtype)
    with torch.no_grad():  # a nonzero bias and larger weights exercise every gate range
        model.decoder_bias.normal_(0, 0.1, generator=torch.Generator().manual_seed(1))
        model.w0.mul_(20)
        for w in model.ws:
            w.mul_(20)
    reference = ReferenceLM.from_model(model)
    gen = torch.Generator().manual_seed(seed + 1)
    tokens = torch.randint(vocab, (steps + 1, batch), generator=gen)
    hidden = torch.randn(batch, nhid, generator=gen, dtype=dtype) * 0.5
    masks = model.sample_masks(batch, gen) if masked else None
    results = []
    for net in (model, reference):
        h = hidden.clone().requires_grad_(True)
        out = net(tokens[:-1], h, masks)
        loss, _ = lm_loss(out, tokens[1:], alpha=0.1, beta=0.2)
        # A loss through the carried hidden state checks the gradient path into h0 as well.
        loss = loss + out.hidden.pow(2).sum()
        loss.backward()
        assert h.grad is not None
        results.append([loss.detach(), out.logits.detach(), out.states.detach(), h.grad]
                       + [p.grad.clone() for p in net.parameters()])  # type: ignore[union-attr]
    return results[0], results[1]


@pytest.mark.parametrize("masked", [True, False])
@pytest.mark.parametrize("arch", [DARTS_V2, Architecture.parse("relu:0"),
                                  Architecture.parse("identity:0 sigmoid:0 tanh:2 relu:0")])
def test_fast_model_matches_reference_float64(arch: Architecture, masked: bool) -> None:
    fast, ref = run_both(arch, torch.float64, masked)
    assert len(fast) == len(ref) == 4 + 3 + arch.n_nodes
    for a, b in zip(fast, ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_fast_model_matches_reference_float32_every_2_node_arch() -> None:
    for arch in Space(2):
        fast, ref = run_both(arch, torch.float32, masked=True, nhid=8, steps=5)
        for a, b in zip(fast, ref):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_masks_change_output_and_are_shared_over_time() -> None:
    model = build_model(Architecture.parse("tanh:0"), 20, 6, ALL_DROPOUTS, seed=0)
    masks = model.sample_masks(3, torch.Generator().manual_seed(0))
    assert masks.x is not None and masks.x.shape == (3, 6)
    assert masks.embedding is not None and masks.embedding.shape == (20, 1)
    kept = masks.x[masks.x > 0]
    torch.testing.assert_close(kept, torch.full_like(kept, 1 / 0.6))
    tokens = torch.randint(20, (4, 3), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        plain = model(tokens, model.init_hidden(3)).logits
        dropped = model(tokens, model.init_hidden(3), masks).logits
    assert not torch.allclose(plain, dropped)
    assert model.sample_masks(3).x is not None
    assert build_model(DARTS_V2, 20, 6, Dropouts(), seed=0).sample_masks(3).x is None


def test_reused_buffers_never_clobber_a_pending_graph() -> None:
    """Two forwards before one backward (gradient accumulation) still give exact gradients."""
    arch = Architecture.parse("tanh:0 relu:1 relu:1")
    model = build_model(arch, 17, 6, ALL_DROPOUTS, seed=0).double()
    reference = ReferenceLM.from_model(model)
    gen = torch.Generator().manual_seed(0)
    batches = [torch.randint(17, (5, 2), generator=gen) for _ in range(3)]
    masks = [model.sample_masks(2, gen) for _ in range(2)]
    for net in (model, reference):
        total = torch.stack([lm_loss(net(b[:-1], torch.zeros(2, 6, dtype=torch.float64), m),
                                     b[1:])[0] for b, m in zip(batches, masks)]).sum()
        with torch.no_grad():  # an evaluation forward while the graph is pending
            net(batches[2][:-1], torch.zeros(2, 6, dtype=torch.float64))
        total.backward()
    for p, q in zip(model.parameters(), reference.parameters()):
        assert p.grad is not None and q.grad is not None
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-10, atol=1e-12)
    # and a plain second step reuses the buffers with the same result as fresh ones
    first = model.w0.grad.clone()  # type: ignore[union-attr]
    for _ in range(2):
        model.zero_grad()
        torch.stack([lm_loss(model(b[:-1], torch.zeros(2, 6, dtype=torch.float64), m), b[1:])[0]
                     for b, m in zip(batches, masks)]).sum().backward()
        torch.testing.assert_close(model.w0.grad, first, rtol=0, atol=0)


@pytest.mark.parametrize("chunk_rows", [64, 4096])
@pytest.mark.parametrize("masked", [True, False])
def test_fused_loss_matches_reference(masked: bool, chunk_rows: int,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """DartsLM.loss (300 rows: several chunks, or one) == lm_loss(ReferenceLM(...))."""
    import naseval.trainer.model as model_module

    monkeypatch.setattr(model_module, "_decoder_chunk_rows", lambda device: chunk_rows)
    model = build_model(DARTS_V2, 29, 8, ALL_DROPOUTS, seed=0).double()
    with torch.no_grad():
        model.decoder_bias.normal_(generator=torch.Generator().manual_seed(3))
    reference = ReferenceLM.from_model(model)
    gen = torch.Generator().manual_seed(4)
    tokens = torch.randint(29, (31, 10), generator=gen)
    masks = model.sample_masks(10, gen) if masked else None
    hidden = torch.randn(10, 8, generator=gen, dtype=torch.float64)
    loss, ce, h = model.loss(tokens[:-1], tokens[1:], hidden, masks, alpha=0.3, beta=0.2)
    loss.backward()
    out = reference(tokens[:-1], hidden, masks)
    ref_loss, ref_ce = lm_loss(out, tokens[1:], alpha=0.3, beta=0.2)
    ref_loss.backward()
    torch.testing.assert_close(loss, ref_loss, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ce, ref_ce, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h, out.hidden.detach(), rtol=1e-12, atol=1e-12)
    for p, q in zip(model.parameters(), reference.parameters()):
        assert p.grad is not None and q.grad is not None
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-10, atol=1e-12)
    with torch.no_grad():
        _, eval_ce, _ = model.loss(tokens[:-1], tokens[1:], hidden)
        logits = reference(tokens[:-1], hidden).logits
    torch.testing.assert_close(eval_ce, torch.nn.functional.cross_entropy(
        logits.reshape(-1, 29), tokens[1:].reshape(-1)), rtol=1e-12, atol=1e-12)
