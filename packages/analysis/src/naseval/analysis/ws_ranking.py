"""How well does weight sharing rank architectures? The paper's Kendall tau study (Figure 4).

For each WS seed, the supernet's validation perplexity of every architecture is compared with
the ground-truth score (mean validation perplexity over training seeds) of the SAME
architectures. Runs are then picked the way the paper picks them for Figure 4: the best and the
worst seed by tau, and the "average" seed, whose tau is closest to the mean tau.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from naseval.analysis._serial import from_jsonable, to_jsonable
from naseval.analysis.errors import AnalysisError
from naseval.analysis.ground_truth import GroundTruth, canonical_architecture
from naseval.analysis.ranking import (
    kendall_tau,
    rank_changes,
    score_vector,
    spearman_rho,
    top_k_overlap,
    true_rank_of_ws_top1,
)
from naseval.analysis.stats import DEFAULT_RESAMPLES, Interval, bootstrap_mean_ci, sample_std

PAPER_MEAN_TAU = -0.004
"""Mean Kendall tau over WS seeds the paper reports for the 2-node space."""

WSScores = Mapping[Any, Mapping[str, float] | Sequence[float]]
"""Per WS seed (int, or its str from JSON): {architecture text: WS validation ppl}, or a list of
WS validation ppl aligned with an `architectures` list given alongside."""


@dataclass(frozen=True)
class SeedRanking:
    """The WS ranking of one WS seed against the ground truth."""

    seed: int  # the WS (supernet training) seed
    ws_scores: tuple[float, ...]  # WS validation ppl, aligned with WSRankingStudy.architectures
    kendall_tau: float  # tau-b between true and WS scores
    kendall_p: float  # two-sided p-value of tau (scipy), H0: no association
    spearman_rho: float  # Spearman rho between true and WS scores
    top_k_overlap: float  # fraction of the true top-k also in the WS top-k
    true_rank_of_ws_top1: int  # true rank (1 = best) of the architecture WS ranks first
    rank_changes: tuple[int, ...]  # per architecture, |true position - WS position|
    mean_rank_change: float  # mean of rank_changes


@dataclass(frozen=True)
class WSRankingStudy:
    """Kendall tau of WS rankings over seeds, and the runs Figure 4 shows."""

    architectures: tuple[str, ...]  # the architectures ranked, in input order
    true_scores: tuple[float, ...]  # ground-truth score per architecture (mean valid ppl)
    k: int  # the k of top-k overlap (the k asked for, at most the number of architectures)
    seeds: tuple[SeedRanking, ...]  # one per WS seed, in input order
    mean_tau: float  # mean Kendall tau over seeds
    std_tau: float | None  # sample std (ddof=1) of tau over seeds; None for one seed
    tau_ci: Interval  # bootstrap interval of the mean tau
    mean_rho: float  # mean Spearman rho over seeds
    std_rho: float | None  # sample std (ddof=1) of rho over seeds
    best_seed: int  # seed with the highest tau
    worst_seed: int  # seed with the lowest tau
    average_seed: int  # seed whose tau is closest to mean_tau (ties: the earlier seed)

    def seed_ranking(self, seed: int) -> SeedRanking:
        for ranking in self.seeds:
            if ranking.seed == seed:
                return ranking
        raise AnalysisError(
            f"no WS seed {seed} in this study (seeds: {[r.seed for r in self.seeds]})"
        )

    @property
    def taus(self) -> np.ndarray:
        return np.array([r.kendall_tau for r in self.seeds])

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = to_jsonable(self)
        return result

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WSRankingStudy:
        return from_jsonable(cls, data)


def aligned_ws_scores(
    ws_scores_by_seed: WSScores, architectures: Sequence[str] | None = None
) -> tuple[tuple[str, ...], dict[int, np.ndarray]]:
    """Per seed, WS scores as arrays over one architecture list shared by every seed.

    A seed's scores are a {architecture: ppl} map, or a list aligned with `architectures`.
    Without `architectures`, the first seed's order is used. Every seed must score exactly the
    same architectures; the message names the ones that differ.
    """
    if not isinstance(ws_scores_by_seed, Mapping) or not ws_scores_by_seed:
        raise AnalysisError("ws_scores_by_seed is empty: there is no WS seed to analyse")
    per_seed: dict[int, dict[str, float]] = {}
    for seed_key, scores in ws_scores_by_seed.items():
        seed = _seed(seed_key)
        if seed in per_seed:
            raise AnalysisError(f"WS seed {seed} appears twice")
        per_seed[seed] = _seed_scores(seed, scores, architectures)
    first = next(iter(per_seed.values()))
    order = tuple(canonical_architecture(a, "architectures") for a in (architectures or first))
    if len(set(order)) != len(order):
        raise AnalysisError("architectures lists an architecture twice")
    aligned = {}
    for seed, scores in per_seed.items():
        missing = [a for a in order if a not in scores]
        extra = [a for a in scores if a not in set(order)]
        if missing or extra:
            raise AnalysisError(
                f"WS seed {seed} scores a different set of architectures: "
                + (f"missing {', '.join(missing[:5])}; " if missing else "")
                + (f"extra {', '.join(extra[:5])}" if extra else "")
            )
        aligned[seed] = score_vector([scores[a] for a in order], f"WS scores of seed {seed}")
    return order, aligned


def _seed_scores(seed: int, scores: Any, architectures: Sequence[str] | None) -> dict[str, float]:
    if isinstance(scores, Mapping) and scores:
        return {canonical_architecture(a, f"WS seed {seed}"): v for a, v in scores.items()}
    if isinstance(scores, Sequence | np.ndarray) and not isinstance(scores, str) and len(scores):
        if architectures is None:
            raise AnalysisError(
                f"WS seed {seed} gives a list of scores: pass `architectures` to say whose"
            )
        if len(scores) != len(architectures):
            raise AnalysisError(
                f"WS seed {seed} has {len(scores)} scores for {len(architectures)} architectures"
            )
        return {
            canonical_architecture(a, f"architecture {i}"): v
            for i, (a, v) in enumerate(zip(architectures, scores))
        }
    raise AnalysisError(
        f"WS seed {seed}: expected a non-empty {{architecture: ppl}} map or list of scores"
    )


def _seed(key: Any) -> int:
    try:
        return int(key)
    except (TypeError, ValueError):
        raise AnalysisError(f"WS seed {key!r} is not an integer") from None


def rank_seed(seed: int, true_scores: np.ndarray, ws_scores: np.ndarray, k: int) -> SeedRanking:
    changes = rank_changes(true_scores, ws_scores)
    return SeedRanking(
        seed=seed,
        ws_scores=tuple(float(v) for v in ws_scores),
        kendall_tau=kendall_tau(true_scores, ws_scores),
        kendall_p=float(scipy_stats.kendalltau(true_scores, ws_scores).pvalue),
        spearman_rho=spearman_rho(true_scores, ws_scores),
        top_k_overlap=top_k_overlap(true_scores, ws_scores, k),
        true_rank_of_ws_top1=true_rank_of_ws_top1(true_scores, ws_scores),
        rank_changes=tuple(int(c) for c in changes),
        mean_rank_change=float(changes.mean()),
    )


def pick_best_worst_average(seeds: Sequence[int], taus: np.ndarray) -> tuple[int, int, int]:
    """Best and worst seed by tau, and the seed closest to the mean tau (first on ties)."""
    average = int(np.argmin(np.abs(taus - taus.mean())))
    return seeds[int(np.argmax(taus))], seeds[int(np.argmin(taus))], seeds[average]


def ws_ranking_study(
    ground_truth: GroundTruth | Mapping[str, float],
    ws_scores_by_seed: WSScores,
    *,
    architectures: Sequence[str] | None = None,
    k: int = 5,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    bootstrap_seed: int = 0,
) -> WSRankingStudy:
    """Compare the WS ranking of every seed with the ground truth.

    `ground_truth`: a GroundTruth (score = mean validation ppl over training seeds) or a map
    architecture text -> true score. `ws_scores_by_seed`: {seed: {architecture text: WS ppl}},
    or {seed: [WS ppl, ...]} aligned with `architectures`; every seed scores the same
    architectures, all of which must be in the ground truth.
    """
    architectures, aligned = aligned_ws_scores(ws_scores_by_seed, architectures)
    true_scores = _true_scores(ground_truth, architectures)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise AnalysisError(f"k must be a positive integer, got {k!r}")
    # A tiny space (a smoke test of 4 architectures) still gets a top-k: all of it.
    k = min(k, len(architectures))
    rankings = tuple(rank_seed(s, true_scores, v, k) for s, v in aligned.items())
    taus = np.array([r.kendall_tau for r in rankings])
    rhos = np.array([r.spearman_rho for r in rankings])
    seeds = [r.seed for r in rankings]
    best, worst, average = pick_best_worst_average(seeds, taus)
    return WSRankingStudy(
        architectures=architectures,
        true_scores=tuple(float(v) for v in true_scores),
        k=k,
        seeds=rankings,
        mean_tau=float(taus.mean()),
        std_tau=sample_std(taus),
        tau_ci=bootstrap_mean_ci(
            taus,
            confidence=confidence,
            n_resamples=n_resamples,
            seed=bootstrap_seed,
            name="Kendall tau over seeds",
        ),
        mean_rho=float(rhos.mean()),
        std_rho=sample_std(rhos),
        best_seed=best,
        worst_seed=worst,
        average_seed=average,
    )


def _true_scores(
    ground_truth: GroundTruth | Mapping[str, float], architectures: Sequence[str]
) -> np.ndarray:
    if isinstance(ground_truth, GroundTruth):
        return ground_truth.scores_for(architectures)
    if not isinstance(ground_truth, Mapping) or not ground_truth:
        raise AnalysisError(
            "ground_truth must be a GroundTruth or a non-empty {architecture: score} map"
        )
    truth = {canonical_architecture(a, "ground truth"): v for a, v in ground_truth.items()}
    missing = [a for a in architectures if a not in truth]
    if missing:
        raise AnalysisError(
            f"{len(missing)} architecture(s) missing from the ground truth: {', '.join(missing[:5])}"
        )
    return score_vector([truth[a] for a in architectures], "ground-truth scores")
