"""Many independent architectures trained at once: the exhaustive ground truth of a small space.

Each member (an architecture and a seed) is exactly the run `train_architecture(arch, corpus,
config, seed=seed)` would make: its weights are initialised by the same `build_model` call, its
dropout masks and BPTT lengths come from generators seeded the same way and drawn in the same
order, and its optimiser (SGD, clipping, the non-monotonic switch to averaging, NaN rollback) is
that run's, applied per member. Only the arithmetic is shared: the members' weights are stacked
along a member axis and every matmul is one batched matmul over all members.

Members with different seeds draw different BPTT lengths, so a step runs as long as its longest
member's window; shorter members' extra timesteps are masked out of their loss (they get no
gradient and carry the hidden state of their own last timestep). A member whose epoch is over
idles until every member's epoch is over; then all are validated together. Neither changes any
member's numbers, only how much arithmetic is wasted.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from naseval.space import Architecture
from naseval.trainer.checkpoint import load_checkpoint, save_checkpoint
from naseval.trainer.config import TrainConfig
from naseval.trainer.corpus import Corpus
from naseval.trainer.data import batchify, get_batch, sample_seq_len
from naseval.trainer.device import resolve_device
from naseval.trainer.model import (
    ACTIVATIONS,
    DartsLM,
    Masks,
    build_model,
    sample_masks,
    tied_decoder_loss,
)
from naseval.trainer.train import (
    Progress,
    TrainingDiverged,
    TrainResult,
    dropouts_of,
    perplexity,
    result_record,
    should_switch_to_asgd,
)

log = logging.getLogger(__name__)

Callback = Callable[[dict[str, Any]], None]
"""Receives one event dict per epoch (all members validated): "kind" = "epoch", "epoch"
(1-based), "members" (each member's history record, with "arch" and "seed"), summary numbers
over members ("valid_ppl_min", "valid_ppl_mean", "valid_ppl_max", "best_valid_ppl_min") and
"seconds"; and "kind" = "rollback" with "member", "arch", "seed", "epoch", "nan_rollbacks"."""

LOGIT_BUDGET = {"cpu": 1 << 25, "cuda": 1 << 28}  # logits held at once, by device type: the
# decoder and loss run in member chunks so memory does not grow with K * T * B * V


class BatchedLM(nn.Module):
    """K DartsLMs with the same node count, their parameters stacked on a leading member axis.

    Parameter names are DartsLM's; member k's slice of each is that model's tensor.
    """

    def __init__(self, models: Sequence[DartsLM]):
        super().__init__()
        if not models:
            raise ValueError("BatchedLM needs at least one model")
        first = models[0]
        for k, model in enumerate(models):
            if (model.arch.n_nodes, model.vocab_size, model.nhid) != \
                    (first.arch.n_nodes, first.vocab_size, first.nhid):
                raise ValueError(
                    f"model {k} ({model.arch}, vocab {model.vocab_size}, nhid {model.nhid}) does "
                    f"not match model 0 ({first.arch}, vocab {first.vocab_size}, nhid "
                    f"{first.nhid}): members need equal node count, vocabulary and size"
                )
        self.archs = [m.arch for m in models]
        self.members, self.vocab_size, self.nhid = len(models), first.vocab_size, first.nhid
        self.n_nodes = first.arch.n_nodes

        def stack(get: Callable[[DartsLM], torch.Tensor]) -> nn.Parameter:
            return nn.Parameter(torch.stack([get(m).detach() for m in models]).clone())

        self.embedding = stack(lambda m: m.embedding)  # (K, V, H), tied decoder
        self.decoder_bias = stack(lambda m: m.decoder_bias)  # (K, V)
        self.w0 = stack(lambda m: m.w0)  # (K, 2H, 2H)
        self.ws = stack(lambda m: torch.stack(list(m.ws)))  # (K, n, H, 2H)
        # Per node: each member's predecessor, and the members grouped by op.
        preds = torch.tensor([[node.pred for node in a.nodes] for a in self.archs])  # (K, n)
        self.preds: torch.Tensor
        self.register_buffer("preds", preds.t().contiguous(), persistent=False)  # (n, K)
        self.shared_pred = [int(col[0]) if bool((col == col[0]).all()) else None
                            for col in preds.t()]  # node j's pred when every member agrees
        self.op_groups: list[list[tuple[str, torch.Tensor]]] = []
        self.op_order: list[torch.Tensor | None] = []  # undoes the grouping (None: one op)
        for j in range(self.n_nodes):
            ops = [a.nodes[j].op for a in self.archs]
            groups = [(op, torch.tensor([k for k, o in enumerate(ops) if o == op]))
                      for op in dict.fromkeys(ops)]
            self.op_groups.append(groups)
            order = torch.cat([index for _, index in groups])
            self.op_order.append(None if len(groups) == 1 else torch.argsort(order))

    def _apply(self, fn: Callable[..., Any], recurse: bool = True) -> BatchedLM:
        super()._apply(fn, recurse)
        device = self.embedding.device
        self.op_groups = [[(op, index.to(device)) for op, index in groups]
                          for groups in self.op_groups]
        self.op_order = [None if order is None else order.to(device) for order in self.op_order]
        return self

    def init_hidden(self, batch: int) -> torch.Tensor:
        return self.embedding.new_zeros(self.members, batch, self.nhid)  # (K, B, H)

    def _candidates(self, j: int, pre: torch.Tensor) -> torch.Tensor:
        """f_j(h') for every member, each with its own op: pre (K, B, H) -> (K, B, H)."""
        groups, order = self.op_groups[j], self.op_order[j]
        if order is None:
            return ACTIVATIONS[groups[0][0]](pre)
        parts = [ACTIVATIONS[op](pre.index_select(0, index)) for op, index in groups]
        return torch.cat(parts).index_select(0, order)

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """Each member's embedding rows of tokens (T, K, B): (T, K, B, H), before any dropout."""
        offsets = torch.arange(self.members, device=tokens.device)[None, :, None] * self.vocab_size
        return F.embedding(tokens + offsets, self.embedding.reshape(-1, self.nhid))

    def recurrence(self, tokens: torch.Tensor, hidden: torch.Tensor, masks: Masks | None,
                   embedded: torch.Tensor | None = None) -> torch.Tensor:
        """Cell outputs (T, K, B, H) for tokens (T, K, B) from hidden (K, B, H).

        Mask fields are stacked over members: embedding (K, V, 1), the others (K, B, H).
        `embedded` is `embed(tokens)` when the caller needs its gradient by itself.
        """
        steps, members, batch = tokens.shape
        hid = self.nhid
        offsets = torch.arange(members, device=tokens.device)[None, :, None] * self.vocab_size
        x = self.embed(tokens) if embedded is None else embedded  # (T, K, B, H)
        if masks is not None:
            if masks.embedding is not None:  # dropping word rows = scaling looked-up rows
                x = x * F.embedding(tokens + offsets, masks.embedding.reshape(-1, 1))
            for mask in (masks.input, masks.x):
                if mask is not None:
                    x = x * mask
        mask_h = masks.h if masks is not None else None
        xp = torch.bmm(x.transpose(0, 1).reshape(members, steps * batch, hid),
                       self.w0[:, :hid])  # (K, T*B, 2H)
        # unbind, not xp[:, t]: each select's backward would fill a zero tensor of xp's size
        xp_steps = xp.view(members, steps, batch, 2 * hid).unbind(1)  # T x (K, B, 2H)
        member_index = torch.arange(members, device=tokens.device)
        outputs = []
        h = hidden
        for t in range(steps):
            h_in = h if mask_h is None else h * mask_h
            c0, h0 = torch.baddbmm(xp_steps[t], h_in, self.w0[:, hid:]).chunk(2, dim=-1)
            states = [h + torch.sigmoid(c0) * (torch.tanh(h0) - h)]  # s0 (K, B, H)
            for j in range(self.n_nodes):
                shared = self.shared_pred[j]
                if shared is not None:
                    s_p = states[shared]
                else:
                    s_p = torch.stack(states)[self.preds[j], member_index]  # (K, B, H)
                s_in = s_p if mask_h is None else s_p * mask_h
                c, pre = torch.bmm(s_in, self.ws[:, j]).chunk(2, dim=-1)
                states.append(s_p + torch.sigmoid(c) * (self._candidates(j, pre) - s_p))
            h = torch.mean(torch.stack(states[1:]), dim=0)
            outputs.append(h)
        return torch.stack(outputs)  # (T, K, B, H)

    def token_losses(self, dropped: torch.Tensor, targets: torch.Tensor,
                     embedding: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """Cross-entropy (T, k, B) of k members from decoder inputs dropped (T, k, B, H).

        embedding (k, V, H) and bias (k, V) are those members' decoder weights (tied).
        """
        steps, chunk, batch, hid = dropped.shape
        logits = torch.baddbmm(
            bias[:, None, :], dropped.transpose(0, 1).reshape(chunk, steps * batch, hid),
            embedding.transpose(1, 2),
        )  # (k, T*B, V)
        losses = F.cross_entropy(logits.reshape(-1, self.vocab_size),
                                 targets.transpose(0, 1).reshape(-1), reduction="none")
        return losses.view(chunk, steps, batch).transpose(0, 1)  # (T, k, B)

    def chunk_size(self, steps: int, batch: int) -> int:
        """Members whose logits (T, B, V) fit in LOGIT_BUDGET together (at least one)."""
        budget = LOGIT_BUDGET.get(self.embedding.device.type, LOGIT_BUDGET["cpu"])
        return max(1, min(self.members, budget // max(1, steps * batch * self.vocab_size)))


def _stack_masks(masks: list[Masks]) -> Masks:
    def field(name: str) -> torch.Tensor | None:
        values = [getattr(m, name) for m in masks]
        return None if values[0] is None else torch.stack(values)

    return Masks(*(field(name) for name in ("embedding", "input", "x", "h", "output")))


@dataclass(frozen=True)
class _Window:
    """One batched step's data: member k reads rows row_k .. row_k + lengths[k] - 1."""

    active: list[bool]  # members whose epoch is not over
    seq_lens: list[int]  # sampled BPTT lengths (lr scale and row advance); 0 when idle
    lengths: list[int]  # the lengths get_batch clips them to at the end of the data
    inputs: torch.Tensor  # (T, K, B) T = max(lengths); rows past a member's length are padding
    targets: torch.Tensor  # (T, K, B)
    length: torch.Tensor  # (K,) lengths on the device
    valid: torch.Tensor  # (T, K) t < lengths[k]
    member_on: torch.Tensor  # (K,) active on the device


class _Member:
    """The bookkeeping of one member's run: train._Run's, without its model."""

    def __init__(self, arch: Architecture, seed: int, device: torch.device):
        self.arch, self.seed = arch, seed
        init_seed, mask_seed, len_seed = np.random.SeedSequence(seed).generate_state(3)
        self.init_seed = int(init_seed)
        self.mask_rng = torch.Generator(device=device).manual_seed(int(mask_seed))
        self.len_rng = np.random.default_rng(int(len_seed))
        self.progress = Progress()
        self.averaging = False
        self.average_count = 0
        self.nan_rollbacks = 0
        self.snapshot: dict[str, Any] = {}  # for rollbacks: see _Batch.snapshot_member


class _Batch:
    """The training state of all members, with checkpoint/resume and per-member rollback."""

    def __init__(self, archs: Sequence[Architecture], seeds: Sequence[int], corpus: Corpus,
                 config: TrainConfig, device: torch.device, checkpoint_dir: Path | None,
                 callback: Callback | None):
        self.corpus, self.config, self.device = corpus, config, device
        self.checkpoint_dir, self.callback = checkpoint_dir, callback
        self.members = [_Member(a, s, device) for a, s in zip(archs, seeds)]
        models = [build_model(m.arch, corpus.vocab_size, config.nhid, dropouts_of(config),
                              seed=m.init_seed) for m in self.members]
        self.single_parameters = sum(p.numel() for p in models[0].parameters())
        self.dropouts = models[0].dropouts
        self.model = BatchedLM(models).to(device)
        self.params: list[torch.Tensor] = list(self.model.parameters())
        self.mean = [p.detach().clone() for p in self.params]  # averaged iterates per member
        self.best = [p.detach().clone() for p in self.params]  # best-validation weights
        self.train_data = batchify(corpus.train, config.batch_size, device)  # (rows, B)
        self.valid_data = batchify(corpus.valid, config.eval_batch_size, device)
        self.test_data = batchify(corpus.test, config.test_batch_size, device)
        self.hidden = self.model.init_hidden(config.batch_size)  # (K, B, H)
        self.epoch = 0  # epochs every member has completed
        self.steps = 0  # batched steps taken
        self.results: list[dict[str, Any]] | None = None

    # -- state ---------------------------------------------------------------------------------

    def identity(self) -> dict[str, Any]:
        return {"members": [[str(m.arch), m.seed] for m in self.members],
                "config": self.config.to_dict(),
                "corpus": [self.corpus.vocab_size, self.corpus.train.numel(),
                           self.corpus.valid.numel(), self.corpus.test.numel()],
                "device": self.device.type}  # the members' mask generators live there

    def state(self) -> dict[str, Any]:
        return {
            "format": "naseval.batched/1",
            "identity": self.identity(),
            "params": [p.detach().clone() for p in self.params],
            "mean": [m.clone() for m in self.mean],
            "best": [b.clone() for b in self.best],
            "hidden": self.hidden.clone(),
            "epoch": self.epoch, "steps": self.steps, "results": self.results,
            "members": [self._member_state(m) for m in self.members],
        }

    def _member_state(self, m: _Member) -> dict[str, Any]:
        return {"mask_rng": m.mask_rng.get_state(),
                "len_rng": copy.deepcopy(m.len_rng.bit_generator.state),
                "progress": asdict(m.progress), "averaging": m.averaging,
                "average_count": m.average_count, "nan_rollbacks": m.nan_rollbacks,
                "snapshot": m.snapshot}

    def load(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            for targets, saved in ((self.params, state["params"]), (self.mean, state["mean"]),
                                   (self.best, state["best"])):
                for target, value in zip(targets, saved):
                    target.copy_(value)
        self.hidden = state["hidden"].to(self.device)
        self.epoch, self.steps, self.results = state["epoch"], state["steps"], state["results"]
        for m, saved in zip(self.members, state["members"]):
            m.mask_rng.set_state(saved["mask_rng"].cpu())
            m.len_rng.bit_generator.state = copy.deepcopy(saved["len_rng"])
            m.progress = Progress(**copy.deepcopy(saved["progress"]))
            m.averaging, m.average_count = saved["averaging"], saved["average_count"]
            m.nan_rollbacks, m.snapshot = saved["nan_rollbacks"], saved["snapshot"]

    def checkpoint(self) -> None:
        if self.checkpoint_dir is not None:
            save_checkpoint(self.checkpoint_dir, self.state())

    def resume(self) -> None:
        if self.checkpoint_dir is None:
            return
        state = load_checkpoint(self.checkpoint_dir, self.device)
        if state is None:
            return
        mine, theirs = self.identity(), state.get("identity", {})
        for key in mine:
            if mine[key] != theirs.get(key):
                raise ValueError(
                    f"checkpoint in {self.checkpoint_dir} belongs to a different batched run: "
                    f"its {key} differs; use another checkpoint_dir or delete the checkpoint"
                )
        self.load(state)
        log.info("resumed %d members at epoch %d", len(self.members), self.epoch)

    def snapshot_member(self, k: int) -> None:
        """What train._Run.checkpoint keeps for a rollback, for member k alone."""
        m = self.members[k]
        m.snapshot = {
            "params": [p[k].detach().clone() for p in self.params],
            "mean": [a[k].clone() for a in self.mean],
            "best": [b[k].clone() for b in self.best],
            "mask_rng": m.mask_rng.get_state(),
            "len_rng": copy.deepcopy(m.len_rng.bit_generator.state),
            "progress": asdict(m.progress), "averaging": m.averaging,
            "average_count": m.average_count,
        }

    def rollback(self, k: int, reason: str) -> None:
        """train._Run.rollback for member k: back to its snapshot, on fresh random streams."""
        m = self.members[k]
        m.nan_rollbacks += 1
        if m.nan_rollbacks > self.config.max_nan_rollbacks:
            raise TrainingDiverged(
                f"member {k} ({m.arch}, seed {m.seed}): {reason} at epoch "
                f"{m.progress.epoch + 1} step {m.progress.step}; rolled back "
                f"{self.config.max_nan_rollbacks} times already (max_nan_rollbacks); lower lr "
                f"(now {self.config.lr}) or raise clip regularisation"
            )
        snap = m.snapshot
        with torch.no_grad():
            for targets, saved in ((self.params, snap["params"]), (self.mean, snap["mean"]),
                                   (self.best, snap["best"])):
                for target, value in zip(targets, saved):
                    target[k].copy_(value)
            self.hidden[k].zero_()  # a loaded run starts from a zero state, as train._Run's
        m.progress = Progress(**copy.deepcopy(snap["progress"]))
        m.averaging, m.average_count = snap["averaging"], snap["average_count"]
        mask_seed, len_seed = np.random.SeedSequence([m.seed, m.nan_rollbacks]).generate_state(2)
        m.mask_rng.manual_seed(int(mask_seed))
        m.len_rng = np.random.default_rng(int(len_seed))
        log.warning("member %d (%s): %s; rolled back to epoch %d step %d (%d/%d)", k, m.arch,
                    reason, m.progress.epoch, m.progress.step, m.nan_rollbacks,
                    self.config.max_nan_rollbacks)
        self.emit({"kind": "rollback", "member": k, "arch": str(m.arch), "seed": m.seed,
                   "step": m.progress.step, "epoch": m.progress.epoch + 1,
                   "nan_rollbacks": float(m.nan_rollbacks)})

    def emit(self, event: dict[str, Any]) -> None:
        if self.callback is not None:
            self.callback(event)

    # -- training ------------------------------------------------------------------------------

    def epoch_done(self, m: _Member) -> bool:
        return m.progress.epoch_done(self.train_data.size(0), self.config.max_steps_per_epoch)

    def train_step(self) -> None:
        """One step of every member whose epoch is not over (the others idle)."""
        config, members = self.config, self.members
        window = self._window()
        masks = _stack_masks([self.member_masks(m, a) for m, a in zip(members, window.active)])
        # The embedding lookup is a leaf of its own: its gradient is added into each member's
        # (V, H) decoder gradient row by row, never through a dense (K*V, H) lookup backward.
        embedded = self.model.embed(window.inputs).detach().requires_grad_()  # (T, K, B, H)
        states = self.model.recurrence(window.inputs, self.hidden, masks, embedded)
        cross_entropy, regularisers, member_grads = self._backward(states, masks, window,
                                                                   embedded)
        norms = [torch.linalg.vector_norm(p.grad.flatten(1), dim=1) for p in self.params
                 if p.grad is not None]  # the stacked gradients: w0, ws
        for grads in member_grads:  # embedding, decoder bias: one (V, H) / (V,) per member
            norms.append(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        grad_norm = torch.linalg.vector_norm(torch.stack(norms), dim=0)  # (K,) norm of norms
        finite = (torch.isfinite(cross_entropy + regularisers) & torch.isfinite(grad_norm)).tolist()
        bad = [k for k, a in enumerate(window.active) if a and not finite[k]]
        stepped = [a and k not in bad for k, a in enumerate(window.active)]
        self._update(grad_norm, stepped, window.seq_lens, member_grads, any_bad=bool(bad))
        with torch.no_grad():  # each member carries the state of its own last timestep
            ends = states[window.length - 1,
                          torch.arange(len(members), device=self.device)]  # (K, B, H)
            self.hidden = torch.where(window.member_on.view(-1, 1, 1), ends, self.hidden)
        self.steps += 1
        ce_values = cross_entropy.tolist()  # one device sync, not one per member
        for k, m in enumerate(members):
            if not window.active[k]:
                continue
            if k in bad:
                self.rollback(k, "training loss or gradient norm is not finite")
                continue
            progress = m.progress
            tokens = window.lengths[k] * config.batch_size
            progress.loss_sum += ce_values[k] * tokens
            progress.loss_tokens += tokens
            progress.row += window.seq_lens[k]
            progress.step += 1
            progress.epoch_step += 1
            if (config.checkpoint_every and progress.step % config.checkpoint_every == 0
                    and not self.epoch_done(m)):
                self.snapshot_member(k)

    def _window(self) -> _Window:
        """Each active member's BPTT length (from its own generator) and its rows of data."""
        config, members = self.config, self.members
        rows = self.train_data.size(0)
        active = [not self.epoch_done(m) for m in members]
        seq_lens = [sample_seq_len(m.len_rng, config.bptt, config.max_seq_len_delta) if a else 0
                    for m, a in zip(members, active)]
        lengths = [min(s, rows - 1 - m.progress.row) if a else 1
                   for m, s, a in zip(members, seq_lens, active)]  # get_batch's clipping
        starts = torch.tensor([m.progress.row if a else 0 for m, a in zip(members, active)],
                              device=self.device)
        offsets = torch.arange(max(lengths), device=self.device)[:, None]  # (T, 1)
        rows_in = (starts[None] + offsets).clamp(max=rows - 2)  # (T, K)
        length = torch.tensor(lengths, device=self.device)  # (K,)
        return _Window(active, seq_lens, lengths, self.train_data[rows_in],
                       self.train_data[rows_in + 1], length, offsets < length[None],
                       torch.tensor(active, device=self.device))

    def _backward(self, states: torch.Tensor, masks: Masks, window: _Window,
                  embedded: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                   list[list[torch.Tensor]]]:
        """Gradients of the sum of active members' losses.

        Returns each member's cross-entropy and AR+TAR (K,), and the per-member gradients of
        the tied embedding (V, H) and the decoder bias (V,); w0 and ws get theirs in .grad.

        Each active member's tied decoder and cross-entropy run on its own window only, through
        DartsLM's fused decoder loss (no (T, B, V) logits are kept), on detached copies of its
        input and weights; the gradients are gathered, then the input's flow back through the
        cell.
        """
        model, members, batch = self.model, len(self.members), self.config.batch_size
        hid = model.nhid
        dropped = states if masks.output is None else states * masks.output
        dropped_grad = torch.zeros_like(dropped)  # (T, K, B, H)
        embedding_grads: list[torch.Tensor] = []  # (V, H) per member
        bias_grads: list[torch.Tensor] = []  # (V,) per member
        cross_entropy = states.new_zeros(members)
        for k, (active, length) in enumerate(zip(window.active, window.lengths)):
            if not active:
                embedding_grads.append(torch.zeros_like(model.embedding[k]))
                bias_grads.append(torch.zeros_like(model.decoder_bias[k]))
                continue
            x = dropped[:length, k].detach().reshape(-1, hid)  # (E*B, H)
            ce, d_x, d_w, d_b = tied_decoder_loss(x, model.embedding[k].detach(),
                                                  model.decoder_bias[k].detach(),
                                                  window.targets[:length, k].reshape(-1))
            assert d_x is not None and d_w is not None and d_b is not None
            dropped_grad[:length, k] = d_x.view(length, batch, hid)
            embedding_grads.append(d_w)
            bias_grads.append(d_b)
            cross_entropy[k] = ce
        regulariser, regularisers = self._ar_tar(states, dropped, window.valid, window.length,
                                                 window.member_on)
        torch.autograd.backward([dropped, regulariser], [dropped_grad, None])
        assert embedded.grad is not None
        for k, (active, length) in enumerate(zip(window.active, window.lengths)):
            if active:  # the input lookup's share of the tied embedding's gradient
                rows = window.inputs[:length, k].reshape(-1)
                embedding_grads[k].index_add_(0, rows, embedded.grad[:length, k].reshape(-1, hid))
        return cross_entropy, regularisers, [embedding_grads, bias_grads]

    @torch.no_grad()
    def _update(self, grad_norm: torch.Tensor, stepped: list[bool], seq_lens: list[int],
                member_grads: list[list[torch.Tensor]], any_bad: bool) -> None:
        """train.py's clip + sgd_step (+ average update) for the members in `stepped`."""
        config, like = self.config, self.model.embedding
        coef = (config.clip / (grad_norm + 1e-6)).clamp(max=1.0)  # clip_grad_norm_'s factor
        rates = [config.lr * s / config.bptt if on else 0.0 for s, on in zip(seq_lens, stepped)]
        lr = torch.tensor(rates, dtype=like.dtype, device=self.device)
        stacked = [p for p in self.params if p.grad is not None]  # w0, ws
        for p in stacked:
            assert p.grad is not None
            shape = (-1,) + (1,) * (p.dim() - 1)
            grad = p.grad
            if any_bad:  # a failed member's NaNs must not reach its (unchanged) weights
                grad = torch.where(torch.isfinite(grad), grad, 0.0)
            step = grad.mul_(coef.view(shape)).add_(p, alpha=config.wdecay)  # in the grad's memory
            p.addcmul_(step, lr.view(shape), value=-1.0)
            p.grad = None
        coefs = coef.tolist()
        for p, grads in zip((self.model.embedding, self.model.decoder_bias), member_grads):
            for k, on in enumerate(stepped):  # member by member: each (V, H) stays in cache
                if on:
                    p[k].add_(grads[k].mul_(coefs[k]).add_(p[k], alpha=config.wdecay),
                              alpha=-rates[k])
        averaging = [on and m.averaging for m, on in zip(self.members, stepped)]
        if any(averaging):
            for m, on in zip(self.members, averaging):
                if on:
                    m.average_count += 1
            rate = torch.tensor([1.0 / m.average_count if on else 0.0
                                 for m, on in zip(self.members, averaging)],
                                dtype=like.dtype, device=self.device)
            for mean, p in zip(self.mean, self.params):
                mean.add_((p - mean) * rate.view((-1,) + (1,) * (p.dim() - 1)))

    def member_masks(self, m: _Member, active: bool) -> Masks:
        """The member's masks for this step, from its own generator; idle members draw none."""
        generator = m.mask_rng if active else torch.Generator(self.device).manual_seed(0)
        return sample_masks(self.dropouts, self.model.vocab_size, self.model.nhid,
                            self.config.batch_size, generator, self.model.embedding)

    def _ar_tar(self, states: torch.Tensor, dropped: torch.Tensor, valid: torch.Tensor,
                length: torch.Tensor,
                member_on: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """AR and TAR, each a mean over the member's own window: (sum over active, per member)."""
        config = self.config
        total = states.new_zeros(())
        per_member = states.new_zeros(states.size(1))  # (K,) detached, for the finiteness check
        per_element = states.size(2) * states.size(3)  # B * H
        if config.alpha > 0:
            sq = torch.where(valid[:, :, None, None], dropped.pow(2), 0.0).sum(dim=(0, 2, 3))
            ar = config.alpha * sq / (length * per_element)
            per_member = per_member + ar.detach()
            total = total + torch.where(member_on, ar, 0.0).sum()
        if config.beta > 0:
            pairs = valid[1:, :, None, None]  # both t and t+1 inside the window
            sq = torch.where(pairs, (states[1:] - states[:-1]).pow(2), 0.0).sum(dim=(0, 2, 3))
            tar = config.beta * sq / ((length - 1).clamp(min=1) * per_element)
            per_member = per_member + tar.detach()
            total = total + torch.where(member_on, tar, 0.0).sum()
        return total, per_member

    @torch.no_grad()
    def evaluate(self, data: torch.Tensor) -> list[float]:
        """Each member's mean cross-entropy on data (rows, B), hidden carried, no dropout."""
        config, members = self.config, len(self.members)
        hidden = self.model.init_hidden(data.size(1))
        totals = torch.zeros(members, dtype=torch.float64, device=data.device)
        count = 0
        for i in range(0, data.size(0) - 1, config.bptt):
            inputs, targets = get_batch(data, i, config.bptt)  # (T, B)
            expand = (inputs.size(0), members, inputs.size(1))
            states = self.model.recurrence(inputs[:, None].expand(expand), hidden, None)
            hidden = states[-1]
            chunk = self.model.chunk_size(inputs.size(0), inputs.size(1))
            for lo in range(0, members, chunk):
                part = slice(lo, min(lo + chunk, members))
                k = part.stop - part.start
                losses = self.model.token_losses(
                    states[:, part], targets[:, None].expand(-1, k, -1),
                    self.model.embedding[part], self.model.decoder_bias[part])
                totals[part] += losses.sum(dim=(0, 2)).double()
            count += targets.numel()
        return (totals / count).tolist()

    def _swap_in(self, values: list[torch.Tensor], which: list[bool]) -> list[torch.Tensor]:
        """Put values[k] into the parameters of members with which[k]; return the old ones."""
        saved = [p.detach().clone() for p in self.params]
        pick = torch.tensor(which, device=self.device)
        with torch.no_grad():
            for p, v in zip(self.params, values):
                p.copy_(torch.where(pick.view((-1,) + (1,) * (p.dim() - 1)), v, p))
        return saved

    def _restore(self, saved: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for p, v in zip(self.params, saved):
                p.copy_(v)

    def validate_epoch(self, started: float) -> None:
        """train._Run.validate_epoch for every member at once."""
        config = self.config
        averaging = [m.averaging for m in self.members]
        saved = self._swap_in(self.mean, averaging) if any(averaging) else None
        val_losses = self.evaluate(self.valid_data)
        if saved is not None:
            self._restore(saved)
        epoch = self.epoch + 1
        records: list[dict[str, Any]] = []
        ppl: list[float] = []
        for k, (m, val_loss) in enumerate(zip(self.members, val_losses)):
            p = m.progress
            if val_loss < p.best_val_loss:
                p.best_val_loss = val_loss
                source = self.mean if m.averaging else self.params
                with torch.no_grad():
                    for best, value in zip(self.best, source):
                        best[k].copy_(value[k])
            if not m.averaging:
                if config.asgd and should_switch_to_asgd(p.val_losses, val_loss, config.nonmono):
                    p.asgd_epoch = epoch
                    m.averaging, m.average_count = True, 0
                    with torch.no_grad():
                        for mean, value in zip(self.mean, self.params):
                            mean[k].copy_(value[k])
                    log.info("member %d (%s): averaged SGD after epoch %d", k, m.arch, epoch)
                p.val_losses.append(val_loss)
            record = p.close_epoch(epoch, val_loss, m.averaging)
            records.append({**record, "arch": str(m.arch), "seed": m.seed})
            ppl.append(record["valid_ppl"])
        self.epoch = epoch
        self.hidden = self.model.init_hidden(config.batch_size)
        for k in range(len(self.members)):
            self.snapshot_member(k)
        self.checkpoint()
        self.emit({"kind": "epoch", "epoch": epoch, "members": records,
                   "valid_ppl_min": min(ppl), "valid_ppl_mean": float(np.mean(ppl)),
                   "valid_ppl_max": max(ppl),
                   "best_valid_ppl_min": min(perplexity(m.progress.best_val_loss)
                                             for m in self.members),
                   "seconds": time.perf_counter() - started})

    def run(self) -> list[dict[str, Any]]:
        if self.results is not None:
            return self.results
        config = self.config
        if self.epoch == 0 and self.steps == 0:
            for k in range(len(self.members)):
                self.snapshot_member(k)
        while self.epoch < config.epochs:
            started = time.perf_counter()
            while not all(self.epoch_done(m) for m in self.members):
                self.train_step()
                if config.checkpoint_every and self.steps % config.checkpoint_every == 0:
                    self.checkpoint()
            self.validate_epoch(started)
        self._swap_in(self.best, [True] * len(self.members))
        test_losses = self.evaluate(self.test_data)
        self.results = []
        for m, test_loss in zip(self.members, test_losses):
            self.results.append(result_record(m.arch, m.progress, test_loss,
                                              self.single_parameters, m.nan_rollbacks))
        self.checkpoint()
        return self.results


def train_batched(
    archs: Sequence[Architecture],
    corpus: Corpus,
    config: TrainConfig,
    seeds: Sequence[int],
    *,
    device: str | torch.device = "auto",
    checkpoint_dir: str | Path | None = None,
    callback: Callback | None = None,
    group_size: int | None = None,
) -> list[TrainResult]:
    """Train member k = (archs[k], seeds[k]) as `train_architecture` would, all at once.

    Returns one TrainResult per member, in order. `group_size` caps how many members share one
    batch (memory); groups run one after another, each with its own checkpoint subfolder, and
    the results do not depend on it. With `checkpoint_dir`, every epoch (and every
    `config.checkpoint_every` batched steps) is checkpointed atomically and a rerun resumes.
    """
    archs, seeds = list(archs), [int(s) for s in seeds]
    if not archs:
        raise ValueError("train_batched needs at least one architecture")
    if len(archs) != len(seeds):
        raise ValueError(f"{len(archs)} architectures but {len(seeds)} seeds: one seed per member")
    sizes = {a.n_nodes for a in archs}
    if len(sizes) > 1:
        raise ValueError(f"members must have the same number of nodes, got {sorted(sizes)}")
    if group_size is not None and group_size < 1:
        raise ValueError(f"group_size must be >= 1 or None, got {group_size}")
    size = len(archs) if group_size is None else group_size
    dev = resolve_device(device)
    results: list[TrainResult] = []
    for g, lo in enumerate(range(0, len(archs), size)):
        started = time.perf_counter()
        folder = None
        if checkpoint_dir is not None:
            folder = Path(checkpoint_dir) if size >= len(archs) else \
                Path(checkpoint_dir) / f"group-{g:03d}"
        batch = _Batch(archs[lo : lo + size], seeds[lo : lo + size], corpus, config, dev, folder,
                       callback)
        batch.resume()
        records = batch.run()
        seconds = time.perf_counter() - started
        results += [TrainResult(**record, seconds=seconds) for record in records]
    return results
