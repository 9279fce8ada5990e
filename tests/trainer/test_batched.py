"""Batched training of many architectures equals training each alone with train_architecture."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from naseval.space import Architecture, Space
from naseval.trainer.batched import BatchedLM, _stack_masks, train_batched
from naseval.trainer.checkpoint import load_checkpoint
from naseval.trainer.config import TrainConfig
from naseval.trainer.corpus import Corpus
from naseval.trainer.model import Dropouts, build_model
from naseval.trainer.train import TrainResult, train_architecture

CORPUS = Corpus.synthetic(vocab_size=30, train_tokens=2000, valid_tokens=400, test_tokens=300)
CONFIG = TrainConfig.tiny(nhid=8, emsize=8, nhidlast=8, batch_size=4, eval_batch_size=4,
                          test_batch_size=2, epochs=2, max_steps_per_epoch=10, alpha=0.5,
                          dropoute=0.1)
ARCHS = [Space(2).at(i) for i in (0, 9, 22, 31)]  # identity/sigmoid/tanh/relu, preds 0 and 1
SEEDS = [0, 1, 1, 7]  # members 1 and 2 share a seed (same windows); 0 and 3 draw their own


@pytest.fixture(autouse=True)
def _float64_one_thread() -> Iterator[None]:
    """Float64 makes 1e-5 a statement about the maths, not about float32 rounding growth."""
    dtype, threads = torch.get_default_dtype(), torch.get_num_threads()
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    yield
    torch.set_default_dtype(dtype)
    torch.set_num_threads(threads)


def _assert_same_run(batched: TrainResult, alone: TrainResult, rel: float = 1e-5) -> None:
    assert batched.arch == alone.arch
    assert (batched.steps, batched.epochs_run, batched.asgd_epoch, batched.parameters) == \
        (alone.steps, alone.epochs_run, alone.asgd_epoch, alone.parameters)
    assert len(batched.history) == len(alone.history)
    for mine, theirs in zip(batched.history, alone.history):
        assert mine.keys() == theirs.keys()
        for key in theirs:
            assert mine[key] == pytest.approx(theirs[key], rel=rel, abs=0), key
    for key in ("best_valid_ppl", "final_valid_ppl", "test_ppl"):
        assert getattr(batched, key) == pytest.approx(getattr(alone, key), rel=rel), key


def test_recurrence_equals_each_darts_lm_with_its_masks() -> None:
    archs = [Space(3).at(i) for i in (5, 77, 150, 299)]  # mixed preds and ops at every node
    models = [build_model(a, 30, 8, Dropouts(0.2, 0.3, 0.25, 0.1, 0.1), seed=s)
              for s, a in enumerate(archs)]
    batched = BatchedLM(models)
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(30, (6, 4, 3), generator=gen)  # (T, K, B)
    hidden = torch.randn(4, 3, 8, generator=gen)  # (K, B, H)
    masks = [m.sample_masks(3, torch.Generator().manual_seed(k)) for k, m in enumerate(models)]
    states = batched.recurrence(tokens, hidden, _stack_masks(masks))
    for k, model in enumerate(models):
        out = model(tokens[:, k], hidden[k], masks[k])
        torch.testing.assert_close(states[:, k], out.states, rtol=0, atol=1e-12)


def test_twenty_steps_batched_match_four_separate_runs(tmp_path: Path) -> None:
    """The issue's test: 4 architectures, 20 steps (2 epochs of 10), to 1e-5 -- and the weights."""
    batched = train_batched(ARCHS, CORPUS, CONFIG, SEEDS, device="cpu",
                            checkpoint_dir=tmp_path / "batched")
    state = load_checkpoint(tmp_path / "batched")
    assert state is not None
    for k, (arch, seed) in enumerate(zip(ARCHS, SEEDS)):
        folder = tmp_path / f"alone-{k}"
        alone = train_architecture(arch, CORPUS, CONFIG, seed=seed, device="cpu",
                                   checkpoint_dir=folder)
        assert alone.steps == 20
        _assert_same_run(batched[k], alone)
        theirs = load_checkpoint(folder)
        assert theirs is not None
        names = ["embedding", "decoder_bias", "w0", "ws"]
        for name, mine in zip(names, state["params"]):  # both end holding the best weights
            if name == "ws":
                expected = torch.stack([theirs["model"][f"ws.{j}"] for j in range(2)])
            else:
                expected = theirs["model"][name]
            torch.testing.assert_close(mine[k], expected, rtol=1e-5, atol=1e-9)


