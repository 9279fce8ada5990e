"""A checkpoint written on one device type is refused on another with a message naming the
device: the dropout masks' generator state of a CUDA run cannot continue on the CPU (torch would
fail with "RNG state is wrong size"), nor the other way round."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from naseval.space import Architecture, Space
from naseval.trainer import Corpus, TrainConfig, train_architecture, train_batched
from naseval.trainer.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from naseval.trainer.supernet import Supernet

CORPUS = Corpus.synthetic(vocab_size=30, train_tokens=1200, valid_tokens=200, test_tokens=200)
CONFIG = TrainConfig.tiny(nhid=8, emsize=8, nhidlast=8, batch_size=4, eval_batch_size=4,
                          epochs=1, max_steps_per_epoch=3)
ARCH = Architecture.parse("tanh:0 relu:1")


def _as_if_saved_on_cuda(folder: Path) -> None:
    state = load_checkpoint(folder)
    assert state is not None and state["identity"]["device"] == "cpu"
    state["identity"]["device"] = "cuda"
    save_checkpoint(folder, state)


def test_train_architecture_refuses_a_checkpoint_of_another_device(tmp_path: Path) -> None:
    first = train_architecture(ARCH, CORPUS, CONFIG, seed=0, device="cpu", checkpoint_dir=tmp_path)
    again = train_architecture(ARCH, CORPUS, CONFIG, seed=0, device="cpu", checkpoint_dir=tmp_path)
    assert again.test_ppl == first.test_ppl  # the same device resumes (here: a finished run)
    _as_if_saved_on_cuda(tmp_path)
    with pytest.raises(ValueError, match="its device is 'cuda', this run's is 'cpu'"):
        train_architecture(ARCH, CORPUS, CONFIG, seed=0, device="cpu", checkpoint_dir=tmp_path)
    assert (tmp_path / CHECKPOINT_NAME).is_file()  # refused, not overwritten


def test_train_batched_refuses_a_checkpoint_of_another_device(tmp_path: Path) -> None:
    archs = list(Space(2))[:2]
    train_batched(archs, CORPUS, CONFIG, [0, 1], device="cpu", checkpoint_dir=tmp_path)
    _as_if_saved_on_cuda(tmp_path)
    with pytest.raises(ValueError, match="its device differs"):
        train_batched(archs, CORPUS, CONFIG, [0, 1], device="cpu", checkpoint_dir=tmp_path)


def test_supernet_refuses_a_state_of_another_device() -> None:
    net = Supernet(Space(2), CORPUS, CONFIG, device="cpu")
    net.train_shared(steps=1)
    state = net.state_dict()
    assert state["identity"]["device"] == "cpu"
    state["identity"]["device"] = "cuda"
    fresh = Supernet(Space(2), CORPUS, CONFIG, device="cpu")
    with pytest.raises(ValueError, match=r"different device: saved \['cuda'\], here \['cpu'\]"):
        fresh.load_state_dict(state)
    assert torch.equal(fresh.model.w0, Supernet(Space(2), CORPUS, CONFIG, device="cpu").model.w0)
