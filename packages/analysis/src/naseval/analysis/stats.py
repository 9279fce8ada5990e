"""Summaries over seeds, bootstrap intervals and the policy-versus-random tests.

Conventions used everywhere in naseval.analysis:

- Spread over seeds is the sample standard deviation, ddof = 1 (`STD_DDOF`): seeds are a sample
  of the runs one could have made, not the whole population. It is undefined for one seed
  (reported as None).
- Perplexity: lower is better. A non-finite value (NaN or inf: a diverged run) is dropped and
  counted (`n_dropped`), never silently averaged in.
- Bootstrap intervals are percentile intervals from a seeded numpy Generator, so the same input
  gives the same interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from naseval.analysis.errors import AnalysisError

STD_DDOF = 1
"""Delta degrees of freedom of every standard deviation over seeds."""

DEFAULT_RESAMPLES = 10_000
"""Bootstrap resamples: enough for a stable 95% percentile interval of a mean over 10 seeds."""


@dataclass(frozen=True)
class Summary:
    """Mean, spread and best of one metric over seeds."""

    mean: float  # arithmetic mean of the finite values
    std: float | None  # sample standard deviation (ddof=1); None when only one value is left
    best: float  # the lowest finite value (perplexity: lower is better)
    n: int  # finite values used
    n_dropped: int  # non-finite values (diverged runs) left out


@dataclass(frozen=True)
class Interval:
    """A bootstrap confidence interval."""

    low: float  # lower percentile bound
    high: float  # upper percentile bound
    confidence: float  # e.g. 0.95


@dataclass(frozen=True)
class RandomComparison:
    """One policy against the random baseline on one metric, over seeds."""

    policy: str  # policy name as given in the input
    metric: str  # "valid" or "test" perplexity
    n_policy: int  # finite policy values used
    n_random: int  # finite random values used
    paired: bool  # True when seed i of the policy was matched with seed i of random
    mean_difference: float  # mean(policy) - mean(random); negative means the policy is better
    difference_ci: Interval  # bootstrap interval of mean_difference
    mann_whitney_u: float  # U of the policy sample (scipy's convention: pairs policy > random)
    mann_whitney_p: float  # two-sided p-value of Mann-Whitney U
    wilcoxon_statistic: float | None  # signed-rank statistic; None when not paired
    wilcoxon_p: float | None  # two-sided p-value of Wilcoxon; None when not paired
    prob_policy_better: float  # P(policy ppl < random ppl) + P(tie)/2 over all pairs of runs


def as_vector(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    """`values` as a non-empty 1-d float array; raises naming `name` otherwise."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise AnalysisError(f"{name} must be a sequence of numbers, got {values!r}") from None
    if array.ndim != 1:
        raise AnalysisError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise AnalysisError(f"{name} is empty")
    return array


def finite_part(values: Sequence[float] | np.ndarray, name: str) -> tuple[np.ndarray, int]:
    """The finite values of `values`, and how many non-finite ones were dropped."""
    array = as_vector(values, name)
    keep = np.isfinite(array)
    if not keep.any():
        raise AnalysisError(f"all {array.size} values of {name} are NaN or infinite (diverged)")
    return array[keep], int(array.size - keep.sum())


def sample_std(values: np.ndarray) -> float | None:
    return float(np.std(values, ddof=STD_DDOF)) if values.size > STD_DDOF else None


def summarize(values: Sequence[float] | np.ndarray, name: str = "values") -> Summary:
    """Mean, sample std (ddof=1), lowest value and counts; non-finite values dropped and counted."""
    finite, dropped = finite_part(values, name)
    return Summary(
        mean=float(finite.mean()),
        std=sample_std(finite),
        best=float(finite.min()),
        n=int(finite.size),
        n_dropped=dropped,
    )


