"""Variational (locked) dropout masks, as the AWD-LSTM regularisers of DARTS use them."""

from __future__ import annotations

import torch


def locked_mask(
    like: torch.Tensor, batch: int, features: int, p: float, generator: torch.Generator | None = None
) -> torch.Tensor | None:
    """A (batch, features) Bernoulli(1-p)/(1-p) mask shared by every timestep; None when p == 0.

    Broadcast it over time as mask[None] * x for x of shape (T, B, F). With batch = vocabulary
    size and features = 1 it is DARTS's embedding dropout: whole word rows kept or dropped.
    """
    if p <= 0.0:
        return None
    mask = torch.empty(batch, features, dtype=like.dtype, device=like.device)
    return mask.bernoulli_(1.0 - p, generator=generator) / (1.0 - p)
