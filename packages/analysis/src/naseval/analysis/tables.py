"""Tables of the studies, rendered as Markdown, CSV or LaTeX (booktabs).

A `Table` is plain strings: the builders below format the numbers once (two decimals, values
as "63.29 ± 1.18"), so every output format shows the same digits.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from naseval.analysis._serial import from_jsonable, to_jsonable
from naseval.analysis.compare import ComparisonStudy, TableRow
from naseval.analysis.errors import AnalysisError
from naseval.analysis.ground_truth import GroundTruth
from naseval.analysis.sharing import SharingStudy
from naseval.analysis.stats import STD_DDOF, Summary, format_mean_std, summarize
from naseval.analysis.ws_ranking import WSRankingStudy

COMPARISON_COLUMNS = ("POLICY", "MEAN VALID", "MEAN TEST", "BEST VALID", "BEST TEST", "SEEDS")
SPREAD_NOTE = f"mean ± sample standard deviation (ddof={STD_DDOF}) over seeds"


@dataclass(frozen=True)
class Table:
    """A rendered table: a title, column headers, rows of cell strings and notes."""

    title: str  # one line saying what the table shows
    columns: tuple[str, ...]  # header cells
    rows: tuple[tuple[str, ...], ...]  # body cells, each row as long as columns
    notes: tuple[str, ...] = ()  # sentences printed under the table (Markdown, LaTeX)
    align: str = ""  # one of "l"/"r" per column; default: first column left, the rest right

    def __post_init__(self) -> None:
        for i, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise AnalysisError(
                    f"table {self.title!r}: row {i} has {len(row)} cells, expected {len(self.columns)}"
                )
        if self.align and (len(self.align) != len(self.columns) or set(self.align) - {"l", "r"}):
            raise AnalysisError(
                f"table {self.title!r}: align {self.align!r} needs one 'l' or 'r' per column"
            )

    @property
    def alignment(self) -> str:
        return self.align or "l" + "r" * (len(self.columns) - 1)

    def to_markdown(self) -> str:
        lines = [f"**{self.title}**", ""] if self.title else []
        lines.append(_markdown_row(self.columns))
        rule = {"l": ":---", "r": "---:"}
        lines.append("| " + " | ".join(rule[a] for a in self.alignment) + " |")
        lines += [_markdown_row(row) for row in self.rows]
        if self.notes:
            lines += [""] + [f"{note}" for note in self.notes]
        return "\n".join(lines) + "\n"

    def to_csv(self) -> str:
        """Header and body only: data for a spreadsheet, no title or notes."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows(self.rows)
        return buffer.getvalue()

    def to_latex(self, label: str | None = None) -> str:
        """A booktabs `table` environment; needs \\usepackage{booktabs} in the preamble."""
        spec = self.alignment
        lines = ["\\begin{table}[t]", "\\centering"]
        caption = " ".join([self.title, *self.notes]).strip()
        if caption:
            lines.append(f"\\caption{{{latex_escape(caption)}}}")
        if label:
            lines.append(f"\\label{{{label}}}")
        lines += [
            f"\\begin{{tabular}}{{{spec}}}",
            "\\toprule",
            _latex_row(self.columns),
            "\\midrule",
        ]
        lines += [_latex_row(row) for row in self.rows]
        lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = to_jsonable(self)
        return result

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Table:
        return from_jsonable(cls, data)


TABLE_FORMATS = {"md": Table.to_markdown, "csv": Table.to_csv, "tex": Table.to_latex}


def save_table(
    table: Table, path_stem: str | Path, formats: Sequence[str] = ("md", "csv", "tex")
) -> tuple[Path, ...]:
    """Write `path_stem`.md, .csv and/or .tex; returns the paths."""
    stem = Path(path_stem)
    unknown = [f for f in formats if f not in TABLE_FORMATS]
    if unknown:
        raise AnalysisError(f"table format(s) {unknown} not in {tuple(TABLE_FORMATS)}")
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = stem.with_name(f"{stem.name}.{fmt}")
        path.write_text(TABLE_FORMATS[fmt](table), encoding="utf-8")
        paths.append(path)
    return tuple(paths)


