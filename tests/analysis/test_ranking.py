"""Kendall tau-b, Spearman rho, ranks, rank changes, top-k: hand answers and scipy cross-checks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from naseval.analysis import (
    AnalysisError,
    average_ranks,
    kendall_tau,
    positions,
    rank_changes,
    spearman_rho,
    top_k_overlap,
    true_rank_of_ws_top1,
)


def test_kendall_tau_one_swap_by_hand() -> None:
    # 6 pairs, only (2, 3) discordant: (5 - 1) / 6.
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)


def test_kendall_tau_b_with_ties_by_hand() -> None:
    # x ties pair (0,1), y ties pair (1,2); the other 4 pairs are concordant:
    # tau_b = 4 / sqrt((6 - 1) * (6 - 1)) = 0.8.
    assert kendall_tau([1, 1, 2, 3], [1, 2, 2, 3]) == pytest.approx(0.8)


def test_kendall_tau_extremes() -> None:
    scores = [63.1, 61.0, 64.2, 62.5]
    assert kendall_tau(scores, scores) == 1.0
    assert kendall_tau(scores, [-s for s in scores]) == -1.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=3, max_size=40))
def test_kendall_tau_and_spearman_match_scipy_with_ties(pairs: list[tuple[int, int]]) -> None:
    x, y = np.array(pairs, dtype=float).T
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return  # undefined; covered by test_constant_scores_raise
    assert kendall_tau(x, y) == pytest.approx(scipy_stats.kendalltau(x, y).statistic)
    assert spearman_rho(x, y) == pytest.approx(scipy_stats.spearmanr(x, y).statistic)


def test_spearman_one_swap_by_hand() -> None:
    # Rank differences 0, 1, 1, 0: rho = 1 - 6 * 2 / (4 * 15) = 0.8.
    assert spearman_rho([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)


def test_average_ranks_share_ties() -> None:
    assert average_ranks([10.0, 20.0, 20.0, 5.0]).tolist() == [2.0, 3.5, 3.5, 1.0]
    np.testing.assert_array_equal(
        average_ranks([3, 1, 3, 3, 2]), scipy_stats.rankdata([3, 1, 3, 3, 2])
    )


def test_positions_break_ties_by_input_order() -> None:
    assert positions([3.0, 1.0, 2.0]).tolist() == [3, 1, 2]
    assert positions([1.0, 1.0, 0.0]).tolist() == [2, 3, 1]


def test_rank_changes_of_a_reversal() -> None:
    assert rank_changes([1, 2, 3, 4], [4, 3, 2, 1]).tolist() == [3, 1, 1, 3]
    assert rank_changes([5, 6, 7], [50, 60, 70]).tolist() == [0, 0, 0]


def test_top_k_overlap() -> None:
    assert top_k_overlap([1, 2, 3, 4], [2, 1, 4, 3], k=2) == 1.0
    assert top_k_overlap([1, 2, 3, 4], [2, 1, 4, 3], k=1) == 0.0
    assert top_k_overlap([1, 2, 3, 4], [4, 3, 2, 1], k=3) == pytest.approx(2 / 3)
    with pytest.raises(AnalysisError, match="k must be an integer in 1..4"):
        top_k_overlap([1, 2, 3, 4], [1, 2, 3, 4], k=5)


def test_true_rank_of_ws_top1() -> None:
    assert true_rank_of_ws_top1([1, 2, 3, 4], [4, 3, 2, 1]) == 4
    assert true_rank_of_ws_top1([1, 2, 3, 4], [1, 2, 3, 4]) == 1
    # WS picks architecture 1, tied with the true best: rank 1.
    assert true_rank_of_ws_top1([1.0, 1.0, 2.0], [5.0, 0.0, 9.0]) == 1


def test_mismatched_lengths_raise() -> None:
    with pytest.raises(AnalysisError, match="true_scores has 3 scores but ws_scores has 2"):
        kendall_tau([1, 2, 3], [1, 2])


def test_nan_scores_raise_naming_the_position() -> None:
    with pytest.raises(AnalysisError, match="ws_scores has a non-finite score at position 1"):
        kendall_tau([1, 2, 3], [1, float("nan"), 3])


def test_constant_scores_raise() -> None:
    with pytest.raises(AnalysisError, match="ws_scores are all equal"):
        kendall_tau([1, 2, 3], [5, 5, 5])
    with pytest.raises(AnalysisError, match="true_scores are all equal"):
        spearman_rho([2, 2, 2], [1, 2, 3])


def test_too_few_and_empty() -> None:
    with pytest.raises(AnalysisError, match="at least 2"):
        kendall_tau([1.0], [1.0])
    with pytest.raises(AnalysisError, match="empty"):
        kendall_tau([], [])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(50, 5000), min_size=2, max_size=30, unique=True),
    st.randoms(use_true_random=False),
)
def test_tau_properties(scores: list[int], rnd: object) -> None:
    shuffled = list(scores)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    tau = kendall_tau(scores, shuffled)
    assert -1.0 <= tau <= 1.0
    assert kendall_tau(shuffled, scores) == pytest.approx(tau)  # symmetric
    # Only the order matters: a monotone transform of either side leaves tau unchanged.
    assert kendall_tau(np.array(scores) ** 3, 2.0 * np.array(shuffled) + 1.0) == pytest.approx(tau)
    changes = rank_changes(scores, shuffled)
    assert changes.sum() % 2 == 0 and (changes == 0).all() == (tau == 1.0)
