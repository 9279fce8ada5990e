"""Summaries, bootstrap intervals and the policy-vs-random tests: known answers and scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from naseval.analysis import (
    STD_DDOF,
    AnalysisError,
    bootstrap_mean_ci,
    bootstrap_mean_difference_ci,
    compare_to_random,
    format_mean_std,
    mann_whitney,
    prob_lower,
    summarize,
    wilcoxon_signed_rank,
)


def test_summary_of_four_values_by_hand() -> None:
    summary = summarize([4.0, 1.0, 3.0, 2.0])
    assert summary.mean == 2.5
    # Sample variance: (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3.
    assert summary.std == pytest.approx(math.sqrt(5 / 3))
    assert (summary.best, summary.n, summary.n_dropped) == (1.0, 4, 0)
    assert STD_DDOF == 1


def test_non_finite_values_are_dropped_and_counted() -> None:
    summary = summarize([1.0, float("nan"), 3.0, float("inf")])
    assert (summary.mean, summary.n, summary.n_dropped) == (2.0, 2, 2)
    assert summary.std == pytest.approx(math.sqrt(2.0))


def test_one_value_has_no_spread() -> None:
    summary = summarize([62.5])
    assert summary.std is None and summary.mean == 62.5


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([], "empty"),
        ([float("nan")] * 3, "all 3 values"),
        ([[1.0, 2.0]], "one-dimensional"),
        (["a"], "numbers"),
    ],
)
def test_bad_values_raise_naming_the_problem(values: list, message: str) -> None:
    with pytest.raises(AnalysisError, match=message):
        summarize(values, "valid ppl")


def test_analysis_error_is_a_value_error() -> None:
    assert issubclass(AnalysisError, ValueError)


@pytest.mark.parametrize(
    ("mean", "std", "text"),
    [
        (63.29, 1.18, "63.29 ± 1.18"),
        (62.5, 0.86, "62.50 ± 0.86"),
        (61.914, 0.5, "61.91 ± 0.50"),
        (60.0, None, "60.00"),
        (59.996, 0.004, "60.00 ± 0.00"),
    ],
)
def test_format_mean_std(mean: float, std: float | None, text: str) -> None:
    assert format_mean_std(mean, std) == text


def test_bootstrap_of_a_constant_is_that_constant() -> None:
    interval = bootstrap_mean_ci([7.0] * 6)
    assert (interval.low, interval.high, interval.confidence) == (7.0, 7.0, 0.95)


def test_bootstrap_of_two_points_by_hand() -> None:
    # Resampling {0, 1} twice gives means 0, 0.5, 1 with chances 1/4, 1/2, 1/4: the 2.5% and
    # 97.5% quantiles are 0 and 1.
    interval = bootstrap_mean_ci([0.0, 1.0], n_resamples=20_000)
    assert (interval.low, interval.high) == (0.0, 1.0)


def test_bootstrap_is_deterministic_and_agrees_with_scipy() -> None:
    values = np.random.default_rng(3).normal(62.0, 1.0, size=10)
    ours = bootstrap_mean_ci(values, seed=11)
    assert ours == bootstrap_mean_ci(values, seed=11)
    theirs = scipy_stats.bootstrap(
        (values,),
        np.mean,
        method="percentile",
        n_resamples=20_000,
        random_state=np.random.default_rng(5),
    ).confidence_interval
    # Two Monte Carlo estimates of the same interval: they agree to a few hundredths.
    assert ours.low == pytest.approx(theirs.low, abs=0.05)
    assert ours.high == pytest.approx(theirs.high, abs=0.05)
    assert ours.low < values.mean() < ours.high


def test_bootstrap_difference_paired_resamples_the_differences() -> None:
    # Every paired difference is exactly -1, so every resampled mean difference is -1.
    interval = bootstrap_mean_difference_ci([1.0, 5.0, 9.0], [2.0, 6.0, 10.0], paired=True)
    assert (interval.low, interval.high) == (-1.0, -1.0)
    unpaired = bootstrap_mean_difference_ci([1.0, 5.0, 9.0], [2.0, 6.0, 10.0], paired=False)
    assert unpaired.low < -1.0 < unpaired.high


def test_bootstrap_rejects_a_bad_confidence() -> None:
    with pytest.raises(AnalysisError, match="confidence"):
        bootstrap_mean_ci([1.0, 2.0], confidence=95)


def test_probability_of_being_better_by_hand() -> None:
    # Pairs (1,2) (1,3) (2,3) are wins for a, (2,2) a tie: (3 + 0.5) / 4.
    assert prob_lower([1.0, 2.0], [2.0, 3.0]) == 0.875
    assert prob_lower([5.0], [1.0, 2.0]) == 0.0


def test_mann_whitney_known_answers() -> None:
    # Fully separated samples of 3: exact two-sided p = 2 / C(6, 3) = 0.1.
    u, p = mann_whitney([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert (u, p) == (0.0, pytest.approx(0.1))
    # U of a = pairs with a > b, ties half: 1 vs {2,3}: 0; each 2: 0.5 (tie with 2) -> 1.0.
    u, _ = mann_whitney([1.0, 2.0, 2.0], [2.0, 3.0])
    assert u == 1.0
    assert mann_whitney([2.0, 2.0], [2.0]) == (1.0, 1.0)


def test_mann_whitney_u_and_probability_agree_with_scipy() -> None:
    rng = np.random.default_rng(0)
    a, b = np.round(rng.normal(62, 1, 10), 1), np.round(rng.normal(62.5, 1, 10), 1)
    u, p = mann_whitney(a, b)
    expected = scipy_stats.mannwhitneyu(a, b, alternative="two-sided")
    assert (u, p) == (pytest.approx(expected.statistic), pytest.approx(expected.pvalue))
    assert prob_lower(a, b) == pytest.approx(1 - u / (a.size * b.size))


def test_wilcoxon_known_answers() -> None:
    # Differences 1..5, all positive: W = 0, exact two-sided p = 2 / 2^5.
    assert wilcoxon_signed_rank([2.0, 3.0, 4.0, 5.0, 6.0], [1.0] * 5) == (
        0.0,
        pytest.approx(0.0625),
    )
    # Differences 1, -2, 3, 4, 5: W- = 2; P(W <= 2) = |{}, {1}, {2}| / 32, doubled: 6/32.
    w, p = wilcoxon_signed_rank([2.0, 0.0, 4.0, 5.0, 6.0], [1.0, 2.0, 1.0, 1.0, 1.0])
    assert (w, p) == (2.0, pytest.approx(0.1875))
    assert wilcoxon_signed_rank([1.0, 2.0], [1.0, 2.0]) == (0.0, 1.0)


def test_wilcoxon_agrees_with_scipy_and_rejects_unequal_lengths() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(62, 1, 10), rng.normal(62.5, 1, 10)
    expected = scipy_stats.wilcoxon(a - b)
    assert wilcoxon_signed_rank(a, b) == (
        pytest.approx(expected.statistic),
        pytest.approx(expected.pvalue),
    )
    with pytest.raises(AnalysisError, match="equal lengths, got 3 and 2"):
        wilcoxon_signed_rank([1.0, 2.0, 3.0], [1.0, 2.0])


def test_compare_to_random_unpaired() -> None:
    result = compare_to_random(
        [60.0, 61.0, 62.0], [63.0, 64.0, 65.0], policy="darts", metric="test"
    )
    assert (result.policy, result.metric, result.paired) == ("darts", "test", False)
    assert result.mean_difference == -3.0
    assert result.prob_policy_better == 1.0
    assert (result.mann_whitney_u, result.mann_whitney_p) == (0.0, pytest.approx(0.1))
    assert result.wilcoxon_statistic is None and result.wilcoxon_p is None
    assert result.difference_ci.low <= -3.0 <= result.difference_ci.high


def test_compare_to_random_paired_drops_diverged_pairs_together() -> None:
    nan = float("nan")
    result = compare_to_random(
        [60.0, nan, 61.0, 62.0, 63.0, 64.0], [61.0, 60.0, 62.0, 63.0, 64.0, nan], paired=True
    )
    # Pairs 2 and 6 are dropped; the four left all differ by exactly -1.
    assert (result.n_policy, result.n_random) == (4, 4)
    assert result.mean_difference == -1.0
    assert (result.difference_ci.low, result.difference_ci.high) == (-1.0, -1.0)
    assert (result.wilcoxon_statistic, result.wilcoxon_p) == (0.0, pytest.approx(0.125))
