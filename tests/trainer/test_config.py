from __future__ import annotations

import pytest

from naseval.trainer import TrainConfig


def test_search_preset_is_train_search_defaults() -> None:
    c = TrainConfig.darts_search()
    assert (c.emsize, c.nhid, c.nhidlast, c.batch_size, c.bptt, c.epochs) == (300, 300, 300, 256,
                                                                              35, 50)
    assert (c.dropout, c.dropouth, c.dropoutx, c.dropouti, c.dropoute) == (0.75, 0.25, 0.75, 0.2,
                                                                           0.0)
    assert (c.wdecay, c.beta, c.alpha, c.lr, c.clip, c.asgd) == (5e-7, 1e-3, 0.0, 20.0, 0.25, False)


def test_eval_preset_is_train_defaults() -> None:
    c = TrainConfig.darts_eval()
    assert (c.nhid, c.batch_size, c.eval_batch_size, c.test_batch_size, c.nonmono) == (850, 64, 10,
                                                                                      1, 5)
    assert (c.dropout, c.dropouth, c.dropoutx, c.dropouti, c.dropoute) == (0.75, 0.25, 0.75, 0.2,
                                                                           0.1)
    assert (c.wdecay, c.beta, c.epochs, c.asgd) == (8e-7, 1e-3, 1000, True)


def test_overrides_and_round_trip() -> None:
    c = TrainConfig.darts_search(epochs=3)
    assert c.epochs == 3 and c.nhid == 300
    assert TrainConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="bogus"):
        TrainConfig.from_dict({**c.to_dict(), "bogus": 1})


@pytest.mark.parametrize(
    ("changes", "needle"),
    [({"nhid": 10}, "emsize == nhid"), ({"dropoutx": 1.0}, "dropoutx"), ({"bptt": 0}, "bptt"),
     ({"lr": -1.0}, "lr"), ({"max_steps_per_epoch": 0}, "max_steps_per_epoch")],
)
def test_invalid_fields_are_named(changes: dict[str, object], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        TrainConfig.tiny().replace(**changes)
