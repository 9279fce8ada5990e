"""Rank correlation and rank comparison of two score vectors over the SAME architectures.

Every function takes `true_scores` and `ws_scores` (or two score vectors) where position i of
both is the same architecture: never lists of ids sorted by score. Scores are perplexities, so
LOWER is better and rank 1 is the best architecture.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from naseval.analysis.errors import AnalysisError
from naseval.analysis.stats import as_vector

Scores = Sequence[float] | np.ndarray


def score_vector(scores: Scores, name: str) -> np.ndarray:
    """`scores` as a finite 1-d float array; rankings cannot place NaN, so it raises on one."""
    array = as_vector(scores, name)
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise AnalysisError(
            f"{name} has a non-finite score at position {int(bad[0])} ({array[bad[0]]}); "
            "a ranking cannot place it"
        )
    return array


def score_pair(a: Scores, b: Scores, names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """Two score vectors over the same architectures: equal lengths, at least two each."""
    x, y = score_vector(a, names[0]), score_vector(b, names[1])
    if x.size != y.size:
        raise AnalysisError(
            f"{names[0]} has {x.size} scores but {names[1]} has {y.size}; both must score the "
            "same architectures in the same order"
        )
    if x.size < 2:
        raise AnalysisError(f"a rank correlation needs at least 2 architectures, got {x.size}")
    return x, y


def kendall_tau(true_scores: Scores, ws_scores: Scores) -> float:
    """Kendall tau-b between two score vectors over the same architectures (ties handled).

    tau_b = (concordant - discordant) / sqrt(pairs untied in true * pairs untied in ws).
    O(n^2) time, O(n) memory.
    """
    x, y = score_pair(true_scores, ws_scores, ("true_scores", "ws_scores"))
    balance = 0  # concordant minus discordant pairs
    untied_x = untied_y = 0
    for i in range(x.size - 1):
        sign_x = np.sign(x[i + 1 :] - x[i])
        sign_y = np.sign(y[i + 1 :] - y[i])
        balance += int(np.sum(sign_x * sign_y))
        untied_x += int(np.count_nonzero(sign_x))
        untied_y += int(np.count_nonzero(sign_y))
    _require_not_constant(untied_x, untied_y)
    return float(balance / np.sqrt(float(untied_x) * float(untied_y)))


def _require_not_constant(untied_x: int, untied_y: int) -> None:
    for name, untied in (("true_scores", untied_x), ("ws_scores", untied_y)):
        if untied == 0:
            raise AnalysisError(f"{name} are all equal: a rank correlation is undefined")


def average_ranks(scores: Scores) -> np.ndarray:
    """Rank of each score, 1 = lowest; tied scores share the mean of their ranks."""
    x = score_vector(scores, "scores")
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    starts = np.concatenate([[0], np.flatnonzero(np.diff(sorted_x)) + 1])
    ends = np.concatenate([starts[1:], [x.size]])
    ranks = np.empty(x.size)
    for start, end in zip(starts, ends):
        # Positions start+1..end (1-based) share their mean.
        ranks[order[start:end]] = (start + 1 + end) / 2.0
    return ranks


def spearman_rho(true_scores: Scores, ws_scores: Scores) -> float:
    """Spearman rho: Pearson correlation of the average ranks (ties handled)."""
    x, y = score_pair(true_scores, ws_scores, ("true_scores", "ws_scores"))
    rank_x, rank_y = average_ranks(x), average_ranks(y)
    dx, dy = rank_x - rank_x.mean(), rank_y - rank_y.mean()
    _require_not_constant(int(np.count_nonzero(dx)), int(np.count_nonzero(dy)))
    return float(np.sum(dx * dy) / np.sqrt(np.sum(dx * dx) * np.sum(dy * dy)))


def positions(scores: Scores) -> np.ndarray:
    """Ordinal position of each architecture, 1 = best; ties keep the input order.

    Positions are what Figure 4 draws: every architecture gets its own slot.
    """
    x = score_vector(scores, "scores")
    result = np.empty(x.size, dtype=int)
    result[np.argsort(x, kind="stable")] = np.arange(1, x.size + 1)
    return result


def rank_changes(true_scores: Scores, ws_scores: Scores) -> np.ndarray:
    """Per architecture, |position in the true ranking - position in the WS ranking| (Figure 4)."""
    x, y = score_pair(true_scores, ws_scores, ("true_scores", "ws_scores"))
    changes: np.ndarray = np.abs(positions(x) - positions(y))
    return changes


def top_k_overlap(true_scores: Scores, ws_scores: Scores, k: int) -> float:
    """Fraction of the true top-k that is also in the WS top-k (by position; ties by order)."""
    x, y = score_pair(true_scores, ws_scores, ("true_scores", "ws_scores"))
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= x.size:
        raise AnalysisError(f"k must be an integer in 1..{x.size}, got {k!r}")
    true_top = set(np.flatnonzero(positions(x) <= k).tolist())
    ws_top = set(np.flatnonzero(positions(y) <= k).tolist())
    return len(true_top & ws_top) / int(k)


def true_rank_of_ws_top1(true_scores: Scores, ws_scores: Scores) -> int:
    """True rank (1 = truly best) of the architecture weight sharing ranks first.

    Competition ranking: 1 + the number of architectures with a strictly better true score, so
    a tie with the true best counts as rank 1. A WS tie for first goes to the earlier one.
    """
    x, y = score_pair(true_scores, ws_scores, ("true_scores", "ws_scores"))
    ws_first = int(np.argmin(y))
    return 1 + int(np.sum(x < x[ws_first]))
