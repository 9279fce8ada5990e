"""The exhaustive ground truth: scores are mean validation ppl over training seeds."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from naseval.analysis import AnalysisError, GroundTruth, ground_truth_table

NAN = float("nan")


def test_score_is_the_mean_over_seeds(ground_truth: GroundTruth) -> None:
    scores = ground_truth.scores()
    assert scores[0] == pytest.approx(60.0) and scores[31] == pytest.approx(63.1)
    assert ground_truth.best_architecture == ground_truth.architectures[0]
    summary = ground_truth.summaries("valid")[0]
    assert summary.std == pytest.approx(0.2) and summary.best == pytest.approx(59.8)


def test_from_records_aligns_seeds_and_canonicalises() -> None:
    records = [
        {"architecture": "tanh:0, relu:1", "seed": 1, "valid_ppl": 61.0, "test_ppl": 59.0},
        {"architecture": "tanh:0 relu:1", "seed": 0, "valid_ppl": 63.0, "test_ppl": 60.0},
        {"architecture": "relu:0 relu:1", "seed": 0, "valid_ppl": 70.0, "test_ppl": None},
        {"architecture": "relu:0 relu:1", "seed": 1, "valid_ppl": 72.0, "test_ppl": 68.0},
    ]
    truth = GroundTruth.from_records(records)
    assert truth.architectures == ("tanh:0 relu:1", "relu:0 relu:1")
    assert truth.seeds == (0, 1)
    assert truth.valid[0] == (63.0, 61.0)
    assert truth.scores().tolist() == [62.0, 71.0]
    # The diverged test run is dropped from the mean and counted.
    assert truth.scores("test")[1] == 68.0
    assert truth.summaries("test")[1].n_dropped == 1


def test_json_round_trip_keeps_nan(ground_truth: GroundTruth) -> None:
    truth = GroundTruth(("tanh:0",), (0, 1), ((60.0, NAN),), ((58.0, 59.0),))
    text = json.dumps(truth.to_dict(), allow_nan=False)  # strict JSON: NaN travels as null
    back = GroundTruth.from_dict(json.loads(text))
    assert math.isnan(back.valid[0][1]) and back.valid[0][0] == 60.0
    assert GroundTruth.from_dict(json.loads(json.dumps(ground_truth.to_dict()))) == ground_truth


def test_scores_for_names_missing_architectures(ground_truth: GroundTruth) -> None:
    wanted = [ground_truth.architectures[3], ground_truth.architectures[0]]
    assert ground_truth.scores_for(wanted).tolist() == pytest.approx([60.3, 60.0])
    with pytest.raises(
        AnalysisError,
        match=r"1 architecture\(s\) missing from the ground truth: tanh:0 relu:1 tanh:2",
    ):
        ground_truth.scores_for(["tanh:0 relu:1 tanh:2"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seeds": ()}, "empty seed list"),
        ({"architectures": ()}, "no architectures"),
        ({"valid": ((60.0,), (61.0, 62.0))}, "ground truth valid"),
        ({"test": ((NAN, NAN), (1.0, 2.0))}, "every seed of tanh:0 diverged"),
        ({"architectures": ("tanh:0", "tanh:0")}, "more than once"),
        ({"architectures": ("tanh:0", "cos:0")}, "unknown op 'cos'"),
        ({"valid": ((60.0, -1.0), (61.0, 62.0))}, "<= 0"),
    ],
)
def test_bad_ground_truth_raises(kwargs: dict, message: str) -> None:
    base = {
        "architectures": ("tanh:0", "relu:0"),
        "seeds": (0, 1),
        "valid": ((60.0, 61.0), (62.0, 63.0)),
        "test": ((58.0, 59.0), (60.0, 61.0)),
    }
    with pytest.raises(AnalysisError, match=message):
        GroundTruth(**{**base, **kwargs})


def test_from_records_rejects_incomplete_seeds() -> None:
    records = [
        {"architecture": "tanh:0", "seed": 0, "valid_ppl": 60.0, "test_ppl": 58.0},
        {"architecture": "tanh:0", "seed": 1, "valid_ppl": 60.0, "test_ppl": 58.0},
        {"architecture": "relu:0", "seed": 0, "valid_ppl": 60.0, "test_ppl": 58.0},
    ]
    with pytest.raises(AnalysisError, match=r"relu:0 has no run for seed\(s\) \[1\]"):
        GroundTruth.from_records(records)
    with pytest.raises(AnalysisError, match="lacks test_ppl"):
        GroundTruth.from_records([{"architecture": "tanh:0", "seed": 0, "valid_ppl": 60.0}])


def test_ground_truth_table_is_sorted_best_first(ground_truth: GroundTruth) -> None:
    table = ground_truth_table(ground_truth)
    assert table.rows[0] == (
        "1",
        ground_truth.architectures[0],
        "60.00 ± 0.20",
        "58.00 ± 0.20",
        "3",
    )
    assert [row[0] for row in table.rows] == [str(i) for i in range(1, 33)]
    assert np.all(np.diff([float(row[2].split()[0]) for row in table.rows]) >= 0)
