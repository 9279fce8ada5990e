"""The paper's figures (3, 4, 5) and the Kendall tau distribution, drawn with matplotlib Agg.

Figures are built as `matplotlib.figure.Figure` on an Agg canvas, never through pyplot, so they
need no display and leave the pyplot state alone. Every builder draws inside one fixed style
(`STYLE`), so a user's matplotlibrc does not change the output; `save_figure` writes PNG at
`DPI` and SVG with a fixed hash salt and no date, so the same input gives the same bytes.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import matplotlib
import matplotlib.style
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

from naseval.analysis.compare import ComparisonStudy, SeedRun
from naseval.analysis.errors import AnalysisError
from naseval.analysis.ranking import positions
from naseval.analysis.sharing import SharingStudy
from naseval.analysis.stats import STD_DDOF
from naseval.analysis.ws_ranking import PAPER_MEAN_TAU, SeedRanking, WSRankingStudy

DPI = 150
"""Resolution of every PNG: a figure of w x h inches is w*DPI x h*DPI pixels."""

STYLE: dict[str, Any] = {
    "font.family": "DejaVu Sans",  # ships with matplotlib: the same glyphs everywhere
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "axes.labelsize": 9.0,
    "legend.fontsize": 8.0,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "svg.hashsalt": "naseval",  # fixed SVG element ids: byte-identical reruns
    "svg.fonttype": "path",
    "path.simplify": True,
}

RANK_COLORMAP = "viridis"
POLICY_COLOR = "#1f77b4"
RANDOM_COLOR = "#7f7f7f"
SHARING_COLORS = ("#2ca02c", "#ff7f0e", "#d62728", "#9467bd", "#8c564b")


@contextmanager
def figure_style() -> Iterator[None]:
    """matplotlib's defaults plus STYLE, scoped: the user's rcParams neither leak in nor change."""
    # matplotlib types rc keys as a Literal union; STYLE's keys are valid rc names.
    with matplotlib.style.context(["default", cast(Any, STYLE)]):
        yield


def new_figure(
    width: float, height: float, rows: int = 1, cols: int = 1
) -> tuple[Figure, list[Axes]]:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, cols, squeeze=False)
    return figure, [ax for row in axes for ax in row]


def save_figure(
    figure: Figure, path_stem: str | Path, formats: Sequence[str] = ("png", "svg")
) -> tuple[Path, ...]:
    """Write `path_stem`.png (at DPI) and/or .svg, deterministically; returns the paths."""
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    metadata = {
        "png": {"Software": None},
        "svg": {"Date": None, "Creator": "naseval.analysis"},
        "pdf": {"CreationDate": None, "Producer": None, "Creator": None},
    }
    paths = []
    with figure_style():
        for fmt in formats:
            if fmt not in metadata:
                raise AnalysisError(f"figure format {fmt!r} is not one of {tuple(metadata)}")
            path = stem.with_name(f"{stem.name}.{fmt}")
            figure.savefig(path, format=fmt, dpi=DPI, metadata=metadata[fmt])
            paths.append(path)
    return tuple(paths)


# -- Figure 3: perplexity curves ---------------------------------------------------------------


def curve_matrix(runs: Sequence[SeedRun]) -> np.ndarray:
    """(runs with a curve, max epochs) array, NaN-padded where a run trained fewer epochs."""
    curves = [r.valid_curve for r in runs if r.valid_curve]
    if not curves:
        return np.empty((0, 0))
    matrix = np.full((len(curves), max(len(c) for c in curves)), np.nan)
    for i, curve in enumerate(curves):
        matrix[i, : len(curve)] = curve
    return matrix


def _mean_and_band(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    counts = np.sum(np.isfinite(matrix), axis=0)
    safe = np.where(np.isfinite(matrix), matrix, 0.0)
    mean = np.where(counts > 0, safe.sum(axis=0) / np.maximum(counts, 1), np.nan)
    squares = np.where(np.isfinite(matrix), (matrix - mean) ** 2, 0.0).sum(axis=0)
    std = np.where(counts > STD_DDOF, np.sqrt(squares / np.maximum(counts - STD_DDOF, 1)), np.nan)
    return mean, mean - std, mean + std


def _best_run(runs: Sequence[SeedRun]) -> SeedRun | None:
    finished = [r for r in runs if r.finished and r.valid_curve]
    return min(finished, key=lambda r: r.valid_ppl) if finished else None


def _draw_curves(ax: Axes, runs: Sequence[SeedRun], label: str, color: str) -> bool:
    matrix = curve_matrix(runs)
    if matrix.size == 0:
        return False
    epochs = np.arange(1, matrix.shape[1] + 1)
    mean, low, high = _mean_and_band(matrix)
    ax.fill_between(
        epochs, low, high, color=color, alpha=0.2, linewidth=0, label=f"{label}: ±1 std over seeds"
    )
    ax.plot(
        epochs, mean, color=color, linewidth=1.6, label=f"{label}: mean of {matrix.shape[0]} seeds"
    )
    best = _best_run(runs)
    if best is not None:
        ax.plot(
            np.arange(1, len(best.valid_curve) + 1),
            best.valid_curve,
            color=color,
            linewidth=1.0,
            linestyle="--",
            label=f"{label}: best seed ({best.seed})",
        )
    return True


ZOOM_FACTOR = 2.5
"""With zoom, the y axis ends at ZOOM_FACTOR x the lowest perplexity in the panel."""


def _zoom_limits(run_sets: Sequence[Sequence[SeedRun]]) -> tuple[float, float] | None:
    values = np.concatenate([curve_matrix(runs).ravel() for runs in run_sets])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    lowest = float(values.min())
    return 0.97 * lowest, min(float(values.max()) * 1.03, ZOOM_FACTOR * lowest)


def _curves_panel(
    ax: Axes,
    policy: str,
    runs: Sequence[SeedRun],
    random_runs: Sequence[SeedRun],
    log_scale: bool,
    zoom: bool,
) -> None:
    drawn = _draw_curves(ax, random_runs, "RANDOM", RANDOM_COLOR) if random_runs else False
    drawn = _draw_curves(ax, runs, policy.upper(), POLICY_COLOR) or drawn
    if not drawn:
        raise AnalysisError(f"neither {policy!r} nor random has a validation curve to draw")
    ax.set_title(f"{policy.upper()} vs random architecture")
    ax.set_xlabel("training epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("validation perplexity")
    if log_scale:
        ax.set_yscale("log")  # before the limits: setting the scale autoscales again
    limits = _zoom_limits([random_runs, runs]) if zoom else None
    if limits is not None:
        ax.set_ylim(*limits)
    if log_scale:
        _plain_log_labels(ax)
    ax.legend(loc="best")


def perplexity_curves_figure(
    study: ComparisonStudy, *, log_scale: bool = True, zoom: bool = True
) -> Figure:
    """Figure 3: validation perplexity per epoch, each policy against the random architecture.

    One panel per policy: its mean over seeds with a ±1 std band and its best seed (lowest final
    validation ppl), over the same for random. `zoom` ends the y axis at ZOOM_FACTOR x the
    lowest perplexity, so the late epochs, where architectures differ, are readable (the first
    epochs, in the hundreds, are cut off); `zoom=False` shows every epoch.
    """
    policies = [name for name in study.runs if name != study.random_key]
    if not policies:
        raise AnalysisError("no policy besides random to draw curves for")
    random_runs = study.runs[study.random_key] if study.random_key else ()
    with figure_style():
        figure, axes = new_figure(
            4.0 * min(len(policies), 3),
            3.2 * -(-len(policies) // 3),
            -(-len(policies) // 3),
            min(len(policies), 3),
        )
        for ax, policy in zip(axes, policies):
            _curves_panel(ax, policy, study.runs[policy], random_runs, log_scale, zoom)
        for ax in axes[len(policies) :]:
            ax.set_visible(False)
        title = "Training from scratch: the architecture each policy found vs a random one"
        # One or two narrow panels cannot hold the title on one line.
        figure.suptitle("\n".join(textwrap.wrap(title, width=45 * min(len(policies), 3))))
    return figure


def _plain_log_labels(ax: Axes) -> None:
    """Plain numbers (62, 100, 300) on a log y axis instead of powers of ten."""
    low, high = ax.get_ylim()
    within_a_decade = high / low < 10.0
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _position: f"{value:g}"))
    ax.yaxis.set_minor_formatter(
        FuncFormatter(lambda value, _position: _minor_log_label(value, within_a_decade))
    )


def _minor_log_label(value: float, label_all: bool) -> str:
    # Over more than a decade, label only the 2s, 3s and 5s: enough to read values, and they fit.
    text = f"{value:g}"
    return text if label_all or text.lstrip("0.")[:1] in ("2", "3", "5") else ""


# -- Figure 4: rank changes --------------------------------------------------------------------


def _draw_rank_strip(ax: Axes, study: WSRankingStudy, ranking: SeedRanking, title: str) -> None:
    true_pos = positions(study.true_scores)
    ws_pos = positions(ranking.ws_scores)
    n = len(true_pos)
    shade = (true_pos - 1) / max(n - 1, 1)  # colour follows the architecture's true rank
    colormap = matplotlib.colormaps[RANK_COLORMAP]
    for a in range(n):
        ax.plot([true_pos[a], ws_pos[a]], [1.0, 0.0], color=colormap(shade[a]), linewidth=1.0)
    for y, where in ((1.0, true_pos), (0.0, ws_pos)):
        ax.scatter(where, np.full(n, y), c=shade, cmap=colormap, vmin=0, vmax=1, s=14, zorder=3)
    ax.set_yticks([1.0, 0.0], ["ground truth", "weight sharing"])
    ax.set_ylim(-0.25, 1.25)
    ax.set_xlim(0.5, n + 0.5)
    ax.set_xlabel("rank (1 = lowest validation perplexity)")
    ax.grid(False)
    ax.set_title(
        f"{title} (seed {ranking.seed}): Kendall τ = {ranking.kendall_tau:.3f}, "
        f"mean |rank change| = {ranking.mean_rank_change:.1f}"
    )


def rank_changes_figure(study: WSRankingStudy) -> Figure:
    """Figure 4: each architecture's rank in the ground truth joined to its WS rank.

    Three strips: the best and worst WS seed by Kendall tau, and the seed closest to the mean.
    Lines are coloured by true rank, so crossing lines are rank changes.
    """
    picks = (
        ("Best run", study.best_seed),
        ("Worst run", study.worst_seed),
        ("Average run", study.average_seed),
    )
    n = len(study.architectures)
    with figure_style():
        figure, axes = new_figure(8.5, 6.0, rows=3)
        for ax, (title, seed) in zip(axes, picks):
            _draw_rank_strip(ax, study, study.seed_ranking(seed), title)
        colours = ScalarMappable(Normalize(1, n), matplotlib.colormaps[RANK_COLORMAP])
        figure.colorbar(colours, ax=axes, label="true rank of the architecture", shrink=0.8)
        figure.suptitle(
            f"Rank changes between the true and the weight-sharing ranking "
            f"(mean τ over {len(study.seeds)} seeds = {study.mean_tau:.3f})"
        )
    return figure


# -- Figure 5: the sharing study ---------------------------------------------------------------


def sharing_figure(study: SharingStudy) -> Figure:
    """Figure 5: architectures in WS-rank order, coloured by how many fixed matrices they share."""
    order = np.argsort(np.asarray(study.mean_rank), kind="stable")
    counts = sorted(set(study.shared_counts))
    color_of = {c: SHARING_COLORS[i % len(SHARING_COLORS)] for i, c in enumerate(counts)}
    n_fixed = len(study.fixed.split())
    matrices = ", ".join(f"W{j}" for j in range(1, n_fixed + 1))
    with figure_style():
        figure, (ax,) = new_figure(max(6.0, 0.45 * len(order) + 2.0), 4.0)
        x = np.arange(1, len(order) + 1)
        heights = [study.mean_rank[i] for i in order]
        errors = [study.std_rank[i] or 0.0 for i in order]
        ax.bar(
            x,
            heights,
            yerr=errors if len(study.seeds) > 1 else None,
            capsize=2,
            color=[color_of[study.shared_counts[i]] for i in order],
            edgecolor="black",
            linewidth=0.5,
        )
        ax.set_xticks(
            x,
            [" ".join(study.architectures[i].split()[n_fixed:]) for i in order],
            rotation=60,
            ha="right",
        )
        ax.set_xlabel(f"searched node(s) after the fixed prefix {study.fixed}, best WS rank first")
        spread = " ± 1 std" if len(study.seeds) > 1 else ""
        ax.set_ylabel(f"mean WS rank{spread} over {len(study.seeds)} seed(s)\n(1 = best)")
        ax.legend(
            handles=[
                Patch(color=color_of[c], label=f"depends on {c} of {matrices}") for c in counts
            ],
            loc="upper left",
            title="weights shared with the fixed nodes",
        )
        ax.set_title(
            f"WS ranking by amount of sharing: Spearman ρ(sharing, rank) = {study.spearman_rho:.2f} "
            f"(p = {study.spearman_p:.3f})"
        )
    return figure


# -- Kendall tau over seeds --------------------------------------------------------------------


def tau_distribution_figure(
    study: WSRankingStudy, *, reference: float | None = PAPER_MEAN_TAU
) -> Figure:
    """Kendall tau of every WS seed, with the mean, its bootstrap interval and the paper's value."""
    taus = study.taus
    ci = study.tau_ci
    with figure_style():
        figure, (ax,) = new_figure(6.0, 3.2)
        ax.hist(
            taus,
            bins=np.linspace(-1.0, 1.0, 41).tolist(),
            color=POLICY_COLOR,
            alpha=0.7,
            edgecolor="black",
            linewidth=0.5,
            label=f"one WS seed ({len(taus)} in all)",
        )
        ax.axvspan(
            ci.low,
            ci.high,
            color=POLICY_COLOR,
            alpha=0.15,
            label=f"{ci.confidence:.0%} bootstrap CI of the mean",
        )
        ax.axvline(
            study.mean_tau,
            color=POLICY_COLOR,
            linewidth=1.6,
            label=f"mean τ = {study.mean_tau:.3f}",
        )
        ax.axvline(0.0, color="black", linewidth=0.8, linestyle=":")
        handles: list[Any] = []
        if reference is not None:
            ax.axvline(reference, color="#d62728", linewidth=1.2, linestyle="--")
            handles.append(
                Line2D(
                    [],
                    [],
                    color="#d62728",
                    linestyle="--",
                    label=f"paper: mean τ = {reference:.3f}",
                )
            )
        ax.set_xlim(-1.0, 1.0)
        ax.set_xlabel("Kendall τ between the true and the weight-sharing ranking")
        ax.set_ylabel("WS seeds")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(handles=ax.get_legend_handles_labels()[0] + handles, loc="upper left")
        ax.set_title(f"Kendall τ over WS seeds ({len(study.architectures)} architectures)")
    return figure
