"""Training one architecture from scratch, as DARTS rnn/train.py does, resumable bit for bit.

SGD (lr scaled by seq_len / bptt per step, clipped) switches, non-monotonically, to averaged
SGD: after an epoch, when more than `nonmono` validation losses are logged and the current one
is worse than the best before the last `nonmono`. ASGD with lambd=0 (as DARTS configures it)
is plain SGD plus a running mean of the iterates, which is how it is implemented here; after
the switch, the mean is what is validated and kept. The weights with the best validation loss
are the ones tested at the end, as DARTS tests its saved model.pt.

Randomness: one numpy Generator draws the BPTT lengths and one torch Generator the dropout
masks; both, with everything else that changes, are in every checkpoint, so a run killed at any
point and resumed ends with exactly the metrics (and weights) of an uninterrupted run on CPU.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from naseval.space import Architecture
from naseval.trainer.checkpoint import load_checkpoint, save_checkpoint
from naseval.trainer.config import TrainConfig
from naseval.trainer.corpus import Corpus
from naseval.trainer.data import batchify, get_batch, sample_seq_len
from naseval.trainer.device import resolve_device
from naseval.trainer.model import DartsLM, Dropouts, Masks, build_model, parameter_count

log = logging.getLogger(__name__)

Callback = Callable[[dict[str, Any]], None]
"""Receives event dicts: "kind" ("step", "epoch" or "rollback"), "step" (global training step),
"epoch" (1-based) and float metrics. Epoch events are the entries of TrainResult.history plus
"seconds" (wall time of the epoch)."""


class TrainingDiverged(RuntimeError):
    """The loss (or gradient) stayed non-finite after the allowed number of rollbacks."""


@dataclass
class TrainResult:
    """What one training run produced."""

    arch: str  # the architecture, canonical text
    best_valid_ppl: float  # best validation perplexity over epochs (of the evaluated weights)
    final_valid_ppl: float  # validation perplexity after the last epoch
    test_ppl: float  # test perplexity of the best-validation weights (what DARTS reports)
    history: list[dict[str, float]]  # one dict per epoch (see train_architecture)
    asgd_epoch: int | None  # epoch after which averaging started; None: never switched
    epochs_run: int  # epochs trained
    steps: int  # optimiser steps taken
    parameters: int  # number of model parameters
    nan_rollbacks: int  # times a non-finite loss rolled the run back
    seconds: float = 0.0  # wall time of this call (not of earlier, interrupted calls)

    @property
    def asgd_switched(self) -> bool:
        return self.asgd_epoch is not None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "asgd_switched": self.asgd_switched}


@torch.no_grad()
def sgd_step(params: list[torch.Tensor], lr: float, weight_decay: float) -> None:
    """p -= lr * (grad + weight_decay * p): torch.optim.SGD without momentum, stateless."""
    for p in params:
        if p.grad is not None:
            p.add_(p.grad.add(p, alpha=weight_decay), alpha=-lr)


def dropouts_of(config: TrainConfig) -> Dropouts:
    return Dropouts(config.dropout, config.dropouth, config.dropoutx, config.dropouti,
                    config.dropoute)


def should_switch_to_asgd(val_losses: list[float], current: float, nonmono: int) -> bool:
    """DARTS's trigger: more than `nonmono` losses logged and `current` worse than the best of
    all but the last `nonmono` (val_losses excludes `current`)."""
    return len(val_losses) > nonmono and current > min(val_losses[:-nonmono])


@torch.no_grad()
def evaluate(model: DartsLM, data: torch.Tensor, bptt: int) -> float:
    """Mean cross-entropy per target token of `data` (rows, B), hidden state carried, no dropout.

    Every row but the last is an input with the next row as its target, so the mean is over
    exactly (rows - 1) * B predictions.
    """
    hidden = model.init_hidden(data.size(1))
    total = torch.zeros((), dtype=torch.float64, device=data.device)
    count = 0
    for i in range(0, data.size(0) - 1, bptt):
        inputs, targets = get_batch(data, i, bptt)
        out = model(inputs, hidden)
        hidden = out.hidden
        total += F.cross_entropy(out.logits.reshape(-1, out.logits.size(-1)),
                                 targets.reshape(-1), reduction="sum").double()
        count += targets.numel()
    return float(total) / count


def perplexity(loss: float) -> float:
    return math.exp(loss) if loss < 700 else math.inf


class _ParamAverage:
    """Running mean of parameter iterates, updated after every step once averaging started."""

    def __init__(self, params: list[torch.Tensor]):
        self.mean = [p.detach().clone() for p in params]
        self.count = 0

    def update(self, params: list[torch.Tensor]) -> None:
        self.count += 1
        with torch.no_grad():
            for mean, p in zip(self.mean, params):
                mean.add_(p.detach() - mean, alpha=1.0 / self.count)


@dataclass
class Progress:
    """Everything besides weights and RNGs that a resumed run must find as it was."""

    epoch: int = 0  # epochs completed
    step: int = 0  # optimiser steps taken, over all epochs
    epoch_step: int = 0  # steps taken in the current epoch
    row: int = 0  # next training row of the current epoch
    loss_sum: float = 0.0  # token-weighted training cross-entropy of the current epoch, so far
    loss_tokens: int = 0
    log_sum: float = 0.0  # the same since the last "step" event
    log_tokens: int = 0
    val_losses: list[float] = field(default_factory=list)  # DARTS best_val_loss (SGD epochs)
    best_val_loss: float = math.inf
    asgd_epoch: int | None = None
    history: list[dict[str, float]] = field(default_factory=list)

    def epoch_done(self, train_rows: int, max_steps: int | None) -> bool:
        """Whether the epoch is over: the training rows used up, or `max_steps` steps taken."""
        return (self.row >= train_rows - 2
                or (max_steps is not None and self.epoch_step >= max_steps))

    def close_epoch(self, epoch: int, val_loss: float, averaging: bool) -> dict[str, float]:
        """Append epoch `epoch`'s history entry (returned) and zero the per-epoch counters."""
        train_loss = self.loss_sum / max(self.loss_tokens, 1)
        record = {"epoch": float(epoch), "step": float(self.step), "train_loss": train_loss,
                  "train_ppl": perplexity(train_loss), "valid_loss": val_loss,
                  "valid_ppl": perplexity(val_loss),
                  "best_valid_ppl": perplexity(self.best_val_loss),
                  "asgd": float(averaging)}
        self.history.append(record)
        self.epoch, self.epoch_step, self.row = epoch, 0, 0
        self.loss_sum, self.loss_tokens = 0.0, 0
        return record


