"""Policies by name, and a builder that turns a name and plain settings into a policy."""

from __future__ import annotations

import dataclasses
from typing import Any

from naseval.policies.darts import DartsPolicy
from naseval.policies.enas import EnasPolicy
from naseval.policies.nao import NaoPolicy
from naseval.policies.random_search import RandomPolicy, RandomWSPolicy

POLICIES: dict[str, type[Any]] = {
    "random": RandomPolicy,
    "random-ws": RandomWSPolicy,
    "enas": EnasPolicy,
    "darts": DartsPolicy,
    "nao": NaoPolicy,
}
"""Registry name -> policy class; each class has `Config`, `needs_mixture`, `trains_supernet`."""


def make_policy(
    name: str, settings: dict[str, Any] | None = None, *, small_space: bool = False
) -> Any:
    """The policy `name` with its Config's defaults (or `small_space()` values) overridden.

    Raises ValueError naming an unknown policy or setting (and listing the valid ones), and
    whatever the Config raises for a bad value (naming the field).
    """
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r} (known: {', '.join(POLICIES)})")
    cls = POLICIES[name]
    base = cls.Config.small_space() if small_space else cls.Config()
    settings = dict(settings or {})
    valid = [f.name for f in dataclasses.fields(base)]
    unknown = sorted(set(settings) - set(valid))
    if unknown:
        listing = ", ".join(valid) if valid else "none"
        raise ValueError(
            f"unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
            f"for policy {name!r} (valid: {listing})"
        )
    return cls(dataclasses.replace(base, **settings))
