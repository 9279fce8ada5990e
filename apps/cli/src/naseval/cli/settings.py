"""Generic, validated edits of nested dataclass configs: `--set key=value` and `--config FILE`.

A config is a tree of dataclasses (the CLI's presets hold the libraries' own config dataclasses).
Keys are dotted field paths (`evaluation.epochs`, `search.hidden`); values are parsed by the
field's annotation (int, float, bool, str, Optional[...], tuple[...], Literal[...]), so a typo or
a value of the wrong type is reported before anything runs, with the closest valid keys.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import sys
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class SettingError(ValueError):
    """A `--set`/`--config` entry names no field or holds a value the field cannot take."""


def parse_assignments(items: Iterable[str]) -> dict[str, str]:
    """`["a.b=3", "c=x"]` -> `{"a.b": "3", "c": "x"}`; an item without `=` is an error."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SettingError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def load_toml(path: Path) -> dict[str, Any]:
    """A TOML file flattened to dotted keys: `[evaluation] epochs = 3` -> `{"evaluation.epochs": 3}`."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise SettingError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise SettingError(f"config file {path} is not valid TOML: {error}") from None
    return _flatten_mapping(data)


def _flatten_mapping(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten_mapping(value, prefix=f"{path}."))
        else:
            out[path] = value
    return out


def field_paths(config: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf field of a dataclass tree by dotted path, with its current value."""
    out: dict[str, Any] = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        path = f"{prefix}{field.name}"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            out.update(field_paths(value, prefix=f"{path}."))
        else:
            out[path] = value
    return out


def apply_settings(config: Any, settings: Mapping[str, Any]) -> Any:
    """A copy of the dataclass tree `config` with `settings` (dotted key -> value) applied.

    String values (from `--set`) are parsed by the field's type; typed values (from TOML) are
    checked against it. All changes to one dataclass are applied together, so fields that must
    agree (a config's `__post_init__` check) can be set in one go. Raises SettingError naming
    the bad key and the closest valid ones.
    """
    tree: dict[str, Any] = {}
    for key, value in settings.items():
        parts = key.split(".")
        node = tree
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise SettingError(f"{key} conflicts with another setting of {part}")
            node = child
        node[parts[-1]] = _Leaf(key, value)
    return _apply_tree(config, tree, root=config)


@dataclasses.dataclass(frozen=True)
class _Leaf:
    key: str  # the full dotted key, for messages
    value: Any


def _apply_tree(node: Any, changes: dict[str, Any], *, root: Any) -> Any:
    fields = {field.name for field in dataclasses.fields(node)}
    hints = typing.get_type_hints(type(node))
    new_values: dict[str, Any] = {}
    for name, change in changes.items():
        if name not in fields:
            raise _unknown_key(_first_key(change, name), root)
        current = getattr(node, name)
        is_group = dataclasses.is_dataclass(current) and not isinstance(current, type)
        if isinstance(change, dict):
            if not is_group:
                raise _unknown_key(_first_key(change, name), root)
            new_values[name] = _apply_tree(current, change, root=root)
        elif is_group:
            first = dataclasses.fields(current)[0].name
            raise SettingError(
                f"{change.key} is a group of settings, not one value; set one of its fields, "
                f"e.g. {change.key}.{first}"
            )
        else:
            new_values[name] = coerce(change.value, hints.get(name, Any), key=change.key)
    try:
        return dataclasses.replace(node, **new_values)
    except (ValueError, TypeError) as error:
        raise SettingError(f"invalid settings: {error}") from None


def _first_key(change: Any, name: str) -> str:
    while isinstance(change, dict):
        change = next(iter(change.values()))
    return change.key if isinstance(change, _Leaf) else name


def _unknown_key(key: str, root: Any) -> SettingError:
    known = list(field_paths(root))
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
    if not close:  # match on the last part: `epochs` -> `evaluation.epochs`
        last = key.rsplit(".", 1)[-1]
        close = [path for path in known if path.rsplit(".", 1)[-1] == last][:3]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return SettingError(f"unknown setting {key!r}{hint} (`nas config` lists every key)")


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def coerce(value: Any, annotation: Any, *, key: str) -> Any:
    """`value` as the type `annotation` describes; strings are parsed, other values checked."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return _parse_literal(value) if isinstance(value, str) else value
    if origin in (typing.Union, types.UnionType):
        is_none = value is None or (isinstance(value, str) and value.lower() in ("none", "null", ""))
        if is_none and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, key=key)
            except SettingError as error:
                errors.append(str(error))
        raise SettingError(errors[0] if errors else f"{key} cannot be {value!r}")
    if origin is typing.Literal:
        for choice in args:
            if value == choice or (isinstance(value, str) and str(choice) == value):
                return choice
        raise SettingError(f"{key} must be one of {', '.join(map(str, args))}, got {value!r}")
    if origin in (tuple, list):
        items = _split_sequence(value, key=key)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(items) != len(args):
                raise SettingError(f"{key} needs {len(args)} values, got {len(items)}")
            return tuple(coerce(item, arg, key=key) for item, arg in zip(items, args))
        item_type = args[0] if args else Any
        coerced = [coerce(item, item_type, key=key) for item in items]
        return tuple(coerced) if origin is tuple else coerced
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise SettingError(f"{key} must be true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, bool):
            raise SettingError(f"{key} must be an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value.replace("_", ""))
            except ValueError:
                pass
        raise SettingError(f"{key} must be an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise SettingError(f"{key} must be a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise SettingError(f"{key} must be a string, got {value!r}")
    if isinstance(annotation, type) and isinstance(value, annotation):
        return value
    if isinstance(value, str):
        return _parse_literal(value)
    return value


def _split_sequence(value: Any, *, key: str) -> list[Any]:
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError:
                raise SettingError(f"{key}: {value!r} is not a JSON list") from None
            return list(parsed)
        return [part.strip() for part in text.split(",") if part.strip()]
    raise SettingError(f"{key} must be a list, got {value!r}")


def _parse_literal(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def to_jsonable(config: Any) -> Any:
    """A dataclass tree (or any value) as plain JSON types; tuples become lists."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {field.name: to_jsonable(getattr(config, field.name)) for field in dataclasses.fields(config)}
    if isinstance(config, Mapping):
        return {str(key): to_jsonable(value) for key, value in config.items()}
    if isinstance(config, list | tuple):
        return [to_jsonable(item) for item in config]
    if isinstance(config, Path):
        return str(config)
    return config


def flat_params(config: Any, prefix: str = "") -> dict[str, str]:
    """Every leaf value by dotted key, as strings (MLflow params)."""
    return {key: json.dumps(to_jsonable(value)) if not isinstance(value, str) else value
            for key, value in field_paths(config, prefix).items()}


def stable_hash(data: Any, length: int = 16) -> str:
    """A short hash of a JSON-able value that does not depend on key order."""
    text = json.dumps(to_jsonable(data), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
