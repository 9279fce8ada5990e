"""Shared inputs: the 32 architectures of Space(2) and a small ground truth over them."""

from __future__ import annotations

import numpy as np
import pytest

from naseval.analysis import GroundTruth
from naseval.space import Space


@pytest.fixture(scope="session")
def space2_architectures() -> list[str]:
    return [str(a) for a in Space(2)]


@pytest.fixture(scope="session")
def ground_truth(space2_architectures: list[str]) -> GroundTruth:
    """Architecture i has mean validation ppl 60 + i / 10 (so index 0 is the true best)."""
    offsets = np.array([-0.2, 0.0, 0.2])  # three training seeds, spread symmetric about 0
    valid = [tuple(60.0 + i / 10 + offsets) for i in range(len(space2_architectures))]
    test = [tuple(58.0 + i / 10 + offsets[::-1]) for i in range(len(space2_architectures))]
    return GroundTruth(tuple(space2_architectures), (0, 1, 2), tuple(valid), tuple(test))
