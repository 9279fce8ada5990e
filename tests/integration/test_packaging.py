"""Each package builds its own wheel, declares only its own dependencies, and imports alone."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "naseval-space": ROOT / "packages" / "space",
    "naseval-trainer": ROOT / "packages" / "trainer",
    "naseval-policies": ROOT / "packages" / "policies",
    "naseval-analysis": ROOT / "packages" / "analysis",
    "naseval-cli": ROOT / "apps" / "cli",
}


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("wheels")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(out), *map(str, PACKAGES.values())],
        check=True,
    )  # fmt: skip
    found = {}
    for name in PACKAGES:
        (wheel,) = out.glob(name.replace("-", "_") + "-*.whl")
        found[name] = wheel
    return found


def requires(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        (meta,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        lines = zf.read(meta).decode().splitlines()
    # The distribution names of the unconditional requirements, without their version ranges.
    return sorted(
        Requirement(line.split(":", 1)[1]).name
        for line in lines
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    )


def test_wheels_declare_their_own_dependencies(wheels: dict[str, Path]) -> None:
    assert requires(wheels["naseval-space"]) == ["numpy"]
    assert requires(wheels["naseval-trainer"]) == ["naseval-space", "numpy", "torch"]
    assert requires(wheels["naseval-policies"]) == ["naseval-space", "numpy", "torch"]
    assert requires(wheels["naseval-analysis"]) == ["matplotlib", "naseval-space", "numpy", "scipy"]


def test_no_namespace_init_in_any_wheel(wheels: dict[str, Path]) -> None:
    for wheel in wheels.values():
        with zipfile.ZipFile(wheel) as zf:
            assert "naseval/__init__.py" not in zf.namelist()


def import_alone(tmp: Path, wheel_list: list[Path], module: str, blocked: list[str]) -> str:
    """Import `module` from the unpacked wheels, with every `blocked` top-level module unimportable."""
    target = tmp / "site"
    for wheel in wheel_list:
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(target)
    script = textwrap.dedent(
        f"""
        import importlib.abc, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if any(name == b or name.startswith(b + ".") for b in {blocked!r}):
                    raise ImportError("blocked: " + name)
                return None
        sys.meta_path.insert(0, Block())
        sys.path[:0] = [{str(target)!r}, {sysconfig.get_paths()["purelib"]!r}]
        import {module} as m
        assert m.__file__.startswith({str(target)!r}), m.__file__
        print(m.__version__)
        """
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


HEAVY = ["torch", "scipy", "matplotlib", "mlflow", "typer", "rich", "ray"]


def test_space_imports_with_only_numpy(wheels: dict[str, Path], tmp_path: Path) -> None:
    version = import_alone(tmp_path, [wheels["naseval-space"]], "naseval.space", HEAVY)
    assert version == "0.1.0"


def test_analysis_imports_without_torch(wheels: dict[str, Path], tmp_path: Path) -> None:
    wheel_list = [wheels["naseval-space"], wheels["naseval-analysis"]]
    import_alone(tmp_path, wheel_list, "naseval.analysis", ["torch", "mlflow", "ray"])


@pytest.mark.parametrize("name", ["naseval-trainer", "naseval-policies"])
def test_torch_packages_import_with_space_and_torch(
    wheels: dict[str, Path], tmp_path: Path, name: str
) -> None:
    module = "naseval." + name.split("-")[1]
    other = "naseval.policies" if module == "naseval.trainer" else "naseval.trainer"
    # trainer and policies never import each other, the CLI or MLflow.
    blocked = ["scipy", "matplotlib", "mlflow", "typer", "ray", other]
    import_alone(tmp_path, [wheels["naseval-space"], wheels[name]], module, blocked)
