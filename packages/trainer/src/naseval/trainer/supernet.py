"""The weight-sharing DARTS cell LM over a Space: single path (ENAS, NAO, random-WS) and mixture.

One set of shared weights serves every architecture of the space. Node j with predecessor i and
op k reads the matrix `ws[m]`, where m depends on the sharing scheme:

    node     m = j - 1                   one W per node (DARTS, Sciuto et al.)
    edge     m = row(j, i)               one W per (node, predecessor)
    edge-op  m = row(j, i) * K + k       one W per (node, predecessor, op) (ENAS, NAO)

with row(j, i) = j(j-1)/2 + i, the DARTS alpha layout, and K = len(space.ops).

Mixture (DARTS search, quark0/darts rnn/model_search.py): node j's state is

    s_j = sum_{i<j} sum_k w[row(j,i), k] * (s_i + sigmoid(c_ik) * (f_k(h'_ik) - s_i))

which is folded so each predecessor is touched once: with W_i = sum_k w_ik and
g_i = sum_k w_ik f_k(h'_i), s_j = sum_i W_i s_i + sigmoid(c_i) * (g_i - W_i s_i)
(for edge-op, c and h' differ per op and only the f_k sum folds). In mode "mixture" s0 and every
node pass through one BatchNorm without affine parameters, as in DARTS's search network; a single
path in that mode gets the same BatchNorm, so it equals the mixture with one-hot weights.

`Supernet` wraps the model with its data, optimiser, RNGs and cursors and satisfies the
policies' `SearchEnv` protocol structurally (this package never imports naseval.policies).
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from naseval.space import Architecture, Space
from naseval.trainer.config import TrainConfig
from naseval.trainer.corpus import Corpus
from naseval.trainer.data import batchify, get_batch, sample_seq_len
from naseval.trainer.device import resolve_device
from naseval.trainer.model import (
    ACTIVATIONS,
    CELL_INIT_RANGE,
    EMBEDDING_INIT_RANGE,
    CellPlan,
    CellRecurrence,
    Dropouts,
    LMOutput,
    Masks,
    sample_masks,
    tied_loss,
    tied_output,
)
from naseval.trainer.train import dropouts_of

Sharing = Literal["node", "edge", "edge-op"]
Mode = Literal["single", "mixture"]
SHARING_SCHEMES: tuple[str, ...] = ("node", "edge", "edge-op")
MODES: tuple[str, ...] = ("single", "mixture")
BN_MOMENTUM, BN_EPS = 0.1, 1e-5  # torch's BatchNorm1d defaults, as DARTS uses them
SPLIT_KEYS = {"train": 0, "valid": 1}  # seeds the dropout masks of mixture_loss peeks


def alpha_row(j: int, i: int) -> int:
    """Row of edge (node j, predecessor i) in the DARTS weight table, j = 1..n, i < j."""
    return j * (j - 1) // 2 + i


def matrix_count(n_nodes: int, n_ops: int, sharing: str) -> int:
    """How many (H, 2H) node matrices a supernet with this sharing scheme holds."""
    rows = n_nodes * (n_nodes + 1) // 2
    return {"node": n_nodes, "edge": rows, "edge-op": rows * n_ops}[_check_sharing(sharing)]


def matrix_index(j: int, pred: int, op_index: int, n_ops: int, sharing: str) -> int:
    """Index into `ws` of the matrix node j uses when it reads `pred` through op `op_index`."""
    if sharing == "node":
        return j - 1
    if sharing == "edge":
        return alpha_row(j, pred)
    return alpha_row(j, pred) * n_ops + op_index


def _check_sharing(sharing: str) -> str:
    if sharing not in SHARING_SCHEMES:
        raise ValueError(f"unknown sharing scheme {sharing!r} (known: {', '.join(SHARING_SCHEMES)})")
    return sharing


def _mul(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return x if mask is None else x * mask


class SharedLM(nn.Module):
    """Embedding, W0, the shared node matrices and the tied decoder of a supernet.

    Parameter names and init order (embedding, W0, node matrices) follow DartsLM, so with node
    sharing and the same init generator its weights are those of `build_model(arch, ...)`.
    """

    bn_mean: torch.Tensor  # (H,) BatchNorm running statistics, present when `batchnorm`
    bn_var: torch.Tensor  # (H,)

    def __init__(self, space: Space, vocab_size: int, nhid: int, sharing: str = "node",
                 batchnorm: bool = False, dropouts: Dropouts | None = None,
                 generator: torch.Generator | None = None):
        super().__init__()
        dropouts = Dropouts() if dropouts is None else dropouts
        if vocab_size < 1 or nhid < 1:
            raise ValueError(f"vocab_size and nhid must be >= 1, got {vocab_size}, {nhid}")
        self.space, self.vocab_size, self.nhid = space, vocab_size, nhid
        self.sharing, self.batchnorm, self.dropouts = _check_sharing(sharing), batchnorm, dropouts
        self.n_nodes, self.ops = space.n_nodes, space.ops
        n_mats = matrix_count(self.n_nodes, len(self.ops), sharing)

        def uniform(*shape: int, bound: float) -> nn.Parameter:
            return nn.Parameter(torch.empty(shape).uniform_(-bound, bound, generator=generator))

        self.embedding = uniform(vocab_size, nhid, bound=EMBEDDING_INIT_RANGE)  # (V, H), tied
        self.decoder_bias = nn.Parameter(torch.zeros(vocab_size))  # (V,)
        self.w0 = uniform(2 * nhid, 2 * nhid, bound=CELL_INIT_RANGE)  # rows: [x part; h part]
        self.ws = uniform(n_mats, nhid, 2 * nhid, bound=CELL_INIT_RANGE)  # (M, H, 2H)
        if batchnorm:  # one set of running statistics for s0 and every node, as in DARTS
            self.register_buffer("bn_mean", torch.zeros(nhid))
            self.register_buffer("bn_var", torch.ones(nhid))

    def init_hidden(self, batch: int) -> torch.Tensor:
        return self.embedding.new_zeros(batch, self.nhid)  # (B, H)

    def sample_masks(self, batch: int, generator: torch.Generator | None = None) -> Masks:
        return sample_masks(self.dropouts, self.vocab_size, self.nhid, batch, generator,
                            self.embedding)

    def path_matrices(self, arch: Architecture) -> torch.Tensor:
        """(n, H, 2H): the matrix each node of `arch` uses (a differentiable gather)."""
        if arch not in self.space:
            raise ValueError(f"architecture {arch} is not in the supernet's space {self.space!r}")
        k = len(self.ops)
        index = [matrix_index(j, node.pred, self.ops.index(node.op), k, self.sharing)
                 for j, node in enumerate(arch.nodes, start=1)]
        if index == list(range(self.n_nodes)):
            return self.ws[: self.n_nodes]  # node sharing: a view, no gather
        return self.ws[torch.tensor(index, device=self.ws.device)]

    def _bn(self, s: torch.Tensor) -> torch.Tensor:
        if not self.batchnorm:
            return s
        return F.batch_norm(s, self.bn_mean, self.bn_var, None, None, self.training,
                            BN_MOMENTUM, BN_EPS)

    def _embed(self, tokens: torch.Tensor, masks: Masks | None) -> torch.Tensor:
        embedding = _mul(self.embedding, masks.embedding if masks else None)
        x = F.embedding(tokens, embedding)  # (T, B, H)
        if masks is not None:
            x = _mul(_mul(x, masks.input), masks.x)
        return x

    def _decode(self, states: torch.Tensor, masks: Masks | None) -> LMOutput:
        dropped = _mul(states, masks.output if masks else None)  # (T, B, H)
        return tied_output(states, dropped, self.embedding, self.decoder_bias)

    def _s0(self, xp_t: torch.Tensor, h: torch.Tensor, w_h: torch.Tensor,
            mask_h: torch.Tensor | None) -> torch.Tensor:
        """xp_t (B, 2H) x part of [c0, h0], h (B, H) -> s0 (B, H), after the BatchNorm if any."""
        a0 = torch.addmm(xp_t, _mul(h, mask_h), w_h)  # (B, 2H)
        c0, h0 = a0.chunk(2, dim=-1)
        return self._bn(h + torch.sigmoid(c0) * (torch.tanh(h0) - h))

    def loss(self, tokens: torch.Tensor, targets: torch.Tensor, hidden: torch.Tensor,
             path: Architecture | torch.Tensor, masks: Masks | None = None, alpha: float = 0.0,
             beta: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(loss with AR/TAR, mean cross-entropy, next hidden) of an architecture or a mixture.

        `path` is an Architecture or mixture weights. As DartsLM.loss: the tied decoder and its
        cross-entropy are fused, so the (T, B, V) logits are never held.
        """
        if isinstance(path, Architecture):
            states = self._path_states(tokens, hidden, path, masks)
        else:
            states = self._mixture_states(tokens, hidden, path, masks)
        dropped = _mul(states, masks.output if masks else None)  # (T, B, H)
        return tied_loss(states, dropped, self.embedding, self.decoder_bias, targets, alpha, beta)

    def forward_path(self, tokens: torch.Tensor, hidden: torch.Tensor, arch: Architecture,
                     masks: Masks | None = None) -> LMOutput:
        """One architecture: tokens (T, B), hidden (B, H); masks None means no dropout."""
        return self._decode(self._path_states(tokens, hidden, arch, masks), masks)

    def _path_states(self, tokens: torch.Tensor, hidden: torch.Tensor, arch: Architecture,
                     masks: Masks | None) -> torch.Tensor:
        if arch.n_nodes != self.n_nodes:
            raise ValueError(f"architecture {arch} has {arch.n_nodes} nodes, the supernet "
                             f"{self.n_nodes}")
        x = self._embed(tokens, masks)
        xp = x @ self.w0[: self.nhid]  # (T, B, 2H)
        mats = self.path_matrices(arch)  # (n, H, 2H)
        mask_h = masks.h if masks else None
        if not self.batchnorm:  # DartsLM's timestep-batched recurrence
            return CellRecurrence.apply(xp, hidden, self.w0[self.nhid :], mask_h,
                                        CellPlan.of(arch), *mats.unbind(0))  # (T, B, H)
        # Views taken once, not per timestep: each has one backward that writes the parameter.
        w_h, node_mats = self.w0[self.nhid :], mats.unbind(0)
        outputs = []
        h = hidden
        for t in range(tokens.size(0)):
            nodes = [self._s0(xp[t], h, w_h, mask_h)]
            for j, node in enumerate(arch.nodes, start=1):
                s_p = nodes[node.pred]
                c, h_cand = (_mul(s_p, mask_h) @ node_mats[j - 1]).chunk(2, dim=-1)
                s = s_p + torch.sigmoid(c) * (ACTIVATIONS[node.op](h_cand) - s_p)
                nodes.append(self._bn(s))
            h = torch.stack(nodes[1:]).mean(0)  # (B, H)
            outputs.append(h)
        return torch.stack(outputs)  # (T, B, H)

    def check_weights(self, weights: torch.Tensor) -> None:
        rows = self.n_nodes * (self.n_nodes + 1) // 2
        if weights.shape != (rows, len(self.ops)):
            raise ValueError(
                f"mixture weights have shape {tuple(weights.shape)}; expected ({rows}, "
                f"{len(self.ops)}): one row per (node, predecessor), one column per op"
            )

    def forward_mixture(self, tokens: torch.Tensor, hidden: torch.Tensor, weights: torch.Tensor,
                        masks: Masks | None = None) -> LMOutput:
        """The DARTS mixture with weights (n(n+1)/2, K), rows distributions over space.ops."""
        return self._decode(self._mixture_states(tokens, hidden, weights, masks), masks)

    def _mixture_states(self, tokens: torch.Tensor, hidden: torch.Tensor, weights: torch.Tensor,
                        masks: Masks | None) -> torch.Tensor:
        self.check_weights(weights)
        weights = weights.to(self.ws)
        hid, k = self.nhid, len(self.ops)
        acts = [ACTIVATIONS[op] for op in self.ops]
        x = self._embed(tokens, masks)
        xp = x @ self.w0[:hid]  # (T, B, 2H)
        mask_h = masks.h if masks else None
        batch, sizes = tokens.size(1), list(range(1, self.n_nodes + 1))
        # Per-node views taken once, not per timestep: each has one backward into its parameter.
        w_h = self.w0[hid:]
        node_w = torch.split(weights, sizes)  # node j: (j, K)
        node_total = [w.sum(1)[:, None, None] for w in node_w]  # (j, 1, 1) W_i = sum_k w_ik
        per_node = {"node": [1] * self.n_nodes, "edge": sizes, "edge-op": [j * k for j in sizes]}
        node_mats = torch.split(self.ws, per_node[self.sharing])  # node j: (j or j*K or 1, H, 2H)
        outputs = []
        h = hidden
        for t in range(tokens.size(0)):
            states = self._s0(xp[t], h, w_h, mask_h)[None]  # (1, B, H) then (j, B, H)
            for j in range(1, self.n_nodes + 1):
                w, total, mats = node_w[j - 1], node_total[j - 1], node_mats[j - 1]
                inputs = _mul(states, mask_h)  # (j, B, H)
                if self.sharing == "edge-op":
                    stacked = inputs[:, None].expand(j, k, batch, hid).reshape(j * k, batch, hid)
                    pre = torch.bmm(stacked, mats)  # (j*K, B, 2H)
                    c, h_cand = pre.view(j, k, batch, 2 * hid).chunk(2, dim=-1)  # (j,K,B,H)
                    gates = torch.sigmoid(c)
                    cands = torch.stack([act(h_cand[:, i]) for i, act in enumerate(acts)], 1)
                    mixed = torch.einsum("jkbh,jk->bh", gates * (cands - states[:, None]), w)
                    s = (total * states).sum(0) + mixed
                else:
                    if self.sharing == "node":
                        pre = (inputs.reshape(j * batch, hid) @ mats[0]).view(j, batch, -1)
                    else:
                        pre = torch.bmm(inputs, mats)  # (j, B, 2H)
                    c, h_cand = pre.chunk(2, dim=-1)  # (j, B, H)
                    cand = w[:, 0, None, None] * acts[0](h_cand)
                    for i in range(1, k):
                        cand = cand + w[:, i, None, None] * acts[i](h_cand)  # g_i
                    held = total * states
                    s = (held + torch.sigmoid(c) * (cand - held)).sum(0)  # (B, H)
                states = torch.cat([states, self._bn(s)[None]])
            h = states[1:].mean(0)  # (B, H)
            outputs.append(h)
        return torch.stack(outputs)  # (T, B, H)


