"""The sharing-amount study (Figure 5) on Space(3) with nodes 1 and 2 fixed."""

from __future__ import annotations

import json
import math

import pytest
from scipy import stats as scipy_stats

from naseval.analysis import (
    AnalysisError,
    SharingStudy,
    sharing_count,
    sharing_study,
    sharing_table,
)
from naseval.space import Architecture, Space

FIXED = Architecture.parse("tanh:0 relu:1")
SPACE = Space(3, fixed=FIXED)


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("tanh:0 relu:1 sigmoid:0", 0),  # reads s0: W0 only
        ("tanh:0 relu:1 sigmoid:1", 1),  # reads s1: W1 (and W0)
        ("tanh:0 relu:1 sigmoid:2", 2),  # reads s2, which reads s1: W2 and W1
        ("tanh:0 tanh:0 identity:2", 1),  # s2 reads s0 here, so only W2
    ],
)
def test_sharing_count_from_ancestors(text: str, count: int) -> None:
    assert sharing_count(text, n_fixed=2) == count


def test_the_space_has_four_architectures_per_count() -> None:
    counts = [sharing_count(a, 2) for a in SPACE]
    assert SPACE.size == 12 and sorted(counts) == [0] * 4 + [1] * 4 + [2] * 4


def _scores_by_count(offset: float) -> dict[str, float]:
    # More sharing -> lower WS ppl -> better rank; within a count, by op order.
    return {str(a): 300.0 - 10.0 * sharing_count(a, 2) + offset * i for i, a in enumerate(SPACE)}


@pytest.fixture(scope="module")
def study() -> SharingStudy:
    return sharing_study({0: _scores_by_count(0.1), 1: _scores_by_count(0.2)}, FIXED)


def test_mean_rank_per_count_by_hand(study: SharingStudy) -> None:
    # Count 2 takes ranks 1-4, count 1 ranks 5-8, count 0 ranks 9-12 in both seeds.
    assert [(g.count, g.mean_rank) for g in study.groups] == [(0, 10.5), (1, 6.5), (2, 2.5)]
    assert study.groups[2].std_rank == pytest.approx(math.sqrt(5 / 3))
    assert study.seeds == (0, 1) and len(study.architectures) == 12


def test_count_rank_correlation_by_hand_and_scipy(study: SharingStudy) -> None:
    # 66 pairs; 18 tied in count; the 48 others all discordant: tau_b = -48 / sqrt(48 * 66).
    assert study.kendall_tau == pytest.approx(-48 / math.sqrt(48 * 66))
    expected = scipy_stats.spearmanr(study.shared_counts, study.mean_rank)
    assert study.spearman_rho == pytest.approx(expected.statistic)
    assert study.spearman_p == pytest.approx(expected.pvalue)
    assert study.spearman_rho < -0.8


def test_json_round_trip(study: SharingStudy) -> None:
    assert SharingStudy.from_dict(json.loads(json.dumps(study.to_dict(), allow_nan=False))) == study


def test_table_groups_by_count(study: SharingStudy) -> None:
    table = sharing_table(study)
    assert [row[:3] for row in table.rows] == [
        ("0", "4", "10.50 ± 1.29"),
        ("1", "4", "6.50 ± 1.29"),
        ("2", "4", "2.50 ± 1.29"),
    ]
    assert table.rows[2][3] == "identity:2, sigmoid:2, tanh:2, relu:2"
    assert "W1, W2" in table.notes[0]


def test_architectures_outside_the_prefix_raise() -> None:
    scores = {"tanh:0 relu:1 tanh:0": 1.0, "relu:0 relu:1 tanh:2": 2.0}
    with pytest.raises(
        AnalysisError, match="relu:0 relu:1 tanh:2 does not extend the fixed prefix"
    ):
        sharing_study({0: scores}, FIXED)


def test_no_variation_in_sharing_raises() -> None:
    scores = {"tanh:0 relu:1 tanh:0": 1.0, "tanh:0 relu:1 relu:0": 2.0}
    with pytest.raises(AnalysisError, match="every architecture shares 0"):
        sharing_study({0: scores}, "tanh:0 relu:1")


def test_a_flat_ws_ranking_raises() -> None:
    scores = {str(a): 300.0 for a in SPACE}
    with pytest.raises(AnalysisError, match="WS scores every architecture the same"):
        sharing_study({0: scores}, FIXED)


def test_lists_aligned_with_an_architecture_list() -> None:
    architectures = [str(a) for a in SPACE]
    by_map = sharing_study({0: _scores_by_count(0.1)}, FIXED)
    by_list = sharing_study(
        {0: [_scores_by_count(0.1)[a] for a in architectures]}, FIXED, architectures=architectures
    )
    assert by_list == by_map
