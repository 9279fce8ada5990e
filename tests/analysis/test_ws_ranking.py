"""The WS-ranking study: tau per seed, best/worst/average picks, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats as scipy_stats

from naseval.analysis import (
    AnalysisError,
    GroundTruth,
    WSRankingStudy,
    ws_ranking_study,
    ws_ranking_table,
)


def _ws(architectures: list[str], scores: np.ndarray) -> dict[str, float]:
    return {a: float(s) for a, s in zip(architectures, scores)}


@pytest.fixture(scope="module")
def study(ground_truth: GroundTruth, space2_architectures: list[str]) -> WSRankingStudy:
    n = len(space2_architectures)
    true = ground_truth.scores()
    rng = np.random.default_rng(7)
    ws = {
        10: _ws(space2_architectures, true),  # perfect: tau = 1
        11: _ws(space2_architectures, -true),  # reversed: tau = -1
        12: _ws(space2_architectures, rng.permutation(n).astype(float)),
        13: _ws(space2_architectures, rng.permutation(n).astype(float)),
    }
    return ws_ranking_study(ground_truth, ws, k=5)


def test_perfect_and_reversed_seeds(study: WSRankingStudy) -> None:
    perfect, reversed_ = study.seed_ranking(10), study.seed_ranking(11)
    assert (perfect.kendall_tau, perfect.spearman_rho, perfect.top_k_overlap) == (1.0, 1.0, 1.0)
    assert perfect.true_rank_of_ws_top1 == 1 and perfect.mean_rank_change == 0.0
    assert (reversed_.kendall_tau, reversed_.top_k_overlap, reversed_.true_rank_of_ws_top1) == (
        -1.0,
        0.0,
        32,
    )
    # Reversal of 32 positions: |i - (33 - i)| averages to 16.
    assert reversed_.mean_rank_change == 16.0


def test_per_seed_values_match_scipy(study: WSRankingStudy) -> None:
    for ranking in study.seeds:
        expected = scipy_stats.kendalltau(study.true_scores, ranking.ws_scores)
        assert ranking.kendall_tau == pytest.approx(expected.statistic)
        assert ranking.kendall_p == pytest.approx(expected.pvalue)


def test_best_worst_and_average_seed(study: WSRankingStudy) -> None:
    taus = study.taus
    assert study.best_seed == 10 and study.worst_seed == 11
    assert study.mean_tau == pytest.approx(taus.mean())
    assert study.std_tau == pytest.approx(np.std(taus, ddof=1))
    closest = [12, 13][int(np.argmin(np.abs(taus[2:] - taus.mean())))]
    assert study.average_seed == closest
    assert study.tau_ci.low <= study.mean_tau <= study.tau_ci.high


def test_json_round_trip(study: WSRankingStudy) -> None:
    text = json.dumps(study.to_dict(), allow_nan=False)
    assert WSRankingStudy.from_dict(json.loads(text)) == study


def test_seed_keys_from_json_are_accepted(
    ground_truth: GroundTruth, space2_architectures: list[str]
) -> None:
    ws = {"3": _ws(space2_architectures, ground_truth.scores())}
    assert ws_ranking_study(ground_truth, ws).seeds[0].seed == 3


def test_a_true_score_map_works_like_a_ground_truth(
    ground_truth: GroundTruth, space2_architectures: list[str]
) -> None:
    truth = dict(zip(space2_architectures, ground_truth.scores()))
    ws = {0: _ws(space2_architectures, -ground_truth.scores())}
    assert ws_ranking_study(truth, ws).mean_tau == -1.0


def test_table_has_a_row_per_seed_and_a_mean_row(study: WSRankingStudy) -> None:
    table = ws_ranking_table(study)
    assert [row[0] for row in table.rows] == ["10", "11", "12", "13", "MEAN"]
    assert table.rows[0][1:5] == ("1.000", "1.000", "1.00", "1")
    assert table.rows[-1][1] == f"{study.mean_tau:.3f} ± {study.std_tau:.3f}"
    assert "KENDALL τ" in table.columns and "TOP-5 OVERLAP" in table.columns


def test_missing_from_ground_truth(ground_truth: GroundTruth) -> None:
    ws = {0: {"tanh:0 relu:1": 300.0, "tanh:0 tanh:1 tanh:2": 310.0}}
    with pytest.raises(AnalysisError, match="missing from the ground truth: tanh:0 tanh:1 tanh:2"):
        ws_ranking_study(ground_truth, ws)


def test_seeds_must_score_the_same_architectures(ground_truth: GroundTruth) -> None:
    ws = {
        0: {"tanh:0 relu:1": 300.0, "tanh:0 tanh:1": 310.0},
        1: {"tanh:0 relu:1": 300.0, "relu:0 tanh:1": 310.0},
    }
    with pytest.raises(
        AnalysisError, match="WS seed 1 .*missing tanh:0 tanh:1; extra relu:0 tanh:1"
    ):
        ws_ranking_study(ground_truth, ws)


def test_empty_and_nan_inputs(ground_truth: GroundTruth) -> None:
    with pytest.raises(AnalysisError, match="no WS seed"):
        ws_ranking_study(ground_truth, {})
    with pytest.raises(AnalysisError, match="non-finite score"):
        ws_ranking_study(ground_truth, {0: {"tanh:0 relu:1": float("nan"), "tanh:0 tanh:1": 1.0}})


def test_lists_aligned_with_an_architecture_list(
    ground_truth: GroundTruth, space2_architectures: list[str]
) -> None:
    scores = list(-ground_truth.scores())
    study = ws_ranking_study(ground_truth, {0: scores}, architectures=space2_architectures)
    assert study.architectures == tuple(space2_architectures) and study.mean_tau == -1.0
    with pytest.raises(AnalysisError, match="pass `architectures`"):
        ws_ranking_study(ground_truth, {0: scores})
    with pytest.raises(AnalysisError, match="WS seed 0 has 31 scores for 32 architectures"):
        ws_ranking_study(ground_truth, {0: scores[:31]}, architectures=space2_architectures)


def test_k_is_capped_at_the_number_of_architectures(ground_truth: GroundTruth) -> None:
    ws = {0: {"tanh:0 relu:1": 300.0, "tanh:0 tanh:1": 310.0, "relu:0 relu:1": 305.0}}
    assert ws_ranking_study(ground_truth, ws, k=5).k == 3
    with pytest.raises(AnalysisError, match="k must be a positive integer, got 0"):
        ws_ranking_study(ground_truth, ws, k=0)