def _validation_windows(rows: int, bptt: int) -> list[int]:
    """Start rows of the fixed-length validation minibatches (the last one may be shorter)."""
    return list(range(0, rows - 1, bptt))


class Supernet:
    """A weight-sharing supernet with its training state; satisfies `SearchEnv` structurally.

    Training minibatches follow DARTS: a variable BPTT window per step (learning rate scaled by
    seq_len / bptt), hidden state carried across minibatches and reset at each epoch, gradient
    clipping, SGD with weight decay. Epochs end after one pass over the training split or after
    `config.max_steps_per_epoch` steps. `train_shared` returns the token-weighted mean
    cross-entropy (without the AR/TAR terms).

    Validation is batchified twice: at `config.eval_batch_size` for `evaluate` and at
    `config.batch_size` for `mixture_loss(..., "valid")`, whose minibatches are consecutive
    windows of `config.bptt` rows, one per training step, as DARTS pairs them. The hidden state
    a "valid" peek starts from is the one the last peek at the previous validation minibatch
    ended with (zero when there was none), as DARTS carries `hidden_valid`. A peek's dropout
    masks depend only on (seed, step, split): repeated peeks at one cursor are identical, and
    peeks never change the training stream.
    """

    def __init__(self, space: Space, corpus: Corpus, config: TrainConfig, *,
                 sharing: Sharing = "node", mode: Mode = "single", seed: int = 0,
                 device: str | torch.device = "auto"):
        if mode not in MODES:
            raise ValueError(f"unknown supernet mode {mode!r} (known: {', '.join(MODES)})")
        self.config, self.sharing, self.mode, self.seed = config, _check_sharing(sharing), mode, seed
        self.device = resolve_device(device)
        self._space = space
        self.vocab_size = corpus.vocab_size
        init = torch.Generator().manual_seed(seed)
        self.model = SharedLM(space, corpus.vocab_size, config.nhid, sharing,
                              batchnorm=mode == "mixture", dropouts=dropouts_of(config),
                              generator=init).to(self.device)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=config.lr,
                                         weight_decay=config.wdecay)
        self.train_data = batchify(corpus.train, config.batch_size, self.device)  # (rows, B)
        self.valid_data = batchify(corpus.valid, config.eval_batch_size, self.device)
        self.search_data = batchify(corpus.valid, config.batch_size, self.device)
        self._eval_windows = _validation_windows(self.valid_data.size(0), config.bptt)
        self._search_windows = _validation_windows(self.search_data.size(0), config.bptt)
        # Independent streams: masks of training steps, BPTT windows, paths. (Peeks seed their
        # masks from the cursor: see _peek_masks.)
        self._mask_gen = torch.Generator(self.device).manual_seed(seed)
        self._bptt_rng = np.random.default_rng([seed, 0])
        self._path_rng = np.random.default_rng([seed, 1])
        # Cursors.
        self.step = 0  # training steps done in total
        self.epoch = 0  # completed passes
        self._row = 0  # first row of the next training minibatch
        self._epoch_step = 0  # steps done in the current epoch
        self._next_seq_len = self._draw_seq_len()
        self._hidden = self.model.init_hidden(config.batch_size)  # (B, H) carried state
        self._valid_index = 0  # current "valid" minibatch of mixture_loss
        self._valid_hidden = self.model.init_hidden(config.batch_size)
        self._valid_hidden_next: torch.Tensor | None = None

    # -- SearchEnv ------------------------------------------------------------------------------

    @property
    def space(self) -> Space:
        return self._space

    @property
    def steps_per_epoch(self) -> int:
        """ceil((rows - 1) / bptt) windows of the nominal length, capped by max_steps_per_epoch."""
        nominal = math.ceil((self.train_data.size(0) - 1) / self.config.bptt)
        cap = self.config.max_steps_per_epoch
        return nominal if cap is None else min(nominal, cap)

    def parameters(self) -> Iterator[nn.Parameter]:
        return self.model.parameters()

    def train_shared(self, arch: Architecture | None = None, weights: torch.Tensor | None = None,
                     steps: int = 1) -> float:
        if arch is not None and weights is not None:
            raise ValueError("train_shared takes an architecture or mixture weights, not both")
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        if weights is not None:
            self.model.check_weights(weights)
            weights = weights.detach()
        total_loss, total_tokens = 0.0, 0
        for _ in range(steps):
            path = arch if arch is not None or weights is not None else \
                self._space.sample(self._path_rng)
            loss, tokens = self._train_step(path, weights)
            total_loss += loss * tokens
            total_tokens += tokens
        return total_loss / total_tokens

    def evaluate(self, arch: Architecture, batches: int = 1, offset: int = 0) -> float:
        """Validation perplexity of `arch`, token-weighted, without dropout.

        batches > 0: minibatches offset .. offset+batches-1 (wrapping), each from a zero hidden
        state. batches == 0: the whole validation split in order, the hidden state carried across
        minibatches as a from-scratch evaluation does.
        """
        if batches < 0:
            raise ValueError(f"batches must be >= 0, got {batches}")
        n = len(self._eval_windows)
        if batches == 0:
            indices, carry = list(range(n)), True
        else:
            indices, carry = [(offset + b) % n for b in range(batches)], False
        return math.exp(self._mean_loss(arch, indices, carry))

    def mixture_loss(self, weights: torch.Tensor, split: str) -> torch.Tensor:
        if split == "train":
            data, targets = get_batch(self.train_data, self._row, self._next_seq_len)
            hidden = self._hidden
        elif split == "valid":
            start = self._search_windows[self._valid_index]
            data, targets = get_batch(self.search_data, start, self.config.bptt)
            hidden = self._valid_hidden
        else:
            raise ValueError(f"split must be 'train' or 'valid', got {split!r}")
        self.model.train()
        masks = self._peek_masks(split, data.size(1))
        _, cross_entropy, next_hidden = self.model.loss(data, targets, hidden, weights, masks)
        if split == "valid":
            self._valid_hidden_next = next_hidden.detach()
        return cross_entropy

    # -- training internals ---------------------------------------------------------------------

    def _peek_masks(self, split: str, batch: int) -> Masks:
        """Dropout masks of a peek: a function of (seed, training step, split) only.

        So every peek at one cursor sees the same masks (DARTS's finite-difference
        Hessian-vector product compares two such losses), and peeks never move the training
        stream. DARTS itself redraws masks on every forward.
        """
        key = np.random.SeedSequence([self.seed, self.step, SPLIT_KEYS[split]])
        generator = torch.Generator(self.device).manual_seed(int(key.generate_state(1)[0]))
        return self.model.sample_masks(batch, generator)

    def _draw_seq_len(self) -> int:
        return sample_seq_len(self._bptt_rng, self.config.bptt, self.config.max_seq_len_delta)

    def _train_step(self, path: Architecture | None,
                    weights: torch.Tensor | None) -> tuple[float, int]:
        config, seq_len = self.config, self._next_seq_len
        data, targets = get_batch(self.train_data, self._row, seq_len)
        self.model.train()
        for group in self.optimizer.param_groups:
            group["lr"] = config.lr * seq_len / config.bptt
        masks = self.model.sample_masks(data.size(1), self._mask_gen)
        route = path if path is not None else weights
        assert route is not None
        loss, cross_entropy, next_hidden = self.model.loss(data, targets, self._hidden, route,
                                                           masks, config.alpha, config.beta)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"supernet training loss is {float(loss.detach())} at step {self.step} (epoch "
                f"{self.epoch}, row {self._row}); lower lr or raise clip"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), config.clip)
        self.optimizer.step()
        self._hidden = next_hidden.detach()
        self._advance(data.size(0))
        return float(cross_entropy.detach()), targets.numel()

    def _advance(self, seq_len: int) -> None:
        self.step += 1
        self._epoch_step += 1
        self._row += seq_len
        cap = self.config.max_steps_per_epoch
        if self._row >= self.train_data.size(0) - 2 or (cap is not None and self._epoch_step >= cap):
            self.epoch += 1
            self._row, self._epoch_step = 0, 0
            self._hidden = self.model.init_hidden(self.config.batch_size)
        self._valid_index = (self._valid_index + 1) % len(self._search_windows)
        if self._valid_index == 0 or self._valid_hidden_next is None:
            self._valid_hidden = self.model.init_hidden(self.config.batch_size)
        else:
            self._valid_hidden = self._valid_hidden_next
        self._valid_hidden_next = None
        self._next_seq_len = self._draw_seq_len()

    @torch.no_grad()
    def _mean_loss(self, arch: Architecture, indices: list[int], carry: bool) -> float:
        self.model.eval()
        total, tokens = 0.0, 0
        hidden = self.model.init_hidden(self.config.eval_batch_size)
        for index in indices:
            data, targets = get_batch(self.valid_data, self._eval_windows[index], self.config.bptt)
            if not carry:
                hidden = self.model.init_hidden(self.config.eval_batch_size)
            out = self.model.forward_path(data, hidden, arch)
            hidden = out.hidden
            logits = out.logits
            total += float(F.cross_entropy(logits.reshape(-1, logits.size(-1)),
                                           targets.reshape(-1), reduction="sum"))
            tokens += targets.numel()
        self.model.train()
        return total / tokens

    # -- save / load ----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed search needs: weights, optimiser, RNG streams and cursors."""
        return {
            "format": "naseval.supernet/2",
            "identity": self._identity(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "seed": self.seed,  # seeds the peeks' masks
            "mask_gen": self._mask_gen.get_state(),
            "bptt_rng": self._bptt_rng.bit_generator.state,
            "path_rng": self._path_rng.bit_generator.state,
            "cursors": {"step": self.step, "epoch": self.epoch, "row": self._row,
                        "epoch_step": self._epoch_step, "next_seq_len": self._next_seq_len,
                        "valid_index": self._valid_index},
            "hidden": self._hidden, "valid_hidden": self._valid_hidden,
            "valid_hidden_next": self._valid_hidden_next,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("format") != "naseval.supernet/2":
            raise ValueError(f"not a naseval supernet state (format {state.get('format')!r})")
        mine, theirs = self._identity(), state["identity"]
        differ = sorted(key for key in mine if mine[key] != theirs.get(key))
        if differ:
            raise ValueError(f"supernet state was saved with a different {', '.join(differ)}: "
                             f"saved {[theirs.get(k) for k in differ]}, here "
                             f"{[mine[k] for k in differ]}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.seed = int(state["seed"])
        self._mask_gen.set_state(state["mask_gen"].cpu())
        self._bptt_rng.bit_generator.state = state["bptt_rng"]
        self._path_rng.bit_generator.state = state["path_rng"]
        cursors = state["cursors"]
        self.step, self.epoch, self._row = cursors["step"], cursors["epoch"], cursors["row"]
        self._epoch_step, self._next_seq_len = cursors["epoch_step"], cursors["next_seq_len"]
        self._valid_index = cursors["valid_index"]
        self._hidden = state["hidden"].to(self.device)
        self._valid_hidden = state["valid_hidden"].to(self.device)
        pending = state["valid_hidden_next"]
        self._valid_hidden_next = None if pending is None else pending.to(self.device)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the state atomically (temporary file, then rename) and return the path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        os.close(fd)
        try:
            torch.save(self.state_dict(), tmp)
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return target

    def load(self, path: str | os.PathLike[str]) -> None:
        """Restore a state written by `save` into this (identically constructed) supernet."""
        self.load_state_dict(torch.load(path, map_location=self.device, weights_only=True))

    def _identity(self) -> dict[str, Any]:
        return {"space": self._space.to_dict(), "sharing": self.sharing, "mode": self.mode,
                "config": self.config.to_dict(), "vocab_size": self.vocab_size,
                "device": self.device.type}  # the mask generator lives there
