"""The straightforward DARTS LM: a per-timestep Python loop with one matmul per node, autograd.

It mirrors `DARTSCell.cell` of quark0/darts rnn/model.py line for line and exists to check
`DartsLM` (same parameters, same masks: equal outputs, losses and gradients) and as the
baseline every speed figure is a ratio against.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from naseval.space import Architecture
from naseval.trainer.model import ACTIVATIONS, DartsLM, LMOutput, Masks, tied_output


class ReferenceLM(nn.Module):
    """Same parameter names and shapes as DartsLM, so state dicts load across."""

    def __init__(self, arch: Architecture, vocab_size: int, nhid: int):
        super().__init__()
        self.arch, self.vocab_size, self.nhid = arch, vocab_size, nhid
        self.embedding = nn.Parameter(torch.zeros(vocab_size, nhid))  # (V, H), tied decoder
        self.decoder_bias = nn.Parameter(torch.zeros(vocab_size))  # (V,)
        self.w0 = nn.Parameter(torch.zeros(2 * nhid, 2 * nhid))  # input is [x*mx, h*mh]
        self.ws = nn.ParameterList([nn.Parameter(torch.zeros(nhid, 2 * nhid)) for _ in arch.nodes])

    @classmethod
    def from_model(cls, model: DartsLM) -> ReferenceLM:
        """A reference holding a copy of `model`'s weights."""
        reference = cls(model.arch, model.vocab_size, model.nhid).to(model.embedding)
        reference.load_state_dict(model.state_dict())
        return reference

    def cell(self, x: torch.Tensor, h_prev: torch.Tensor, masks: Masks | None) -> torch.Tensor:
        """One timestep: x, h_prev (B, H) -> h (B, H)."""
        if masks is not None and masks.x is not None:
            x = x * masks.x
        mask_h = masks.h if masks is not None else None
        h_in = h_prev * mask_h if mask_h is not None else h_prev
        c0, h0 = torch.split(torch.cat([x, h_in], dim=-1).mm(self.w0), self.nhid, dim=-1)
        s0 = h_prev + c0.sigmoid() * (h0.tanh() - h_prev)
        states = [s0]
        for node, w in zip(self.arch.nodes, self.ws):
            s_prev = states[node.pred]
            s_in = s_prev * mask_h if mask_h is not None else s_prev
            c, h = torch.split(s_in.mm(w), self.nhid, dim=-1)
            states.append(s_prev + c.sigmoid() * (ACTIVATIONS[node.op](h) - s_prev))
        return torch.mean(torch.stack(states[1:], -1), -1)

    def forward(self, tokens: torch.Tensor, hidden: torch.Tensor,
                masks: Masks | None = None) -> LMOutput:
        x = reference_embed(self.embedding, tokens, masks)  # (T, B, H)
        outputs = []
        for t in range(tokens.size(0)):
            hidden = self.cell(x[t], hidden, masks)
            outputs.append(hidden)
        return reference_decode(torch.stack(outputs), masks, self.embedding, self.decoder_bias)


def reference_embed(embedding: torch.Tensor, tokens: torch.Tensor,
                    masks: Masks | None) -> torch.Tensor:
    """The DARTS way: drop whole rows of the (V, H) table, look up tokens (T, B), drop inputs."""
    if masks is not None and masks.embedding is not None:
        embedding = embedding * masks.embedding
    x = F.embedding(tokens, embedding)  # (T, B, H)
    if masks is not None and masks.input is not None:
        x = x * masks.input
    return x


def reference_decode(states: torch.Tensor, masks: Masks | None, embedding: torch.Tensor,
                     bias: torch.Tensor) -> LMOutput:
    """Output dropout on the cell outputs (T, B, H), then the tied decoder."""
    dropped = states
    if masks is not None and masks.output is not None:
        dropped = states * masks.output
    return tied_output(states, dropped, embedding, bias)
