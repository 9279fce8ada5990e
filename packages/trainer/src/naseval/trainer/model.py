"""The DARTS recurrent-cell language model (quark0/darts rnn/model.py), for any Architecture.

Per timestep, with variational masks mx, mh fixed over a BPTT segment:

    [c0, h0] = [x*mx, h*mh] W0            s0 = h + sigmoid(c0) * (tanh(h0) - h)
    [c, h']  = (s_p*mh) Wj                sj = s_p + sigmoid(c) * (f_j(h') - s_p)
    h_next = mean(s1..sn)                 (also the cell output)

Only the h -> h path is sequential, so this implementation
  * computes the x part of W0 for all T timesteps in one matmul before the loop,
  * runs the loop without autograd, with one matmul per *distinct predecessor* (nodes reading the
    same state share it: DARTS_V2 needs 5 instead of 8), and
  * backpropagates through it by hand (`CellRecurrence`), keeping only the state gradients
    sequential; each weight gradient is then one (H, T*B) x (T*B, 2H*k) matmul over all timesteps.
`DartsLM.loss` (what training uses) also fuses the tied decoder with the cross-entropy, chunk by
chunk (`TiedDecoderLoss`). `naseval.trainer.reference.ReferenceLM` is the per-timestep autograd
version all of this is tested against.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from naseval.space import Architecture
from naseval.trainer.dropout import locked_mask

DARTS_V2 = Architecture.parse("sigmoid:0 relu:1 relu:1 identity:1 tanh:2 sigmoid:5 tanh:3 relu:5")
"""The cell DARTS found (second order), `genotypes.DARTS_V2` in quark0/darts rnn."""

CELL_INIT_RANGE = 0.04  # W0 and Wj ~ U(-0.04, 0.04), DARTS rnn/model.py INITRANGE
EMBEDDING_INIT_RANGE = 0.1  # tied embedding/decoder ~ U(-0.1, 0.1), DARTS RNNModel.init_weights

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "identity": lambda a: a,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
}


@dataclass(frozen=True)
class Dropouts:
    """Dropout probabilities of the DARTS LM (names as in DARTS rnn/train.py)."""

    dropout: float = 0.0  # locked dropout on the cell output, before the decoder
    dropouth: float = 0.0  # variational mask mh on h and on every node's input
    dropoutx: float = 0.0  # variational mask mx on the cell input x
    dropouti: float = 0.0  # locked dropout on the embedding output
    dropoute: float = 0.0  # whole embedding rows (words) dropped


@dataclass(frozen=True)
class Masks:
    """The dropout masks of one BPTT segment, each already scaled by 1/(1-p); None when off."""

    embedding: torch.Tensor | None  # (V, 1) word rows kept (dropoute)
    input: torch.Tensor | None  # (B, H) locked mask on the embedding output (dropouti)
    x: torch.Tensor | None  # (B, H) mx (dropoutx)
    h: torch.Tensor | None  # (B, H) mh (dropouth)
    output: torch.Tensor | None  # (B, H) locked mask on the cell output (dropout)


def sample_masks(dropouts: Dropouts, vocab_size: int, nhid: int, batch: int,
                 generator: torch.Generator | None, like: torch.Tensor) -> Masks:
    """Draw one segment's masks (in this fixed order: embedding, input, x, h, output)."""
    return Masks(
        embedding=locked_mask(like, vocab_size, 1, dropouts.dropoute, generator),
        input=locked_mask(like, batch, nhid, dropouts.dropouti, generator),
        x=locked_mask(like, batch, nhid, dropouts.dropoutx, generator),
        h=locked_mask(like, batch, nhid, dropouts.dropouth, generator),
        output=locked_mask(like, batch, nhid, dropouts.dropout, generator),
    )