def _markdown_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "Δ": r"$\Delta$",
    "τ": r"$\tau$",
    "ρ": r"$\rho$",
    "≥": r"$\geq$",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(char, char) for char in text)


def _latex_row(cells: Sequence[str]) -> str:
    return " & ".join(latex_escape(cell) for cell in cells) + " \\\\"


# -- builders ----------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None or value != value else f"{value:.{digits}f}"


def _seed_count(summary: Summary) -> str:
    if summary.n_dropped:
        return f"{summary.n} ({summary.n_dropped} diverged)"
    return str(summary.n)


def comparison_row_cells(row: TableRow, digits: int = 2) -> tuple[str, ...]:
    return (
        row.label,
        format_mean_std(row.valid.mean, row.valid.std, digits),
        format_mean_std(row.test.mean, row.test.std, digits),
        _fmt(row.best_valid, digits),
        _fmt(row.best_test, digits),
        _seed_count(row.valid),
    )


def comparison_table(study: ComparisonStudy, *, title: str | None = None, digits: int = 2) -> Table:
    """The paper's Tables 2 and 3: one row per policy, RANDOM, and REAL-BEST when present."""
    notes = [
        f"MEAN: {SPREAD_NOTE}. BEST VALID: the lowest validation perplexity over seeds; "
        "BEST TEST: the test perplexity of that same run.",
    ]
    if any(r.label == "REAL-BEST" for r in study.rows):
        notes.append(
            "REAL-BEST: the architecture with the best mean validation perplexity in the "
            "exhaustive ground truth, over its training seeds."
        )
    if study.note:
        notes.append(study.note)
    return Table(
        title=title
        or "Perplexity of the architectures found, trained from scratch (lower is better)",
        columns=COMPARISON_COLUMNS,
        rows=tuple(comparison_row_cells(row, digits) for row in study.rows),
        notes=tuple(notes),
    )


def _p(value: float | None) -> str:
    if value is None:
        return "n/a"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def versus_random_table(study: ComparisonStudy, *, digits: int = 2) -> Table:
    """Each policy against random: mean difference with its interval and the tests."""
    rows = []
    for c in study.versus_random:
        ci = c.difference_ci
        rows.append(
            (
                c.policy.upper(),
                c.metric,
                f"{c.mean_difference:+.{digits}f}",
                f"[{ci.low:+.{digits}f}, {ci.high:+.{digits}f}]",
                _fmt(c.mann_whitney_u, 1),
                _p(c.mann_whitney_p),
                _fmt(c.wilcoxon_statistic, 1),
                _p(c.wilcoxon_p),
                f"{c.prob_policy_better:.2f}",
                f"{c.n_policy}/{c.n_random}",
            )
        )
    confidence = study.versus_random[0].difference_ci.confidence if study.versus_random else 0.95
    return Table(
        title="Each policy against a random architecture, over seeds",
        columns=(
            "POLICY",
            "METRIC",
            "Δ MEAN PPL",
            f"{confidence:.0%} CI",
            "MANN-WHITNEY U",
            "MANN-WHITNEY p",
            "WILCOXON W",
            "WILCOXON p",
            "P(POLICY BETTER)",
            "SEEDS (POLICY/RANDOM)",
        ),
        rows=tuple(rows),
        notes=(
            "Δ MEAN PPL: mean(policy) - mean(random); negative means the policy found better "
            "architectures. CI: percentile bootstrap. p: two-sided. Wilcoxon only when seeds are "
            "paired. P(POLICY BETTER): chance a policy run has lower perplexity than a random "
            "run (ties count half).",
        ),
    )


def ground_truth_table(ground_truth: GroundTruth, *, digits: int = 2) -> Table:
    """Every architecture of the exhaustive ground truth, best first."""
    valid, test = ground_truth.summaries("valid"), ground_truth.summaries("test")
    order = sorted(range(len(ground_truth.architectures)), key=lambda i: valid[i].mean)
    rows = tuple(
        (
            str(rank),
            ground_truth.architectures[i],
            format_mean_std(valid[i].mean, valid[i].std, digits),
            format_mean_std(test[i].mean, test[i].std, digits),
            _seed_count(valid[i]),
        )
        for rank, i in enumerate(order, start=1)
    )
    return Table(
        title="Ground truth: every architecture trained from scratch",
        columns=("RANK", "ARCHITECTURE", "VALID PPL", "TEST PPL", "SEEDS"),
        rows=rows,
        notes=(
            f"{SPREAD_NOTE}. The ground-truth score of an architecture is its mean "
            "validation perplexity over training seeds.",
        ),
        align="rlrrr",
    )


