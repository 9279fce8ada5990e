"""Table rendering: Markdown, CSV, LaTeX (booktabs), files and JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from naseval.analysis import AnalysisError, Table, save_table
from naseval.analysis.tables import latex_escape

TABLE = Table(
    title="Two policies",
    columns=("POLICY", "MEAN VALID"),
    rows=(("DARTS", "63.29 ± 1.18"), ("A|B_C", "62.50 ± 0.86")),
    notes=("mean ± std over 10% of seeds",),
)


def test_markdown() -> None:
    assert TABLE.to_markdown() == (
        "**Two policies**\n\n| POLICY | MEAN VALID |\n| :--- | ---: |\n"
        "| DARTS | 63.29 ± 1.18 |\n| A\\|B_C | 62.50 ± 0.86 |\n\nmean ± std over 10% of seeds\n"
    )


def test_csv_has_header_and_rows_only() -> None:
    assert TABLE.to_csv() == "POLICY,MEAN VALID\nDARTS,63.29 ± 1.18\nA|B_C,62.50 ± 0.86\n"


def test_latex_is_booktabs_and_escaped() -> None:
    latex = TABLE.to_latex(label="tab:x")
    assert latex.splitlines() == [
        "\\begin{table}[t]",
        "\\centering",
        "\\caption{Two policies mean $\\pm$ std over 10\\% of seeds}",
        "\\label{tab:x}",
        "\\begin{tabular}{lr}",
        "\\toprule",
        "POLICY & MEAN VALID \\\\",
        "\\midrule",
        "DARTS & 63.29 $\\pm$ 1.18 \\\\",
        "A|B\\_C & 62.50 $\\pm$ 0.86 \\\\",
        "\\bottomrule",
        "\\end{tabular}",
        "\\end{table}",
    ]
    assert (
        latex_escape("Δ τ & ρ #1 {x} ~ ^")
        == r"$\Delta$ $\tau$ \& $\rho$ \#1 \{x\} \textasciitilde{} \textasciicircum{}"
    )


def test_alignment_option() -> None:
    table = Table("t", ("A", "B"), (("1", "x"),), align="rl")
    assert "| ---: | :--- |" in table.to_markdown()
    assert "\\begin{tabular}{rl}" in table.to_latex()
    with pytest.raises(AnalysisError, match="align 'r' needs one"):
        Table("t", ("A", "B"), (), align="r")


def test_ragged_rows_raise() -> None:
    with pytest.raises(AnalysisError, match="row 0 has 1 cells, expected 2"):
        Table("t", ("A", "B"), (("only one",),))


def test_save_table_writes_each_format(tmp_path: Path) -> None:
    paths = save_table(TABLE, tmp_path / "out" / "table2")
    assert [p.name for p in paths] == ["table2.md", "table2.csv", "table2.tex"]
    assert paths[1].read_text(encoding="utf-8") == TABLE.to_csv()
    with pytest.raises(AnalysisError, match=re.escape("table format(s) ['html']")):
        save_table(TABLE, tmp_path / "t", formats=("html",))


def test_json_round_trip() -> None:
    assert Table.from_dict(json.loads(json.dumps(TABLE.to_dict()))) == TABLE
