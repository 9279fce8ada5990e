"""Training configuration with the published DARTS values as presets.

Sources: quark0/darts `rnn/train.py` (architecture evaluation, "eval") and
`rnn/train_search.py` (search, "search") argparse defaults; cited per field as [eval]/[search].
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines one training run except the architecture, data and seed."""

    # -- model sizes (DARTS requires emsize == nhid == nhidlast: W0 acts on [x, h]) --
    emsize: int = 850  # word embedding size [eval 850, search 300]
    nhid: int = 850  # cell state size [eval 850, search 300]
    nhidlast: int = 850  # size of the last layer's output, decoder input [eval 850, search 300]

    # -- optimisation --
    lr: float = 20.0  # SGD learning rate, scaled per step by seq_len / bptt [eval, search 20]
    clip: float = 0.25  # max global gradient norm [eval, search 0.25]
    wdecay: float = 8e-7  # L2 weight decay inside SGD/ASGD [eval 8e-7, search 5e-7]
    epochs: int = 1000  # epochs; train.py defaults to 8000, the paper trains 1000 [eval]
    batch_size: int = 64  # training batch (columns of the token stream) [eval 64, search 256]
    eval_batch_size: int = 10  # validation batch [eval, search: hard-coded 10]
    test_batch_size: int = 1  # test batch [eval, search: hard-coded 1]
    bptt: int = 35  # mean BPTT window [eval, search 35]
    max_seq_len_delta: int = 20  # BPTT window is at most bptt + this [eval, search 20]

    # -- regularisation --
    dropout: float = 0.75  # locked dropout on the cell output [eval, search 0.75]
    dropouth: float = 0.25  # variational dropout on h and node inputs [eval, search 0.25]
    dropoutx: float = 0.75  # variational dropout on the cell input x [eval, search 0.75]
    dropouti: float = 0.2  # locked dropout on the embedding output [eval, search 0.2]
    dropoute: float = 0.1  # dropout of whole embedding rows (words) [eval 0.1, search 0]
    alpha: float = 0.0  # AR: alpha * mean(dropped output^2) [eval, search 0]
    beta: float = 1e-3  # TAR: beta * mean((h_t - h_{t-1})^2) [eval, search 1e-3]

    # -- averaged SGD --
    asgd: bool = True  # switch to averaged SGD non-monotonically [eval yes; search never]
    nonmono: int = 5  # switch when val loss > min of all but the last `nonmono` [eval, search 5]

    # -- budget, checkpoints, reporting (not in DARTS; ours) --
    max_steps_per_epoch: int | None = None  # cut epochs short for cheap presets; None: full pass
    checkpoint_every: int = 0  # also checkpoint every this many steps mid-epoch; 0: epochs only
    log_every: int = 0  # send a "step" event to the callback every this many steps; 0: never
    max_nan_rollbacks: int = 3  # NaN/inf losses tolerated (each rolls back) before failing

    def __post_init__(self) -> None:
        if not self.emsize == self.nhid == self.nhidlast:
            raise ValueError(
                f"the DARTS cell needs emsize == nhid == nhidlast, got emsize={self.emsize}, "
                f"nhid={self.nhid}, nhidlast={self.nhidlast}"
            )
        positive = ("nhid", "epochs", "batch_size", "eval_batch_size", "test_batch_size", "bptt",
                    "nonmono")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("dropout", "dropouth", "dropoutx", "dropouti", "dropoute"):
            p = getattr(self, name)
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {p}")
        for name in ("lr", "clip", "wdecay", "alpha", "beta", "max_seq_len_delta",
                     "checkpoint_every", "log_every", "max_nan_rollbacks"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.max_steps_per_epoch is not None and self.max_steps_per_epoch < 1:
            raise ValueError(f"max_steps_per_epoch must be >= 1 or None, got "
                             f"{self.max_steps_per_epoch}")

    @classmethod
    def darts_eval(cls, **overrides: Any) -> TrainConfig:
        """Architecture evaluation as in DARTS rnn/train.py (and the Sciuto et al. protocol)."""
        return cls(**overrides)

    @classmethod
    def darts_search(cls, **overrides: Any) -> TrainConfig:
        """The search-phase training as in DARTS rnn/train_search.py (plain SGD, 50 epochs)."""
        values: dict[str, Any] = dict(
            emsize=300, nhid=300, nhidlast=300, wdecay=5e-7, epochs=50, batch_size=256,
            dropoute=0.0, asgd=False,
        )
        return cls(**{**values, **overrides})

    @classmethod
    def tiny(cls, **overrides: Any) -> TrainConfig:
        """A seconds-long configuration for tests and smoke runs on a synthetic corpus."""
        values: dict[str, Any] = dict(
            emsize=16, nhid=16, nhidlast=16, epochs=2, batch_size=8, eval_batch_size=4,
            test_batch_size=4, bptt=10, max_seq_len_delta=5, dropout=0.1, dropouth=0.1,
            dropoutx=0.1, dropouti=0.1, dropoute=0.0, wdecay=1e-6, lr=5.0,
        )
        return cls(**{**values, **overrides})

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Inverse of to_dict; unknown keys are an error naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s): {', '.join(unknown)}")
        return cls(**values)
