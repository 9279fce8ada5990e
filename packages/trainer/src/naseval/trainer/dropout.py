"""The AWD-LSTM regularisers used by DARTS: variational (locked) masks and embedding dropout."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def locked_mask(
    like: torch.Tensor, batch: int, features: int, p: float, generator: torch.Generator | None = None
) -> torch.Tensor | None:
    """A (batch, features) Bernoulli(1-p)/(1-p) mask shared by every timestep; None when p == 0.

    Broadcast it over time as mask[None] * x for x of shape (T, B, F).
    """
    if p <= 0.0:
        return None
    mask = torch.empty(batch, features, dtype=like.dtype, device=like.device)
    return mask.bernoulli_(1.0 - p, generator=generator) / (1.0 - p)


def embedded_dropout(
    weight: torch.Tensor, words: torch.Tensor, p: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Look up `words` (T, B) in `weight` (V, E) with whole rows (words) dropped w.p. p."""
    if p > 0.0:
        keep = torch.empty(weight.size(0), 1, dtype=weight.dtype, device=weight.device)
        keep = keep.bernoulli_(1.0 - p, generator=generator) / (1.0 - p)
        weight = weight * keep
    return F.embedding(words, weight)
