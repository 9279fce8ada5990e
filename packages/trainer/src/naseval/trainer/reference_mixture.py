"""The straightforward DARTS mixture: a per-timestep loop, the ops' weighted sum left unfolded.

It mirrors `DARTSCellSearch.cell` of quark0/darts rnn/model_search.py: per node one matmul over
the stacked predecessor states (per node and op with edge-op sharing), then for every op the
highway update of every predecessor, weighted and summed. It exists to check
`SharedLM.forward_mixture` (same parameters and masks: equal outputs and gradients) and as the
baseline of the mixture speed figure.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from naseval.trainer.model import ACTIVATIONS, LMOutput, Masks
from naseval.trainer.reference import reference_decode, reference_embed
from naseval.trainer.supernet import BN_EPS, BN_MOMENTUM, SharedLM, alpha_row


def _node_matmul(lm: SharedLM, masked: torch.Tensor, j: int, op_index: int) -> torch.Tensor:
    """[c, h'] (j, B, 2H) of node j from its masked predecessor states (j, B, H)."""
    hid, k, r0 = lm.nhid, len(lm.ops), alpha_row(j, 0)
    if lm.sharing == "node":
        return masked.view(-1, hid).mm(lm.ws[j - 1]).view(j, -1, 2 * hid)
    if lm.sharing == "edge":
        return torch.bmm(masked, lm.ws[r0 : r0 + j])
    return torch.bmm(masked, lm.ws[r0 * k + op_index : (r0 + j) * k : k])


def reference_mixture(lm: SharedLM, tokens: torch.Tensor, hidden: torch.Tensor,
                      weights: torch.Tensor, masks: Masks | None = None,
                      matmul_per_op: bool = False) -> LMOutput:
    """`lm.forward_mixture` computed the DARTS way, from `lm`'s own parameters.

    `matmul_per_op` repeats the node matmul for every op (the textbook mixture, each op a full
    edge of its own) instead of sharing it between the ops as DARTS does; same numbers.
    """
    lm.check_weights(weights)
    hid = lm.nhid

    def bn(s: torch.Tensor) -> torch.Tensor:
        if not lm.batchnorm:
            return s
        return F.batch_norm(s, lm.bn_mean, lm.bn_var, None, None, lm.training, BN_MOMENTUM,
                            BN_EPS)

    x = reference_embed(lm.embedding, tokens, masks)  # (T, B, H)
    mask_x = masks.x if masks is not None else None
    mask_h = masks.h if masks is not None else None
    shared_matmul = lm.sharing != "edge-op" and not matmul_per_op  # DARTS: one per node
    outputs = []
    for t in range(tokens.size(0)):
        x_t = x[t] * mask_x if mask_x is not None else x[t]
        h_in = hidden * mask_h if mask_h is not None else hidden
        c0, h0 = torch.split(torch.cat([x_t, h_in], dim=-1).mm(lm.w0), hid, dim=-1)
        s0 = bn(hidden + c0.sigmoid() * (h0.tanh() - hidden))
        states = s0.unsqueeze(0)  # (j, B, H)
        for j in range(1, lm.n_nodes + 1):
            r0 = alpha_row(j, 0)
            masked = states * mask_h if mask_h is not None else states
            s = torch.zeros_like(s0)
            for op_index, op in enumerate(lm.ops):
                if op_index == 0 or not shared_matmul:
                    ch = _node_matmul(lm, masked, j, op_index)  # (j, B, 2H)
                c, h = torch.split(ch, hid, dim=-1)
                unweighted = states + c.sigmoid() * (ACTIVATIONS[op](h) - states)
                s = s + torch.sum(weights[r0 : r0 + j, op_index, None, None] * unweighted, dim=0)
            states = torch.cat([states, bn(s).unsqueeze(0)], 0)
        hidden = torch.mean(states[1:], dim=0)
        outputs.append(hidden)
    return reference_decode(torch.stack(outputs), masks, lm.embedding, lm.decoder_bias)
