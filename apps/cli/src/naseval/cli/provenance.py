"""What a run records about where it came from: package versions and the git commit."""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("naseval-space", "naseval-trainer", "naseval-policies", "naseval-analysis",
            "naseval-cli", "torch", "numpy", "mlflow")


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit() -> str:
    """The commit of the source tree the CLI runs from ("unknown" outside a checkout)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=5, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def provenance_tags() -> dict[str, str]:
    tags = {f"version.{name}": value for name, value in package_versions().items()}
    tags["git_commit"] = git_commit()
    return tags