def format_mean_std(mean: float, std: float | None, digits: int = 2) -> str:
    """'63.29 ± 1.18'; just the mean when the spread is undefined (one seed)."""
    if std is None or not np.isfinite(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise AnalysisError(f"confidence must be in (0, 1), got {confidence}")


def _percentile_interval(samples: np.ndarray, confidence: float) -> Interval:
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(samples, [tail, 1.0 - tail])
    return Interval(low=float(low), high=float(high), confidence=confidence)


def _resampled_means(values: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    picks = rng.integers(0, values.size, size=(n_resamples, values.size))
    means: np.ndarray = values[picks].mean(axis=1)
    return means


def bootstrap_mean_ci(
    values: Sequence[float] | np.ndarray,
    *,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    name: str = "values",
) -> Interval:
    """Percentile bootstrap interval of the mean; non-finite values dropped first."""
    _check_confidence(confidence)
    finite, _ = finite_part(values, name)
    means = _resampled_means(finite, n_resamples, np.random.default_rng(seed))
    return _percentile_interval(means, confidence)


def bootstrap_mean_difference_ci(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    paired: bool,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap interval of mean(a) - mean(b).

    Paired: the per-seed differences are resampled together (a and b must have equal lengths;
    pairs with a non-finite side are dropped). Unpaired: each sample is resampled on its own.
    """
    _check_confidence(confidence)
    rng = np.random.default_rng(seed)
    if paired:
        differences = paired_differences(a, b)
        return _percentile_interval(_resampled_means(differences, n_resamples, rng), confidence)
    finite_a, _ = finite_part(a, "a")
    finite_b, _ = finite_part(b, "b")
    means_a = _resampled_means(finite_a, n_resamples, rng)
    means_b = _resampled_means(finite_b, n_resamples, rng)
    return _percentile_interval(means_a - means_b, confidence)


def finite_pairs(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The pairs (a_i, b_i) with both sides finite: a diverged run drops its whole pair."""
    array_a, array_b = as_vector(a, "a"), as_vector(b, "b")
    if array_a.size != array_b.size:
        raise AnalysisError(
            f"paired samples need equal lengths, got {array_a.size} and {array_b.size}"
        )
    keep = np.isfinite(array_a) & np.isfinite(array_b)
    if not keep.any():
        raise AnalysisError("no pair has finite values on both sides")
    return array_a[keep], array_b[keep]


def paired_differences(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray
) -> np.ndarray:
    """a - b per pair, dropping pairs where either side is not finite."""
    kept_a, kept_b = finite_pairs(a, b)
    differences: np.ndarray = kept_a - kept_b
    return differences


def prob_lower(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """P(A < B) + P(A = B)/2 over all pairs (a_i, b_j): how often a's run beats b's run.

    Equals 1 - U_a / (n_a n_b) for the Mann-Whitney U of sample a.
    """
    finite_a, _ = finite_part(a, "a")
    finite_b, _ = finite_part(b, "b")
    diff = finite_a[:, None] - finite_b[None, :]
    return float(((diff < 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


def mann_whitney(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray
) -> tuple[float, float]:
    """Two-sided Mann-Whitney U test: (U of sample a, p-value); non-finite values dropped."""
    finite_a, _ = finite_part(a, "a")
    finite_b, _ = finite_part(b, "b")
    if np.ptp(np.concatenate([finite_a, finite_b])) == 0:
        # Every value tied: no evidence either way (scipy would return NaN here).
        return float(finite_a.size * finite_b.size) / 2.0, 1.0
    result = scipy_stats.mannwhitneyu(finite_a, finite_b, alternative="two-sided")
    return float(result.statistic), float(result.pvalue)


def wilcoxon_signed_rank(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray
) -> tuple[float, float]:
    """Two-sided Wilcoxon signed-rank test on paired a - b: (statistic, p-value).

    Zero differences are dropped (Wilcoxon's convention); all differences zero gives (0, 1).
    """
    differences = paired_differences(a, b)
    if not np.any(differences != 0):
        return 0.0, 1.0
    result = scipy_stats.wilcoxon(differences, alternative="two-sided")
    return float(result.statistic), float(result.pvalue)


def compare_to_random(
    policy_values: Sequence[float] | np.ndarray,
    random_values: Sequence[float] | np.ndarray,
    *,
    policy: str = "policy",
    metric: str = "test",
    paired: bool = False,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> RandomComparison:
    """Is the policy better than random? All the tests the paper did not run, in one record.

    Paired means element i of both samples share a seed; then pairs with a diverged side are
    dropped together and the Wilcoxon signed-rank test is added.
    """
    if paired:
        policy_used, random_used = finite_pairs(policy_values, random_values)
    else:
        policy_used, _ = finite_part(policy_values, policy)
        random_used, _ = finite_part(random_values, "random")
    # Paired or not, this equals the mean of the per-seed differences when pairs are kept.
    mean_difference = float(policy_used.mean() - random_used.mean())
    u, u_p = mann_whitney(policy_used, random_used)
    w, w_p = wilcoxon_signed_rank(policy_used, random_used) if paired else (None, None)
    return RandomComparison(
        policy=policy,
        metric=metric,
        n_policy=int(policy_used.size),
        n_random=int(random_used.size),
        paired=paired,
        mean_difference=mean_difference,
        difference_ci=bootstrap_mean_difference_ci(
            policy_used,
            random_used,
            paired=paired,
            confidence=confidence,
            n_resamples=n_resamples,
            seed=seed,
        ),
        mann_whitney_u=u,
        mann_whitney_p=u_p,
        wilcoxon_statistic=w,
        wilcoxon_p=w_p,
        prob_policy_better=prob_lower(policy_used, random_used),
    )