def _mean_std_over_seeds(values: Sequence[float], digits: int) -> str:
    summary = summarize(values)
    return format_mean_std(summary.mean, summary.std, digits)


def ws_ranking_table(study: WSRankingStudy, *, digits: int = 3) -> Table:
    """Per WS seed: tau, rho, top-k overlap, true rank of the WS top-1; then the mean row."""
    rows = [
        (
            str(r.seed),
            _fmt(r.kendall_tau, digits),
            _fmt(r.spearman_rho, digits),
            f"{r.top_k_overlap:.2f}",
            str(r.true_rank_of_ws_top1),
            f"{r.mean_rank_change:.2f}",
        )
        for r in study.seeds
    ]
    rows.append(
        (
            "MEAN",
            format_mean_std(study.mean_tau, study.std_tau, digits),
            format_mean_std(study.mean_rho, study.std_rho, digits),
            _mean_std_over_seeds([r.top_k_overlap for r in study.seeds], 2),
            _mean_std_over_seeds([float(r.true_rank_of_ws_top1) for r in study.seeds], 1),
            _mean_std_over_seeds([r.mean_rank_change for r in study.seeds], 2),
        )
    )
    ci = study.tau_ci
    return Table(
        title=f"Weight-sharing ranking against the ground truth ({len(study.architectures)} architectures)",
        columns=(
            "WS SEED",
            "KENDALL τ",
            "SPEARMAN ρ",
            f"TOP-{study.k} OVERLAP",
            "TRUE RANK OF WS TOP-1",
            "MEAN |RANK CHANGE|",
        ),
        rows=tuple(rows),
        notes=(
            f"Mean Kendall τ {study.mean_tau:.{digits}f}, {ci.confidence:.0%} bootstrap CI "
            f"[{ci.low:.{digits}f}, {ci.high:.{digits}f}]; {SPREAD_NOTE}.",
            f"Figure 4 runs: best seed {study.best_seed}, worst seed {study.worst_seed}, "
            f"average seed {study.average_seed} (τ closest to the mean).",
        ),
    )


def sharing_table(study: SharingStudy, *, digits: int = 2) -> Table:
    """Mean WS rank of the architectures grouped by how many fixed matrices they share."""
    fixed_nodes = len(study.fixed.split())
    rows = tuple(
        (
            str(g.count),
            str(len(g.architectures)),
            format_mean_std(g.mean_rank, g.std_rank, digits),
            ", ".join(_searched_part(a, fixed_nodes) for a in g.architectures),
        )
        for g in study.groups
    )
    matrices = ", ".join(f"W{j}" for j in range(1, fixed_nodes + 1))
    return Table(
        title=f"WS rank by amount of sharing (fixed prefix {study.fixed})",
        columns=(
            "SHARED FIXED MATRICES",
            "ARCHITECTURES",
            "MEAN WS RANK",
            "SEARCHED NODES (BEST FIRST)",
        ),
        rows=rows,
        align="rrrl",
        notes=(
            f"Shared fixed matrices: how many of {matrices} the searched node's state depends on. "
            f"WS rank 1 = best, averaged over {len(study.seeds)} WS seed(s); spread: sample std "
            f"(ddof={STD_DDOF}) over the group's architectures.",
            f"Searched nodes are shown without the fixed prefix {study.fixed}.",
            f"Spearman ρ(sharing, mean rank) = {study.spearman_rho:.3f} (p = {_p(study.spearman_p)}); "
            f"Kendall τ = {study.kendall_tau:.3f} (p = {_p(study.kendall_p)}).",
        ),
    )


def _searched_part(architecture: str, fixed_nodes: int) -> str:
    return " ".join(architecture.split()[fixed_nodes:])