def result_record(arch: Architecture, p: Progress, test_loss: float, parameters: int,
                  nan_rollbacks: int) -> dict[str, Any]:
    """A finished run's result, as checkpointed (the fields of TrainResult but seconds)."""
    return {
        "arch": str(arch),
        "best_valid_ppl": perplexity(p.best_val_loss),
        "final_valid_ppl": p.history[-1]["valid_ppl"],
        "test_ppl": perplexity(test_loss),
        "history": p.history,
        "asgd_epoch": p.asgd_epoch,
        "epochs_run": p.epoch,
        "steps": p.step,
        "parameters": parameters,
        "nan_rollbacks": nan_rollbacks,
    }


class _Run:
    """One training run's mutable state, with snapshot/restore for checkpoints and rollbacks."""

    def __init__(self, arch: Architecture, corpus: Corpus, config: TrainConfig, seed: int,
                 device: torch.device, checkpoint_dir: Path | None, callback: Callback | None):
        self.arch, self.corpus, self.config, self.seed = arch, corpus, config, seed
        self.device, self.checkpoint_dir, self.callback = device, checkpoint_dir, callback
        init_seed, mask_seed, len_seed = np.random.SeedSequence(seed).generate_state(3)
        self.model = build_model(arch, corpus.vocab_size, config.nhid, dropouts_of(config),
                                 seed=int(init_seed)).to(device)
        self.params: list[torch.Tensor] = list(self.model.parameters())
        self.mask_rng = torch.Generator(device=device).manual_seed(int(mask_seed))
        self.len_rng = np.random.default_rng(int(len_seed))
        self.train_data = batchify(corpus.train, config.batch_size, device)  # (rows, B)
        self.valid_data = batchify(corpus.valid, config.eval_batch_size, device)
        self.test_data = batchify(corpus.test, config.test_batch_size, device)
        self.hidden = self.model.init_hidden(config.batch_size)  # (B, H)
        self.average: _ParamAverage | None = None
        self.best_params = [p.detach().clone() for p in self.params]
        self.progress = Progress()
        self.nan_rollbacks = 0
        self.snapshot: dict[str, Any] = {}
        self.result: dict[str, Any] | None = None

    # -- state -----------------------------------------------------------------------------

    def identity(self) -> dict[str, Any]:
        """What a checkpoint must agree on to be resumed by this run."""
        return {"arch": str(self.arch), "seed": self.seed, "config": self.config.to_dict(),
                "corpus": [self.corpus.vocab_size, self.corpus.train.numel(),
                           self.corpus.valid.numel(), self.corpus.test.numel()],
                # the dropout masks' generator lives on the device: a CUDA generator's state
                # cannot continue on the CPU, nor the other way round
                "device": self.device.type}

    def state(self) -> dict[str, Any]:
        progress = asdict(self.progress)
        return {
            "identity": self.identity(),
            "model": {k: v.clone() for k, v in self.model.state_dict().items()},
            "average": None if self.average is None else
            {"mean": [m.clone() for m in self.average.mean], "count": self.average.count},
            "best_params": [p.clone() for p in self.best_params],
            "hidden": self.hidden.clone(),
            "mask_rng": self.mask_rng.get_state(),
            "len_rng": copy.deepcopy(self.len_rng.bit_generator.state),
            "progress": progress,
            "nan_rollbacks": self.nan_rollbacks,
            "result": self.result,
        }

    def load(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        average = state["average"]
        self.average = None
        if average is not None:
            self.average = _ParamAverage(self.params)
            self.average.mean = [m.clone().to(self.device) for m in average["mean"]]
            self.average.count = int(average["count"])
        self.best_params = [p.clone().to(self.device) for p in state["best_params"]]
        self.hidden = state["hidden"].clone().to(self.device)
        self.mask_rng.set_state(state["mask_rng"].cpu())
        self.len_rng.bit_generator.state = copy.deepcopy(state["len_rng"])
        self.progress = Progress(**copy.deepcopy(state["progress"]))
        self.nan_rollbacks = int(state["nan_rollbacks"])
        self.result = state["result"]

    def checkpoint(self) -> None:
        self.snapshot = self.state()
        if self.checkpoint_dir is not None:
            save_checkpoint(self.checkpoint_dir, self.snapshot)

    def resume(self) -> bool:
        if self.checkpoint_dir is None:
            return False
        state = load_checkpoint(self.checkpoint_dir, self.device)
        if state is None:
            return False
        mine, theirs = self.identity(), state["identity"]
        for key in mine:
            if mine[key] != theirs.get(key):
                raise ValueError(
                    f"checkpoint in {self.checkpoint_dir} belongs to a different run: its {key} "
                    f"is {theirs.get(key)!r}, this run's is {mine[key]!r}; use another "
                    "checkpoint_dir or delete the checkpoint"
                )
        self.load(state)
        self.snapshot = state
        log.info("resumed %s at epoch %d step %d", self.arch, self.progress.epoch,
                 self.progress.step)
        return True

    def emit(self, event: dict[str, Any]) -> None:
        if self.callback is not None:
            self.callback(event)

    # -- training --------------------------------------------------------------------------

    def rollback(self, reason: str) -> None:
        """Return to the last snapshot, on a different random path than the one that failed."""
        p = self.progress
        self.nan_rollbacks += 1
        if self.nan_rollbacks > self.config.max_nan_rollbacks:
            raise TrainingDiverged(
                f"{reason} at epoch {p.epoch + 1} step {p.step}; rolled back "
                f"{self.config.max_nan_rollbacks} times already (max_nan_rollbacks); lower lr "
                f"(now {self.config.lr}) or raise clip regularisation"
            )
        rollbacks = self.nan_rollbacks
        self.load(self.snapshot)
        self.nan_rollbacks = rollbacks
        mask_seed, len_seed = np.random.SeedSequence([self.seed, rollbacks]).generate_state(2)
        self.mask_rng.manual_seed(int(mask_seed))
        self.len_rng = np.random.default_rng(int(len_seed))
        log.warning("%s; rolled back to epoch %d step %d (%d/%d)", reason, self.progress.epoch,
                    self.progress.step, rollbacks, self.config.max_nan_rollbacks)
        self.emit({"kind": "rollback", "step": self.progress.step,
                   "epoch": self.progress.epoch + 1, "nan_rollbacks": float(rollbacks)})

    def epoch_done(self, p: Progress) -> bool:
        return p.epoch_done(self.train_data.size(0), self.config.max_steps_per_epoch)

    def train_step(self) -> bool:
        """One optimiser step; False when it was rolled back instead."""
        config, p = self.config, self.progress
        seq_len = sample_seq_len(self.len_rng, config.bptt, config.max_seq_len_delta)
        inputs, targets = get_batch(self.train_data, p.row, seq_len)
        masks = self.model.sample_masks(config.batch_size, self.mask_rng)
        loss, cross_entropy, hidden = training_loss(self.model, inputs, targets, self.hidden,
                                                    masks, config.alpha, config.beta)
        loss_value = float(loss.detach())
        if not math.isfinite(loss_value):
            self.rollback(f"training loss is {loss_value}")
            return False
        for q in self.params:
            q.grad = None
        loss.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, config.clip))
        if not math.isfinite(grad_norm):
            self.rollback(f"gradient norm is {grad_norm}")
            return False
        sgd_step(self.params, config.lr * seq_len / config.bptt, config.wdecay)
        if self.average is not None:
            self.average.update(self.params)
        self.hidden = hidden.detach()
        tokens = targets.numel()
        ce = float(cross_entropy.detach()) * tokens
        p.loss_sum += ce
        p.loss_tokens += tokens
        p.log_sum += ce
        p.log_tokens += tokens
        p.row += seq_len
        p.step += 1
        p.epoch_step += 1
        if config.log_every and p.step % config.log_every == 0:
            train_loss = p.log_sum / p.log_tokens
            self.emit({"kind": "step", "step": p.step, "epoch": p.epoch + 1,
                       "train_loss": train_loss, "train_ppl": perplexity(train_loss),
                       "lr": config.lr * seq_len / config.bptt})
            p.log_sum, p.log_tokens = 0.0, 0
        return True

    def validate_epoch(self, started: float) -> None:
        config, p = self.config, self.progress
        epoch = p.epoch + 1
        if self.average is not None:  # evaluate (and keep) the averaged weights
            current = [q.detach().clone() for q in self.params]
            self._copy_into_params(self.average.mean)
            val_loss = evaluate(self.model, self.valid_data, config.bptt)
            if val_loss < p.best_val_loss:
                p.best_val_loss = val_loss
                self.best_params = [m.clone() for m in self.average.mean]
            self._copy_into_params(current)
        else:
            val_loss = evaluate(self.model, self.valid_data, config.bptt)
            if val_loss < p.best_val_loss:
                p.best_val_loss = val_loss
                self.best_params = [q.detach().clone() for q in self.params]
            if config.asgd and should_switch_to_asgd(p.val_losses, val_loss, config.nonmono):
                p.asgd_epoch = epoch
                self.average = _ParamAverage(self.params)
                log.info("switching to averaged SGD after epoch %d", epoch)
            p.val_losses.append(val_loss)
        record = p.close_epoch(epoch, val_loss, self.average is not None)
        self.hidden = self.model.init_hidden(config.batch_size)
        self.checkpoint()
        self.emit({"kind": "epoch", **record, "step": p.step, "epoch": epoch,
                   "seconds": time.perf_counter() - started})

    def _copy_into_params(self, values: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for q, v in zip(self.params, values):
                q.copy_(v)

    def run(self) -> dict[str, Any]:
        if self.result is not None:
            return self.result
        config = self.config
        if not self.snapshot:
            self.checkpoint()
        while self.progress.epoch < config.epochs:
            started = time.perf_counter()
            while not self.epoch_done(self.progress):
                stepped = self.train_step()
                if (stepped and config.checkpoint_every
                        and self.progress.step % config.checkpoint_every == 0
                        and not self.epoch_done(self.progress)):
                    self.checkpoint()
            self.validate_epoch(started)
        self._copy_into_params(self.best_params)
        test_loss = evaluate(self.model, self.test_data, config.bptt)
        self.result = result_record(self.arch, self.progress, test_loss,
                                    parameter_count(self.model), self.nan_rollbacks)
        self.checkpoint()
        return self.result


def training_loss(model: DartsLM, inputs: torch.Tensor, targets: torch.Tensor,
                  hidden: torch.Tensor, masks: Masks, alpha: float,
                  beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, cross-entropy, next hidden) of one step; a module-level seam so tests can plant
    non-finite losses."""
    return model.loss(inputs, targets, hidden, masks, alpha, beta)


def train_architecture(
    arch: Architecture,
    corpus: Corpus,
    config: TrainConfig,
    *,
    seed: int,
    device: str | torch.device = "auto",
    checkpoint_dir: str | Path | None = None,
    callback: Callback | None = None,
) -> TrainResult:
    """Train `arch` from scratch on `corpus` and test the best-validation weights.

    With `checkpoint_dir`, a checkpoint is written there after every epoch (and every
    `config.checkpoint_every` steps), and an existing one is resumed; a finished run's
    checkpoint returns its result without training. History entries hold epoch, step,
    train_loss/ppl, valid_loss/ppl, best_valid_ppl and asgd (1.0 once averaging).
    Raises TrainingDiverged when the loss stays non-finite after `max_nan_rollbacks`
    rollbacks, ValueError when the checkpoint belongs to another run.
    """
    started = time.perf_counter()
    dev = resolve_device(device)
    run = _Run(arch, corpus, config, seed, dev, Path(checkpoint_dir) if checkpoint_dir else None,
               callback)
    run.resume()
    result = run.run()
    return TrainResult(**result, seconds=time.perf_counter() - started)
