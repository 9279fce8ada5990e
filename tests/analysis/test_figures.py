"""Figures: a non-empty image of the expected size, and the same bytes on every rerun."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread

from naseval.analysis import (
    DPI,
    AnalysisError,
    ComparisonStudy,
    GroundTruth,
    SeedRun,
    SharingStudy,
    WSRankingStudy,
    compare_policies,
    perplexity_curves_figure,
    rank_changes_figure,
    save_figure,
    sharing_figure,
    sharing_study,
    tau_distribution_figure,
    ws_ranking_study,
)
from naseval.space import Architecture, Space


def _curve(start: float, end: float, epochs: int, wobble: float) -> tuple[float, ...]:
    t = np.linspace(0.0, 1.0, epochs)
    return tuple(float(v) for v in end + (start - end) * np.exp(-6 * t) + wobble * np.sin(9 * t))


@pytest.fixture(scope="module")
def comparison() -> ComparisonStudy:
    runs = {
        policy: [
            SeedRun(
                s,
                "tanh:0 relu:1",
                61.0 + offset + 0.3 * s,
                59.0 + offset + 0.3 * s,
                _curve(800.0, 61.0 + offset + 0.3 * s, 12 - (s == 2), 0.5 * s),
            )
            for s in range(4)
        ]
        for policy, offset in (("darts", 1.0), ("enas", 0.2), ("random", 0.5))
    }
    return compare_policies(runs, n_resamples=200)


@pytest.fixture(scope="module")
def ranking(ground_truth: GroundTruth, space2_architectures: list[str]) -> WSRankingStudy:
    rng = np.random.default_rng(0)
    ws = {s: dict(zip(space2_architectures, rng.permutation(32).astype(float))) for s in range(5)}
    return ws_ranking_study(ground_truth, ws, n_resamples=200)


@pytest.fixture(scope="module")
def sharing() -> SharingStudy:
    space = Space(3, fixed=Architecture.parse("tanh:0 relu:1"))
    rng = np.random.default_rng(1)
    return sharing_study(
        {s: {str(a): float(rng.random()) for a in space} for s in range(3)}, "tanh:0 relu:1"
    )


def _builders(
    comparison: ComparisonStudy, ranking: WSRankingStudy, sharing: SharingStudy
) -> dict[str, Callable[[], Figure]]:
    return {
        "curves": lambda: perplexity_curves_figure(comparison),
        "rank_changes": lambda: rank_changes_figure(ranking),
        "sharing": lambda: sharing_figure(sharing),
        "tau": lambda: tau_distribution_figure(ranking),
    }


NAMES = ("curves", "rank_changes", "sharing", "tau")


@pytest.mark.parametrize("name", NAMES)
def test_png_has_the_figure_size_and_is_not_blank(
    name: str,
    comparison: ComparisonStudy,
    ranking: WSRankingStudy,
    sharing: SharingStudy,
    tmp_path: Path,
) -> None:
    figure = _builders(comparison, ranking, sharing)[name]()
    png, svg = save_figure(figure, tmp_path / name)
    width, height = figure.get_size_inches()
    pixels = imread(png)
    assert pixels.shape[:2] == (round(height * DPI), round(width * DPI))
    assert pixels[..., :3].std() > 0.05  # something is drawn, not a blank canvas
    assert svg.stat().st_size > 1000 and svg.read_text().startswith("<?xml")
    assert figure.texts or any(ax.get_title() for ax in figure.axes)


@pytest.mark.parametrize("name", NAMES)
def test_same_input_gives_the_same_bytes(
    name: str,
    comparison: ComparisonStudy,
    ranking: WSRankingStudy,
    sharing: SharingStudy,
    tmp_path: Path,
) -> None:
    build = _builders(comparison, ranking, sharing)[name]
    first = save_figure(build(), tmp_path / "a" / name)
    # A user's rc settings must not leak in, and must be left as they were.
    with matplotlib.rc_context({"font.size": 20.0, "lines.linewidth": 5.0}):
        second = save_figure(build(), tmp_path / "b" / name)
        assert matplotlib.rcParams["font.size"] == 20.0
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes(), f"{a.name} differs between two identical runs"


def test_figure3_panels_name_policy_and_random(comparison: ComparisonStudy) -> None:
    figure = perplexity_curves_figure(comparison)
    visible = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == [
        "DARTS vs random architecture",
        "ENAS vs random architecture",
    ]
    labels = visible[0].get_legend_handles_labels()[1]
    assert "DARTS: mean of 4 seeds" in labels and "RANDOM: best seed (0)" in labels
    assert visible[0].get_ylabel() == "validation perplexity"


def test_figure4_shows_best_worst_and_average(ranking: WSRankingStudy) -> None:
    titles = [ax.get_title() for ax in rank_changes_figure(ranking).axes]
    assert titles[0].startswith(f"Best run (seed {ranking.best_seed})")
    assert titles[1].startswith(f"Worst run (seed {ranking.worst_seed})")
    assert titles[2].startswith(f"Average run (seed {ranking.average_seed})")


def test_curves_need_something_to_draw() -> None:
    study = compare_policies({"darts": [SeedRun(0, "tanh:0", 60.0, 58.0)]})
    with pytest.raises(AnalysisError, match="has a validation curve to draw"):
        perplexity_curves_figure(study)
    with pytest.raises(AnalysisError, match="format 'gif'"):
        save_figure(Figure(), "/tmp/never", formats=("gif",))
