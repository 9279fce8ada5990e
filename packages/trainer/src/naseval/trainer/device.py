"""Device selection: "auto" means CUDA when present, else CPU."""

from __future__ import annotations

import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """"auto" -> cuda if available else cpu; anything else is passed to torch.device.

    Asking for CUDA on a machine without it is an error, not a silent fallback.
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available here")
    return resolved


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels, so wall-clock timings measure the work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
