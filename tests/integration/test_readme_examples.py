"""Every library README's Python example runs as written (the CLI's are shell sessions, tested
through the commands themselves)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
READMES = sorted(ROOT.glob("packages/*/README.md"))


def python_blocks(readme: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", readme.read_text(), re.S)


def test_every_library_readme_has_an_example() -> None:
    assert [p.parent.name for p in READMES] == ["analysis", "policies", "space", "trainer"]


@pytest.mark.parametrize("readme", READMES, ids=lambda p: p.parent.name)
def test_readme_python_examples_run(readme: Path, tmp_path: Path) -> None:
    blocks = python_blocks(readme)
    assert blocks, f"{readme.relative_to(ROOT)} has no Python example"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    for block in blocks:
        result = subprocess.run(
            [sys.executable, "-c", block],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"{readme}:\n{block}\n{result.stderr[-3000:]}"
