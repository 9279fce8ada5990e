"""Token streams as (rows, batch) tensors, and DARTS's variable-length BPTT windows."""

from __future__ import annotations

import numpy as np
import torch


def batchify(tokens: torch.Tensor, batch_size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Cut a 1-D token stream into `batch_size` contiguous columns: (rows, batch_size).

    Tokens that do not fill a whole row are dropped, as in the DARTS and AWD-LSTM code.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    rows = tokens.numel() // batch_size
    if rows < 2:
        raise ValueError(
            f"{tokens.numel()} tokens make fewer than 2 rows at batch size {batch_size}"
        )
    return tokens[: rows * batch_size].view(batch_size, rows).t().contiguous().to(device)


def get_batch(source: torch.Tensor, i: int, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs source[i : i+seq_len] (T, B) and next-token targets (T, B), T clipped at the end."""
    seq_len = min(seq_len, source.size(0) - 1 - i)
    if seq_len < 1:
        raise ValueError(f"no targets left at row {i} of {source.size(0)}")
    return source[i : i + seq_len], source[i + 1 : i + 1 + seq_len]


def sample_seq_len(rng: np.random.Generator, bptt: int, max_delta: int = 20) -> int:
    """DARTS's BPTT window: bptt w.p. 0.95 else bptt/2, jittered by N(0, 5), in [5, bptt+delta].

    The caller scales the learning rate by seq_len / bptt for the step, as DARTS does.
    """
    base = bptt if rng.random() < 0.95 else bptt / 2.0
    seq_len = max(5, int(rng.normal(base, 5)))
    return min(seq_len, bptt + max_delta)
