"""naseval.analysis works without torch and MLflow and selects no global matplotlib backend."""

from __future__ import annotations

import subprocess
import sys


def test_import_pulls_in_neither_torch_nor_mlflow_nor_pyplot() -> None:
    code = (
        "import sys, naseval.analysis\n"
        "bad = [m for m in ('torch', 'mlflow', 'matplotlib.pyplot') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