def test_averaged_sgd_switches_per_member_as_alone() -> None:
    config = CONFIG.replace(epochs=5, max_steps_per_epoch=4, nonmono=1, lr=30.0, dropout=0.5,
                            dropouth=0.5, dropoutx=0.5)
    batched = train_batched(ARCHS, CORPUS, config, SEEDS, device="cpu")
    assert [r.asgd_epoch for r in batched] == [4, 3, 4, 3]  # members switch at their own time
    for k, (arch, seed) in enumerate(zip(ARCHS, SEEDS)):
        _assert_same_run(batched[k], train_architecture(arch, CORPUS, config, seed=seed,
                                                        device="cpu"))


def test_float32_stays_close_to_separate_runs() -> None:
    torch.set_default_dtype(torch.float32)
    batched = train_batched(ARCHS[:2], CORPUS, CONFIG, SEEDS[:2], device="cpu")
    for k in range(2):
        alone = train_architecture(ARCHS[k], CORPUS, CONFIG, seed=SEEDS[k], device="cpu")
        _assert_same_run(batched[k], alone, rel=1e-4)


def test_groups_decoder_chunks_and_member_order_do_not_change_results(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from naseval.trainer import batched as batched_module

    whole = train_batched(ARCHS, CORPUS, CONFIG, SEEDS, device="cpu")
    grouped = train_batched(ARCHS, CORPUS, CONFIG, SEEDS, device="cpu", group_size=3)
    backwards = train_batched(ARCHS[::-1], CORPUS, CONFIG, SEEDS[::-1], device="cpu")
    monkeypatch.setattr(batched_module, "LOGIT_BUDGET", {"cpu": 1})  # one member per chunk
    chunked = train_batched(ARCHS, CORPUS, CONFIG, SEEDS, device="cpu")
    for a, b, c, d in zip(whole, grouped, backwards[::-1], chunked):
        _assert_same_run(a, b, rel=1e-12)
        _assert_same_run(a, c, rel=1e-12)
        _assert_same_run(a, d, rel=1e-12)


class _Interrupt(Exception):
    pass


def test_interrupted_run_resumes_to_the_same_results(tmp_path: Path) -> None:
    config = CONFIG.replace(epochs=3, max_steps_per_epoch=5, checkpoint_every=3)
    full = train_batched(ARCHS, CORPUS, config, SEEDS, device="cpu")

    def stop_after_first_epoch(event: dict[str, Any]) -> None:
        if event["kind"] == "epoch" and event["epoch"] == 1:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        train_batched(ARCHS, CORPUS, config, SEEDS, device="cpu", checkpoint_dir=tmp_path,
                      callback=stop_after_first_epoch)
    events: list[dict[str, Any]] = []
    resumed = train_batched(ARCHS, CORPUS, config, SEEDS, device="cpu", checkpoint_dir=tmp_path,
                            callback=events.append)
    assert [e["epoch"] for e in events] == [2, 3]  # epoch 1 was not trained again
    for a, b in zip(full, resumed):
        assert a.history == b.history and a.test_ppl == b.test_ppl
    again = train_batched(ARCHS, CORPUS, config, SEEDS, device="cpu", checkpoint_dir=tmp_path)
    assert [r.test_ppl for r in again] == [r.test_ppl for r in full]  # finished: no training
    with pytest.raises(ValueError, match="different batched run: its members differ"):
        train_batched(ARCHS, CORPUS, config, [5, 5, 5, 5], device="cpu",
                      checkpoint_dir=tmp_path)


def test_epoch_events_report_every_member() -> None:
    events: list[dict[str, Any]] = []
    results = train_batched(ARCHS[:3], CORPUS, CONFIG.replace(epochs=1), SEEDS[:3],
                            device="cpu", callback=events.append)
    assert [e["kind"] for e in events] == ["epoch"]
    event = events[0]
    assert [(m["arch"], m["seed"]) for m in event["members"]] == \
        [(str(a), s) for a, s in zip(ARCHS[:3], SEEDS[:3])]
    ppl = [m["valid_ppl"] for m in event["members"]]
    assert event["valid_ppl_min"] == min(ppl) and event["valid_ppl_max"] == max(ppl)
    assert [r.history[0]["valid_ppl"] for r in results] == ppl
    assert all(math.isfinite(p) and p < CORPUS.vocab_size * 1.5 for p in ppl)


def test_bad_members_are_named() -> None:
    with pytest.raises(ValueError, match="4 architectures but 3 seeds"):
        train_batched(ARCHS, CORPUS, CONFIG, SEEDS[:3], device="cpu")
    with pytest.raises(ValueError, match=r"same number of nodes, got \[2, 3\]"):
        train_batched([ARCHS[0], Architecture.parse("tanh:0 tanh:1 tanh:2")], CORPUS, CONFIG,
                      [0, 0], device="cpu")
    with pytest.raises(ValueError, match="at least one architecture"):
        train_batched([], CORPUS, CONFIG, [], device="cpu")
    with pytest.raises(ValueError, match="group_size must be >= 1"):
        train_batched(ARCHS, CORPUS, CONFIG, SEEDS, device="cpu", group_size=0)


def test_a_nan_member_rolls_back_alone_exactly_as_its_own_run(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A non-finite loss on member 1's 5th step: it rolls back as train_architecture does (to
    its last snapshot, on reseeded streams); the other members do not notice."""
    from naseval.trainer import batched as batched_module
    from naseval.trainer import train as train_module

    original_ar_tar = batched_module._Batch._ar_tar
    calls = {"batched": 0, "alone": 0}

    def poisoned_ar_tar(self: Any, *args: Any) -> tuple[torch.Tensor, torch.Tensor]:
        total, per_member = original_ar_tar(self, *args)
        calls["batched"] += 1
        if calls["batched"] == 5:
            per_member = per_member.clone()
            per_member[1] = math.nan
        return total, per_member

    monkeypatch.setattr(batched_module._Batch, "_ar_tar", poisoned_ar_tar)
    events: list[dict[str, Any]] = []
    batched = train_batched(ARCHS, CORPUS, CONFIG, SEEDS, device="cpu", callback=events.append)
    assert [(e["kind"], e.get("member")) for e in events][0] == ("rollback", 1)
    assert [r.nan_rollbacks for r in batched] == [0, 1, 0, 0]
    for k in (0, 2, 3):
        _assert_same_run(batched[k], train_architecture(ARCHS[k], CORPUS, CONFIG, seed=SEEDS[k],
                                                        device="cpu"))
    original_loss = train_module.training_loss

    def poisoned_loss(*args: Any) -> Any:
        loss, *rest = original_loss(*args)
        calls["alone"] += 1
        return (loss * math.nan if calls["alone"] == 5 else loss, *rest)

    monkeypatch.setattr(train_module, "training_loss", poisoned_loss)
    alone = train_architecture(ARCHS[1], CORPUS, CONFIG, seed=SEEDS[1], device="cpu")
    assert alone.nan_rollbacks == 1
    _assert_same_run(batched[1], alone)


@pytest.mark.cuda
def test_batched_matches_separate_runs_on_cuda() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    torch.set_default_dtype(torch.float32)
    batched = train_batched(ARCHS, CORPUS, CONFIG, SEEDS, device="cuda")
    for k in range(len(ARCHS)):
        alone = train_architecture(ARCHS[k], CORPUS, CONFIG, seed=SEEDS[k], device="cuda")
        _assert_same_run(batched[k], alone, rel=1e-3)
