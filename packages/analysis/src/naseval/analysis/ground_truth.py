"""The exhaustive ground truth: every architecture of a small space trained on several seeds.

The ground-truth score of an architecture is its MEAN validation perplexity over its training
seeds (diverged seeds dropped and counted); that is the score Kendall tau compares against.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from naseval.analysis._serial import from_jsonable, to_jsonable
from naseval.analysis.errors import AnalysisError
from naseval.analysis.stats import Summary, summarize
from naseval.space import Architecture, InvalidArchitecture

METRICS = ("valid", "test")


def canonical_architecture(text: str | Architecture, where: str) -> str:
    """The canonical text of an architecture ('tanh:0 relu:1'), so spellings compare equal."""
    if isinstance(text, Architecture):
        return str(text)
    try:
        return str(Architecture.parse(text))
    except InvalidArchitecture as exc:
        raise AnalysisError(f"{where}: {exc}") from None


def check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise AnalysisError(f"metric must be one of {METRICS}, got {metric!r}")
    return metric


@dataclass(frozen=True)
class GroundTruth:
    """Validation and test perplexity of each architecture for each training seed."""

    architectures: tuple[str, ...]  # canonical architecture texts, e.g. all 32 of Space(2)
    seeds: tuple[int, ...]  # training seeds, the columns of valid and test
    valid: tuple[
        tuple[float, ...], ...
    ]  # valid[a][s]: validation ppl of arch a, seed s (NaN: diverged)
    test: tuple[tuple[float, ...], ...]  # test[a][s]: test ppl of arch a, seed s (NaN: diverged)

    def __post_init__(self) -> None:
        archs = tuple(
            canonical_architecture(a, f"ground truth architecture {i}")
            for i, a in enumerate(self.architectures)
        )
        if not archs:
            raise AnalysisError("ground truth has no architectures")
        duplicates = sorted({a for a in archs if archs.count(a) > 1})
        if duplicates:
            raise AnalysisError(f"ground truth lists {', '.join(duplicates)} more than once")
        seeds = tuple(int(s) for s in self.seeds)
        if not seeds:
            raise AnalysisError("ground truth has an empty seed list")
        if len(set(seeds)) != len(seeds):
            raise AnalysisError(f"ground truth seeds {seeds} repeat a seed")
        object.__setattr__(self, "architectures", archs)
        object.__setattr__(self, "seeds", seeds)
        for metric in METRICS:
            object.__setattr__(self, metric, self._checked_table(metric))

    def _checked_table(self, metric: str) -> tuple[tuple[float, ...], ...]:
        table = getattr(self, metric)
        try:
            array = np.asarray(table, dtype=float)
        except (TypeError, ValueError):
            raise AnalysisError(f"ground truth {metric} is not a table of numbers") from None
        expected = (len(self.architectures), len(self.seeds))
        if array.shape != expected:
            raise AnalysisError(
                f"ground truth {metric} has shape {array.shape}; expected {expected} "
                "(architectures x seeds)"
            )
        if np.any(array[np.isfinite(array)] <= 0):
            raise AnalysisError(f"ground truth {metric} has a perplexity <= 0")
        for a, row in enumerate(array):
            if not np.isfinite(row).any():
                raise AnalysisError(
                    f"ground truth {metric}: every seed of {self.architectures[a]} diverged"
                )
        return tuple(tuple(float(v) for v in row) for row in array)

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> GroundTruth:
        """Build from one record per (architecture, seed) training run.

        Each record has keys "architecture" (text), "seed" (int), "valid_ppl", "test_ppl".
        Every architecture must have every seed; architectures keep their first-seen order.
        """
        runs: dict[str, dict[int, tuple[float, float]]] = {}
        for i, record in enumerate(records):
            missing = [
                k for k in ("architecture", "seed", "valid_ppl", "test_ppl") if k not in record
            ]
            if missing:
                raise AnalysisError(f"ground-truth record {i} lacks {', '.join(missing)}")
            arch = canonical_architecture(record["architecture"], f"ground-truth record {i}")
            seed = int(record["seed"])
            if seed in runs.setdefault(arch, {}):
                raise AnalysisError(f"ground-truth record {i}: {arch} seed {seed} appears twice")
            runs[arch][seed] = (_as_float(record["valid_ppl"]), _as_float(record["test_ppl"]))
        if not runs:
            raise AnalysisError("ground truth has no records")
        seeds = sorted({s for per_seed in runs.values() for s in per_seed})
        for arch, per_seed in runs.items():
            lacking = [s for s in seeds if s not in per_seed]
            if lacking:
                raise AnalysisError(f"ground truth: {arch} has no run for seed(s) {lacking}")
        return cls(
            architectures=tuple(runs),
            seeds=tuple(seeds),
            valid=tuple(tuple(runs[a][s][0] for s in seeds) for a in runs),
            test=tuple(tuple(runs[a][s][1] for s in seeds) for a in runs),
        )

    # -- scores --------------------------------------------------------------------------------

    def table(self, metric: str = "valid") -> np.ndarray:
        """(architectures, seeds) array of one metric; NaN where a run diverged."""
        return np.asarray(getattr(self, check_metric(metric)), dtype=float)

    def scores(self, metric: str = "valid") -> np.ndarray:
        """Ground-truth score per architecture: the mean over its finite seeds."""
        table = self.table(metric)
        return np.array([row[np.isfinite(row)].mean() for row in table])

    def summaries(self, metric: str = "valid") -> tuple[Summary, ...]:
        return tuple(
            summarize(row, f"{metric} ppl of {arch}")
            for arch, row in zip(self.architectures, self.table(metric))
        )

    def scores_for(self, architectures: Sequence[str], metric: str = "valid") -> np.ndarray:
        """Scores aligned to `architectures`; raises naming any missing from the ground truth."""
        wanted = [
            canonical_architecture(a, f"architecture {i}") for i, a in enumerate(architectures)
        ]
        index = {arch: i for i, arch in enumerate(self.architectures)}
        missing = [a for a in wanted if a not in index]
        if missing:
            raise AnalysisError(
                f"{len(missing)} architecture(s) missing from the ground truth: "
                f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"
            )
        scores = self.scores(metric)
        return np.array([scores[index[a]] for a in wanted])

    def best_index(self) -> int:
        """Index of the best architecture: lowest ground-truth (mean validation) score."""
        return int(np.argmin(self.scores("valid")))

    @property
    def best_architecture(self) -> str:
        return self.architectures[self.best_index()]

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = to_jsonable(self)
        return result

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GroundTruth:
        return from_jsonable(cls, data)


def _as_float(value: Any) -> float:
    if value is None:
        return float("nan")  # JSON carries a diverged run as null
    try:
        return float(value)
    except (TypeError, ValueError):
        raise AnalysisError(f"perplexity {value!r} is not a number") from None
