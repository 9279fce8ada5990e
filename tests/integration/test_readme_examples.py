"""Every package README's Python example runs as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
READMES = sorted([*ROOT.glob("packages/*/README.md"), ROOT / "apps" / "cli" / "README.md"])


def python_blocks(readme: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", readme.read_text(), re.S)


@pytest.mark.parametrize("readme", READMES, ids=lambda p: p.parent.name)
def test_readme_python_examples_run(readme: Path, tmp_path: Path) -> None:
    blocks = python_blocks(readme)
    if not blocks:
        pytest.skip(f"{readme.relative_to(ROOT)} has no Python example")
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
