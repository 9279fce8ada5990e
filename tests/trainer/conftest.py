"""Shared fixtures for the trainer tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def ptb_dir() -> Path:
    """The real PTB folder from NASEVAL_DATA_DIR; skips the test when it is unset."""
    value = os.environ.get("NASEVAL_DATA_DIR")
    if not value:
        pytest.skip("NASEVAL_DATA_DIR is not set (point it at a folder with the PTB files)")
    return Path(value)
