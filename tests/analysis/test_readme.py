"""The package README's example runs as written (it builds a table and a figure)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "packages" / "analysis" / "README.md"


def test_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (block,) = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    monkeypatch.chdir(tmp_path)
    exec(compile(block, str(README), "exec"), {"print": lambda *args: None})
    assert (tmp_path / "figure3.png").stat().st_size > 0
    assert (tmp_path / "figure3.svg").stat().st_size > 0
