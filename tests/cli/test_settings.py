"""--set / --config: generic, typed edits of nested dataclass configs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from naseval.cli.settings import (
    SettingError,
    apply_settings,
    field_paths,
    load_toml,
    parse_assignments,
    stable_hash,
)


@dataclasses.dataclass(frozen=True)
class Inner:
    epochs: int = 3  # an int
    lr: float = 0.1  # a float
    prefix: int | None = None  # optional
    betas: tuple[float, float] = (0.9, 0.99)  # fixed-length tuple
    on: bool = False  # a flag

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")


@dataclasses.dataclass(frozen=True)
class Outer:
    name: str = "x"  # a string
    names: tuple[str, ...] = ("a",)  # variable-length tuple
    inner: Inner = dataclasses.field(default_factory=Inner)  # a group


def test_values_are_parsed_by_field_type() -> None:
    config = apply_settings(Outer(), parse_assignments([
        "inner.epochs=7", "inner.lr=1e-3", "inner.prefix=none", "inner.betas=0.5,0.6",
        "inner.on=yes", "names=b,c", "name=hello",
    ]))
    assert config.inner == Inner(epochs=7, lr=1e-3, prefix=None, betas=(0.5, 0.6), on=True)
    assert config.names == ("b", "c") and config.name == "hello"
    assert apply_settings(Outer(), {"inner.prefix": "5_000"}).inner.prefix == 5000


def test_unknown_key_names_close_matches() -> None:
    with pytest.raises(SettingError, match=r"unknown setting 'inner.epoch'.*inner\.epochs"):
        apply_settings(Outer(), {"inner.epoch": "3"})
    with pytest.raises(SettingError, match=r"did you mean inner\.epochs"):
        apply_settings(Outer(), {"epochs": "3"})


@pytest.mark.parametrize(("key", "value", "message"), [
    ("inner.epochs", "three", "must be an integer"),
    ("inner.on", "maybe", "true or false"),
    ("inner.betas", "1,2,3", "needs 2 values"),
    ("inner", "3", "group of settings"),
    ("inner.epochs", "0", "epochs must be >= 1"),
])
def test_bad_values_are_one_line_errors(key: str, value: str, message: str) -> None:
    with pytest.raises(SettingError, match=message):
        apply_settings(Outer(), {key: value})


def test_assignment_needs_equals() -> None:
    with pytest.raises(SettingError, match="key=value"):
        parse_assignments(["inner.epochs"])


def test_toml_is_flattened_and_type_checked(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('name = "t"\n[inner]\nepochs = 9\nbetas = [0.1, 0.2]\n')
    config = apply_settings(Outer(), load_toml(path))
    assert config.inner.epochs == 9 and config.inner.betas == (0.1, 0.2) and config.name == "t"
    path.write_text("[inner]\nepochs = 'many'\n")
    with pytest.raises(SettingError, match="integer"):
        apply_settings(Outer(), load_toml(path))
    path.write_text("[inner\n")
    with pytest.raises(SettingError, match="not valid TOML"):
        load_toml(path)
    with pytest.raises(SettingError, match="does not exist"):
        load_toml(tmp_path / "missing.toml")


def test_field_paths_and_hash() -> None:
    assert set(field_paths(Outer())) == {"name", "names", "inner.epochs", "inner.lr", "inner.prefix",
                                         "inner.betas", "inner.on"}
    assert stable_hash({"a": 1, "b": [1, 2]}) == stable_hash({"b": (1, 2), "a": 1})
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})