def _mul(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return x if mask is None else x * mask


class LMOutput(NamedTuple):
    logits: torch.Tensor  # (T, B, V) decoder outputs before log-softmax
    hidden: torch.Tensor  # (B, H) state after the last timestep, to carry to the next segment
    states: torch.Tensor  # (T, B, H) cell outputs before output dropout (TAR uses these)
    dropped: torch.Tensor  # (T, B, H) cell outputs after output dropout (AR uses these)


class _Workspace:
    """Big scratch buffers kept between steps, lent to one autograd graph at a time.

    Fresh (T, n+1, B, H) buffers cost a page fault per 4 KiB on every step (~10 ms per 24 MB
    on CPU); reusing them removes that. The buffers are lent to a forward until its backward
    has run or its graph is gone (a weak reference to the autograd context tells); a forward
    that finds them lent gets fresh ones. They never leave the Function: outputs and input
    gradients are always fresh tensors.
    """

    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}
        self.holder: weakref.ref[Any] | None = None

    def lend(self, ctx: Any) -> _Workspace | None:
        if self.holder is not None and self.holder() is not None:
            return None
        self.holder = weakref.ref(ctx)
        return self

    def release(self) -> None:
        self.holder = None

    def get(self, name: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        buffer = self.tensors.get(name)
        if (buffer is None or buffer.shape != shape or buffer.dtype != like.dtype
                or buffer.device != like.device):
            buffer = self.tensors[name] = like.new_empty(shape)
        return buffer


def _buffer(workspace: _Workspace | None, name: str, shape: tuple[int, ...],
            like: torch.Tensor) -> torch.Tensor:
    return like.new_empty(shape) if workspace is None else workspace.get(name, shape, like)


@dataclass(frozen=True)
class CellPlan:
    """The architecture as the recurrence needs it: ops, preds, children, derivative terms."""

    ops: tuple[str, ...]  # op of node j at index j-1
    preds: tuple[int, ...]  # pred of node j at index j-1
    children: tuple[tuple[int, ...], ...]  # children[p] = nodes j (1-based) reading state p
    # f'(a) = one + g * (lin + sq * g) + step * (g > 0) with g = f(a), per state 0..n (s0's
    # candidate is tanh): tanh 1 - g^2, sigmoid g - g^2, relu [g > 0], identity 1. Exact in
    # floating point, and one vectorised pass over all nodes instead of one branch per node.
    f_grad_terms: tuple[tuple[float, ...], ...]  # (one, lin, sq, step), each of length n + 1
    workspace: _Workspace = field(default_factory=_Workspace, compare=False, repr=False)

    @classmethod
    def of(cls, arch: Architecture) -> CellPlan:
        n = arch.n_nodes
        children = tuple(tuple(j for j in range(1, n + 1) if arch.nodes[j - 1].pred == p)
                         for p in range(n + 1))
        ops = ("tanh", *(node.op for node in arch.nodes))
        terms = {"tanh": (1.0, 0.0, -1.0, 0.0), "sigmoid": (0.0, 1.0, -1.0, 0.0),
                 "relu": (0.0, 0.0, 0.0, 1.0), "identity": (1.0, 0.0, 0.0, 0.0)}
        f_grad_terms = tuple(zip(*(terms[op] for op in ops)))
        return cls(ops[1:], tuple(node.pred for node in arch.nodes), children, f_grad_terms)


def _activate(op: str, a: torch.Tensor, out: torch.Tensor) -> None:
    if op == "sigmoid":
        torch.sigmoid(a, out=out)
    elif op == "tanh":
        torch.tanh(a, out=out)
    elif op == "relu":
        torch.clamp_min(a, 0.0, out=out)
    else:
        out.copy_(a)


def _recurrence_forward(
    xp: torch.Tensor, h: torch.Tensor, w_h: torch.Tensor, mask_h: torch.Tensor | None,
    w_groups: list[torch.Tensor | None], plan: CellPlan, workspace: _Workspace | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run the cell over T steps; returns outputs (T,B,H) and states, gates, candidates.

    xp: (T, B, 2H) x-part of the s0 pre-activation. w_groups[p]: (H, 2H*k) the matrices of the
    k children of state p side by side (None for a state nobody reads).
    states, gates, cands: (T, n+1, B, H) s_j, sigmoid(c_j), f_j(h'_j) for j = 0..n.
    """
    steps, batch, two_h = xp.shape
    hid = two_h // 2
    n = len(plan.ops)
    shape = (steps, n + 1, batch, hid)
    states = _buffer(workspace, "states", shape, xp)
    gates = _buffer(workspace, "gates", shape, xp)
    cands = _buffer(workspace, "cands", shape, xp)
    out = xp.new_empty(steps, batch, hid)
    pre: list[torch.Tensor | None] = [None] * (n + 1)  # pre-activation (B, 2H) of node j
    for t in range(steps):
        s_t, g_t, f_t = states[t], gates[t], cands[t]
        a0 = torch.addmm(xp[t], _mul(h, mask_h), w_h)  # (B, 2H)
        torch.sigmoid(a0[:, :hid], out=g_t[0])
        torch.tanh(a0[:, hid:], out=f_t[0])
        torch.lerp(h, f_t[0], g_t[0], out=s_t[0])  # h + c0 * (f0 - h)
        for j in range(n + 1):
            if j > 0:
                a = pre[j]
                assert a is not None
                torch.sigmoid(a[:, :hid], out=g_t[j])
                _activate(plan.ops[j - 1], a[:, hid:], out=f_t[j])
                torch.lerp(s_t[plan.preds[j - 1]], f_t[j], g_t[j], out=s_t[j])
            w = w_groups[j]
            if w is not None:  # state j is ready: pre-activate all its children at once
                grouped = _mul(s_t[j], mask_h) @ w  # (B, 2H*k)
                for i, child in enumerate(plan.children[j]):
                    pre[child] = grouped[:, i * two_h : (i + 1) * two_h]
        torch.mean(s_t[1:], dim=0, out=out[t])
        h = out[t]
    return out, states, gates, cands


@functools.lru_cache(maxsize=512)
def _constant(values: tuple[float, ...] | tuple[int, ...], dtype: torch.dtype,
              device: torch.device) -> torch.Tensor:
    """A small read-only tensor of `values`, made once per (values, dtype, device).

    On CUDA, torch.tensor(list, device=cuda) copies from pageable memory and then waits for the
    stream: five such copies per backward were five host syncs per training step.
    """
    return torch.tensor(values, dtype=dtype, device=device)


class CellRecurrence(torch.autograd.Function):
    """The sequential part of the cell with a hand-written, timestep-batched backward."""

    @staticmethod
    def forward(
        ctx: Any, xp: torch.Tensor, h0: torch.Tensor, w_h: torch.Tensor,
        mask_h: torch.Tensor | None, plan: CellPlan, *ws: torch.Tensor,
    ) -> torch.Tensor:
        w_groups = _group_weights(ws, plan)
        workspace = plan.workspace.lend(ctx)
        out, states, gates, cands = _recurrence_forward(xp, h0, w_h, mask_h, w_groups, plan,
                                                        workspace)
        ctx.plan, ctx.workspace = plan, workspace
        ctx.save_for_backward(h0, w_h, mask_h, out, states, gates, cands, *ws)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        plan: CellPlan = ctx.plan
        h0, w_h, mask_h, out, states, gates, cands, *ws = ctx.saved_tensors
        w_groups = _group_weights(ws, plan)
        steps, batch, hid = out.shape
        n, two_h = len(plan.ops), 2 * hid
        grad_out = grad_out.contiguous()
        pred_index = _constant(plan.preds, torch.int64, out.device)
        one, lin, sq, step = (_constant(v, out.dtype, out.device)[:, None, None]
                              for v in plan.f_grad_terms)  # each (n+1, 1, 1)

        d_pre0 = out.new_empty(steps, batch, 2, hid)  # grad of [c0, h0] pre-activation = grad xp
        workspace: _Workspace | None = ctx.workspace
        d_groups = [_buffer(workspace, f"d_group{p}", (steps, batch, len(c), 2, hid), out)
                    if c else None for p, c in enumerate(plan.children)]
        slot = {j: (p, plan.children[p].index(j)) for j, p in enumerate(plan.preds, start=1)}
        d_states = out.new_empty(n + 1, batch, hid)
        inputs = out.new_empty(n + 1, batch, hid)  # the state node j interpolates from
        keep = out.new_empty(n + 1, batch, hid)
        f_grad = out.new_empty(n + 1, batch, hid)
        local = out.new_empty(n + 1, batch, 2, hid)
        carry = torch.zeros_like(h0)  # dL/dh flowing from t+1 into h_t
        for t in range(steps - 1, -1, -1):
            # s_j = lerp(in_j, g_j, c_j), so  d in_j += ds_j * (1 - c_j)  and
            # d[pre_c, pre_h'] = ds_j * [(g_j - in_j) c_j (1 - c_j), c_j f'(pre_h')]:
            # the factors after ds_j are computed here for all nodes of step t at once.
            g_t, c_t = cands[t], gates[t]
            inputs[0] = out[t - 1] if t > 0 else h0
            torch.index_select(states[t], 0, pred_index, out=inputs[1:])
            torch.neg(c_t, out=keep).add_(1.0)
            torch.sub(g_t, inputs, out=local[:, :, 0]).mul_(c_t).mul_(keep)
            torch.mul(g_t, sq, out=f_grad).add_(lin).mul_(g_t).add_(one)
            f_grad.addcmul_((g_t > 0).to(g_t.dtype), step)
            torch.mul(c_t, f_grad, out=local[:, :, 1])

            torch.div(grad_out[t] + carry, n, out=d_states[1])
            d_states[2:] = d_states[1]
            d_states[0].zero_()
            for j in range(n, -1, -1):
                d_j = d_states[j]
                d_group, w = d_groups[j], w_groups[j]
                if d_group is not None and w is not None:  # all children of j are done
                    d_kids = d_group[t].view(batch, -1)  # (B, 2H*k)
                    if mask_h is None:
                        d_j.addmm_(d_kids, w.t())
                    else:
                        d_j.addcmul_(d_kids @ w.t(), mask_h)
                if j == 0:
                    break
                p, i = slot[j]
                torch.mul(d_j[:, None], local[j], out=d_groups[p][t, :, i])  # type: ignore[index]
                d_states[p].addcmul_(d_j, keep[j])
            d0 = d_states[0]
            torch.mul(d0[:, None], local[0], out=d_pre0[t])
            carry = d0 * keep[0]
            back = d_pre0[t].view(batch, two_h) @ w_h.t()
            if mask_h is None:
                carry += back
            else:
                carry.addcmul_(back, mask_h)
        d_pre0 = d_pre0.view(steps, batch, two_h)

        # Weight gradients: one matmul over all T*B rows per matrix group.
        h_prevs = torch.cat([h0[None], out[:-1]])  # (T, B, H)
        d_w_h = _mul(h_prevs, mask_h).reshape(-1, hid).t() @ d_pre0.reshape(-1, two_h)
        d_ws: list[torch.Tensor | None] = [None] * n
        for p, kids in enumerate(plan.children):
            d_group = d_groups[p]
            if d_group is None:
                continue
            rows = _mul(states[:, p], mask_h).reshape(-1, hid)  # (T*B, H)
            d_w = rows.t() @ d_group.reshape(-1, two_h * len(kids))  # (H, 2H*k)
            for i, child in enumerate(kids):
                d_ws[child - 1] = d_w[:, i * two_h : (i + 1) * two_h]
        if workspace is not None:
            workspace.release()
        return (d_pre0, carry, d_w_h, None, None, *d_ws)


def _group_weights(ws: Sequence[torch.Tensor], plan: CellPlan) -> list[torch.Tensor | None]:
    return [torch.cat([ws[j - 1] for j in kids], dim=1) if kids else None
            for kids in plan.children]


class DartsLM(nn.Module):
    """Embedding -> DARTS cell -> tied decoder, with the AWD-LSTM dropouts of DARTS."""

    def __init__(self, arch: Architecture, vocab_size: int, nhid: int,
                 dropouts: Dropouts | None = None, generator: torch.Generator | None = None):
        super().__init__()
        dropouts = Dropouts() if dropouts is None else dropouts
        if vocab_size < 1 or nhid < 1:
            raise ValueError(f"vocab_size and nhid must be >= 1, got {vocab_size}, {nhid}")
        self.arch, self.vocab_size, self.nhid, self.dropouts = arch, vocab_size, nhid, dropouts
        self.plan = CellPlan.of(arch)

        def uniform(*shape: int, bound: float) -> nn.Parameter:
            return nn.Parameter(torch.empty(shape).uniform_(-bound, bound, generator=generator))

        self.embedding = uniform(vocab_size, nhid, bound=EMBEDDING_INIT_RANGE)  # (V, H), tied
        self.decoder_bias = nn.Parameter(torch.zeros(vocab_size))  # (V,)
        self.w0 = uniform(2 * nhid, 2 * nhid, bound=CELL_INIT_RANGE)  # rows: [x part; h part]
        self.ws = nn.ParameterList(
            [uniform(nhid, 2 * nhid, bound=CELL_INIT_RANGE) for _ in arch.nodes]
        )

    def init_hidden(self, batch: int) -> torch.Tensor:
        return self.embedding.new_zeros(batch, self.nhid)  # (B, H)

    def sample_masks(self, batch: int, generator: torch.Generator | None = None) -> Masks:
        return sample_masks(self.dropouts, self.vocab_size, self.nhid, batch, generator,
                            self.embedding)

    def features(self, tokens: torch.Tensor, hidden: torch.Tensor,
                 masks: Masks | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Cell outputs before and after output dropout, both (T, B, H)."""
        hid = self.nhid
        x = F.embedding(tokens, self.embedding)  # (T, B, H)
        if masks is not None:
            if masks.embedding is not None:  # (E * m)[w] == E[w] * m[w], without a (V, H) copy
                x = x * F.embedding(tokens, masks.embedding)
            x = _mul(_mul(x, masks.input), masks.x)
        xp = x @ self.w0[:hid]  # (T, B, 2H): the x part of [c0, h0] for every timestep at once
        states = CellRecurrence.apply(
            xp, hidden, self.w0[hid:], masks.h if masks else None, self.plan, *self.ws
        )  # (T, B, H)
        return states, _mul(states, masks.output if masks else None)

    def forward(self, tokens: torch.Tensor, hidden: torch.Tensor,
                masks: Masks | None = None) -> LMOutput:
        """tokens (T, B) int64, hidden (B, H); masks None means no dropout (evaluation)."""
        states, dropped = self.features(tokens, hidden, masks)
        return tied_output(states, dropped, self.embedding, self.decoder_bias)

    def loss(self, tokens: torch.Tensor, targets: torch.Tensor, hidden: torch.Tensor,
             masks: Masks | None = None, alpha: float = 0.0,
             beta: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(loss with AR/TAR, mean cross-entropy, next hidden): `lm_loss(forward(...))` without
        ever holding the (T, B, V) logits (see TiedDecoderLoss)."""
        states, dropped = self.features(tokens, hidden, masks)
        return tied_loss(states, dropped, self.embedding, self.decoder_bias, targets, alpha, beta)


def tied_output(states: torch.Tensor, dropped: torch.Tensor, embedding: torch.Tensor,
                bias: torch.Tensor) -> LMOutput:
    """The LMOutput of cell outputs `states` (T, B, H) and `dropped` (after output dropout)
    under the tied decoder (embedding (V, H), bias (V,))."""
    logits = F.linear(dropped, embedding, bias)  # (T, B, V)
    return LMOutput(logits, states[-1], states, dropped)


def tied_loss(states: torch.Tensor, dropped: torch.Tensor, embedding: torch.Tensor,
              bias: torch.Tensor, targets: torch.Tensor, alpha: float,
              beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss with AR/TAR, mean cross-entropy, next hidden) of `tied_output(...)` against
    `targets` (T, B), the decoder fused with its cross-entropy (see TiedDecoderLoss)."""
    cross_entropy = TiedDecoderLoss.apply(dropped.reshape(-1, dropped.size(-1)), embedding,
                                           bias, targets.reshape(-1))
    return _regularised(cross_entropy, states, dropped, alpha, beta), cross_entropy, states[-1]


def _decoder_chunk_rows(device: torch.device) -> int:
    """Rows of logits alive at once in TiedDecoderLoss, as measured (docs/benchmarks.md).

    CPU: 256 rows (10 MB at V=10k) single-threaded and 512 multi-threaded stayed in cache and
    were fastest on a quiet 2-core machine at hidden 64 and 300 (2048 rows: 10-45% slower).
    GPU: memory is plentiful and launches are the cost, so one chunk covers a usual step.
    """
    if device.type == "cuda":
        return 8192
    return 256 if torch.get_num_threads() == 1 else 512


def tied_decoder_loss(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                      targets: torch.Tensor, need_grad: bool = True,
                      ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None,
                                 torch.Tensor | None]:
    """mean_i CE(x_i W^T + b, y_i) for x (N, H), weight (V, H), bias (V,), targets (N,).

    Returns the loss and, with `need_grad`, its gradients with respect to x, weight and bias,
    formed chunk by chunk on the way. The unfused decoder writes and reads four (N, V) tensors
    per step (logits, log-softmax and their gradients: 360 MB at N=2240, V=10k); here each
    chunk's logits become its softmax gradient in place, in one buffer reused by every chunk
    (fresh pages cost more than the softmax), and the 1/N of the mean is applied to the small
    results, not to the (c, V) gradient.
    """
    rows = x.size(0)
    chunk = _decoder_chunk_rows(x.device)
    total = x.new_zeros((), dtype=torch.float64)
    scale = 1.0 / max(rows, 1)
    d_x = d_w = d_b = None
    if need_grad:
        d_x, d_w, d_b = torch.empty_like(x), torch.zeros_like(weight), torch.zeros_like(bias)
    buffer = x.new_empty(min(chunk, rows), weight.size(0))  # (c, V) for every chunk
    for start in range(0, rows, chunk):
        x_c, t_c = x[start : start + chunk], targets[start : start + chunk]
        logits = torch.addmm(bias, x_c, weight.t(), out=buffer[: x_c.size(0)])  # (c, V)
        target_logits = logits.gather(1, t_c[:, None]).squeeze(1)  # (c,)
        top = logits.amax(dim=1, keepdim=True)  # (c, 1)
        exp = logits.sub_(top).exp_()  # (c, V), in place
        sums = exp.sum(dim=1, keepdim=True)  # (c, 1)
        total += ((sums.log() + top).squeeze(1) - target_logits).sum().double()
        if d_x is not None and d_w is not None and d_b is not None:
            grad = exp.mul_(sums.reciprocal_())  # softmax
            grad[torch.arange(t_c.numel(), device=x.device), t_c] -= 1.0  # d sum CE / d logits
            torch.mm(grad, weight, out=d_x[start : start + chunk])
            d_w.addmm_(grad.t(), x_c, alpha=scale)
            d_b.add_(grad.sum(dim=0), alpha=scale)
    if d_x is not None:
        d_x.mul_(scale)
    return (total * scale).to(x.dtype), d_x, d_w, d_b


class TiedDecoderLoss(torch.autograd.Function):
    """`tied_decoder_loss` as an autograd function: the gradients are computed for
    grad_output = 1 during forward and scaled in backward, so nothing is recomputed."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                targets: torch.Tensor) -> torch.Tensor:
        need_grad = any(ctx.needs_input_grad[:3])
        loss, d_x, d_w, d_b = tied_decoder_loss(x, weight, bias, targets, need_grad)
        if need_grad:
            ctx.save_for_backward(d_x, d_w, d_b)
        return loss

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        d_x, d_w, d_b = ctx.saved_tensors
        return d_x * grad_out, d_w * grad_out, d_b * grad_out, None


def _regularised(cross_entropy: torch.Tensor, states: torch.Tensor, dropped: torch.Tensor,
                 alpha: float, beta: float) -> torch.Tensor:
    loss = cross_entropy
    if alpha > 0:
        loss = loss + alpha * dropped.pow(2).mean()
    if beta > 0:
        loss = loss + beta * (states[1:] - states[:-1]).pow(2).mean()
    return loss


def lm_loss(output: LMOutput, targets: torch.Tensor, alpha: float = 0.0,
            beta: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(training loss with AR and TAR, mean cross-entropy) as DARTS rnn/train.py computes them."""
    logits = output.logits
    cross_entropy = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
    return _regularised(cross_entropy, output.states, output.dropped, alpha, beta), cross_entropy


def build_model(arch: Architecture, vocab_size: int, nhid: int,
                dropouts: Dropouts | None = None, seed: int | None = None) -> DartsLM:
    """A DartsLM with weights drawn from `seed` (the global torch RNG when None)."""
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return DartsLM(arch, vocab_size, nhid, dropouts, generator)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
