"""Atomic checkpoint files: write to a temporary name in the same folder, then os.replace.

A reader therefore sees either the previous complete checkpoint or the new complete one, even
when the writer is killed (SIGKILL, power loss before the rename) half way through.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_NAME = "checkpoint.pt"


def save_checkpoint(folder: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write `state` (tensors, numbers, strings, lists, dicts) to folder/checkpoint.pt."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / CHECKPOINT_NAME
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{CHECKPOINT_NAME}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, target)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return target


def load_checkpoint(folder: str | os.PathLike[str],
                    device: torch.device | str = "cpu") -> dict[str, Any] | None:
    """The state saved in folder/checkpoint.pt, tensors on `device`; None when there is none."""
    target = Path(folder) / CHECKPOINT_NAME
    if not target.is_file():
        return None
    try:
        state: dict[str, Any] = torch.load(target, map_location=device, weights_only=True)
    except Exception as exc:  # a truncated or foreign file: say which, do not guess
        raise ValueError(f"checkpoint {target} cannot be read ({exc}); delete it to start over") \
            from exc
    return state
