"""JSON round trips for the result dataclasses, driven by their type hints.

Every result is a frozen dataclass of numbers, strings, tuples and nested results. `to_jsonable`
turns one into plain lists and dicts (non-finite floats become None, so the output is strict
JSON); `from_jsonable` rebuilds it from what `json.loads` gives back.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from naseval.analysis.errors import AnalysisError

T = TypeVar("T")


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def from_jsonable(cls: type[T], data: Any) -> T:
    result: T = _build(cls, data, cls.__name__)
    return result


def _build(tp: Any, data: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if data is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _build(inner[0], data, where)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(data, Mapping):
            raise AnalysisError(f"{where}: expected an object, got {type(data).__name__}")
        hints = typing.get_type_hints(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            if f.name in data:
                kwargs[f.name] = _build(hints[f.name], data[f.name], f"{where}.{f.name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise AnalysisError(f"{where}: missing field {f.name!r}")
        return tp(**kwargs)
    if origin in (tuple, list):
        if not isinstance(data, list | tuple):
            raise AnalysisError(f"{where}: expected a list, got {type(data).__name__}")
        item = args[0] if args else Any
        items = [_build(item, v, f"{where}[{i}]") for i, v in enumerate(data)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(data, Mapping):
            raise AnalysisError(f"{where}: expected an object, got {type(data).__name__}")
        key_type, value_type = args
        return {
            _build(key_type, k, where): _build(value_type, v, f"{where}[{k!r}]")
            for k, v in data.items()
        }
    if tp is float:
        if data is None:
            return math.nan
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise AnalysisError(f"{where}: expected a number, got {data!r}")
        return float(data)
    if tp is int:
        if isinstance(data, bool) or not isinstance(data, int | str):
            raise AnalysisError(f"{where}: expected an integer, got {data!r}")
        return int(data)
    if tp is str:
        if not isinstance(data, str):
            raise AnalysisError(f"{where}: expected a string, got {data!r}")
        return data
    if tp is bool:
        if not isinstance(data, bool):
            raise AnalysisError(f"{where}: expected true or false, got {data!r}")
        return data
    return data
