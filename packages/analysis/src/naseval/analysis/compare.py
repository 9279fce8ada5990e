"""Search policies against a random architecture: the paper's Tables 2 and 3, and more.

Input: per policy ("darts", "nao", "enas", "random-ws", ... and the baseline "random", a single
uniformly random architecture per seed), one `SeedRun` per search seed: the architecture found,
its validation and test perplexity after training from scratch, and its per-epoch validation
curve. A run whose validation or test perplexity is not finite (it diverged) is dropped from its
row and counted.

BEST VALID is the lowest validation perplexity over seeds; BEST TEST is the test perplexity of
that same run (selected on validation, never on test).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from naseval.analysis._serial import from_jsonable, to_jsonable
from naseval.analysis.errors import AnalysisError
from naseval.analysis.ground_truth import GroundTruth, canonical_architecture, check_metric
from naseval.analysis.stats import (
    DEFAULT_RESAMPLES,
    STD_DDOF,
    RandomComparison,
    Summary,
    compare_to_random,
    summarize,
)

RANDOM_LABEL = "RANDOM"
REAL_BEST_LABEL = "REAL-BEST"


@dataclass(frozen=True)
class SeedRun:
    """One search seed of one policy: what it found and how that trained from scratch."""

    seed: int  # the search seed (for the random baseline: the sampling seed)
    architecture: str  # canonical text of the architecture found, e.g. "tanh:0 relu:1"
    valid_ppl: float  # final validation perplexity after training from scratch (NaN: diverged)
    test_ppl: float  # final test perplexity after training from scratch (NaN: diverged)
    valid_curve: tuple[float, ...] = ()  # validation perplexity after each training epoch

    def __post_init__(self) -> None:
        where = f"seed {self.seed!r}"
        if isinstance(self.seed, bool) or not isinstance(self.seed, int | np.integer):
            raise AnalysisError(f"{where}: the seed must be an integer")
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "architecture", canonical_architecture(self.architecture, where))
        for name in ("valid_ppl", "test_ppl"):
            object.__setattr__(self, name, _perplexity(getattr(self, name), f"{where} {name}"))
        curve = tuple(_perplexity(v, f"{where} valid_curve") for v in self.valid_curve)
        object.__setattr__(self, "valid_curve", curve)

    @property
    def finished(self) -> bool:
        """Both final perplexities are finite: the run counts in the table."""
        return math.isfinite(self.valid_ppl) and math.isfinite(self.test_ppl)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SeedRun:
        return from_jsonable(cls, data)


def _perplexity(value: Any, where: str) -> float:
    if value is None:
        return math.nan  # a diverged value, as JSON carries it
    if isinstance(value, bool):
        raise AnalysisError(f"{where}: {value!r} is not a perplexity")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise AnalysisError(f"{where}: {value!r} is not a number") from None
    if number <= 0:
        raise AnalysisError(f"{where}: perplexity must be > 0, got {number}")
    return number


@dataclass(frozen=True)
class TableRow:
    """One row of Table 2/3: a policy (or RANDOM, or REAL-BEST) summarised over seeds."""

    label: str  # row label, e.g. "DARTS", "RANDOM", "REAL-BEST"
    valid: Summary  # validation ppl over seeds
    test: Summary  # test ppl over seeds
    best_valid: float  # lowest validation ppl
    best_test: float  # test ppl of the run with the lowest validation ppl
    best_seed: int  # the seed of that run
    best_architecture: str  # the architecture of that run


@dataclass(frozen=True)
class ComparisonStudy:
    """Everything `nas run compare` reports, and the runs to redraw Figure 3 from."""

    rows: tuple[TableRow, ...]  # table order: policies as given, then RANDOM, then REAL-BEST
    versus_random: tuple[RandomComparison, ...]  # each policy vs random, on valid and on test
    runs: dict[str, tuple[SeedRun, ...]]  # the input, per policy name
    random_key: str | None  # the policy name of the random baseline, if present
    std_ddof: int  # ddof of every std in the rows
    note: str = ""  # free text shown under the table, e.g. "8-node space, 10 seeds"

    def row(self, label: str) -> TableRow:
        for row in self.rows:
            if row.label == label:
                return row
        raise AnalysisError(f"no row {label!r}; rows are {[r.label for r in self.rows]}")

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = to_jsonable(self)
        return result

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ComparisonStudy:
        return from_jsonable(cls, data)


def as_runs(policy: str, runs: Sequence[SeedRun | Mapping[str, Any]]) -> tuple[SeedRun, ...]:
    """Validate one policy's runs: a non-empty list, each seed once."""
    if isinstance(runs, str | bytes) or not isinstance(runs, Sequence) or not runs:
        raise AnalysisError(f"policy {policy!r} has an empty seed list")
    parsed = []
    for i, run in enumerate(runs):
        if isinstance(run, SeedRun):
            parsed.append(run)
        elif isinstance(run, Mapping):
            try:
                parsed.append(SeedRun.from_dict(run))
            except AnalysisError as exc:
                raise AnalysisError(f"policy {policy!r} run {i}: {exc}") from None
        else:
            raise AnalysisError(f"policy {policy!r} run {i} is {type(run).__name__}, not a SeedRun")
    seeds = [r.seed for r in parsed]
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise AnalysisError(f"policy {policy!r} repeats seed(s) {repeated}")
    return tuple(parsed)


def policy_row(label: str, runs: Sequence[SeedRun]) -> TableRow:
    """Summaries over the finished runs; raises if every run diverged."""
    finished = [r for r in runs if r.finished]
    dropped = len(runs) - len(finished)
    if not finished:
        raise AnalysisError(f"{label}: all {len(runs)} runs diverged (no finite perplexity)")
    best = min(finished, key=lambda r: r.valid_ppl)
    valid, test = (
        summarize([r.valid_ppl for r in finished]),
        summarize([r.test_ppl for r in finished]),
    )
    return TableRow(
        label=label,
        valid=Summary(valid.mean, valid.std, valid.best, valid.n, dropped),
        test=Summary(test.mean, test.std, test.best, test.n, dropped),
        best_valid=best.valid_ppl,
        best_test=best.test_ppl,
        best_seed=best.seed,
        best_architecture=best.architecture,
    )


def real_best_row(ground_truth: GroundTruth) -> TableRow:
    """REAL-BEST: the truly best architecture, over ITS training seeds (mean, std, best seed)."""
    index = ground_truth.best_index()
    runs = [
        SeedRun(seed, ground_truth.architectures[index], valid, test)
        for seed, valid, test in zip(
            ground_truth.seeds, ground_truth.valid[index], ground_truth.test[index]
        )
    ]
    return policy_row(REAL_BEST_LABEL, runs)


def _paired_values(
    policy_runs: Sequence[SeedRun], random_runs: Sequence[SeedRun], metric: str
) -> tuple[list[float], list[float]]:
    by_seed = {r.seed: r for r in random_runs}
    common = [r for r in policy_runs if r.seed in by_seed]
    pairs = [(r, by_seed[r.seed]) for r in common if r.finished and by_seed[r.seed].finished]
    key = f"{check_metric(metric)}_ppl"
    return [getattr(p, key) for p, _ in pairs], [getattr(q, key) for _, q in pairs]


def _is_paired(policy_runs: Sequence[SeedRun], random_runs: Sequence[SeedRun]) -> bool:
    return {r.seed for r in policy_runs} == {r.seed for r in random_runs}


def versus_random(
    policy: str,
    policy_runs: Sequence[SeedRun],
    random_runs: Sequence[SeedRun],
    *,
    paired: bool | None = None,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    bootstrap_seed: int = 0,
) -> tuple[RandomComparison, ...]:
    """The policy against random on validation and on test perplexity.

    `paired=None` pairs runs by seed when both used exactly the same seeds.
    """
    is_paired = _is_paired(policy_runs, random_runs) if paired is None else paired
    if is_paired and not _is_paired(policy_runs, random_runs):
        raise AnalysisError(f"{policy!r} and random cannot be paired: their seeds differ")
    results = []
    for metric in ("valid", "test"):
        if is_paired:
            ours, theirs = _paired_values(policy_runs, random_runs, metric)
        else:
            ours = [getattr(r, f"{metric}_ppl") for r in policy_runs if r.finished]
            theirs = [getattr(r, f"{metric}_ppl") for r in random_runs if r.finished]
        if not ours or not theirs:
            raise AnalysisError(f"{policy!r} vs random: no finished runs to compare on {metric}")
        results.append(
            compare_to_random(
                ours,
                theirs,
                policy=policy,
                metric=metric,
                paired=is_paired,
                confidence=confidence,
                n_resamples=n_resamples,
                seed=bootstrap_seed,
            )
        )
    return tuple(results)


def compare_policies(
    runs: Mapping[str, Sequence[SeedRun | Mapping[str, Any]]],
    *,
    random_key: str | None = "random",
    ground_truth: GroundTruth | None = None,
    paired: bool | None = None,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    bootstrap_seed: int = 0,
    note: str = "",
) -> ComparisonStudy:
    """Table rows and policy-vs-random statistics from per-policy, per-seed results.

    `runs`: {policy name: [SeedRun or dict with keys seed, architecture, valid_ppl, test_ppl,
    valid_curve]}. `random_key` names the random-architecture baseline (row RANDOM; every other
    policy is tested against it); None or absent from `runs` skips the tests. `ground_truth`
    (the 2-node space) adds the REAL-BEST row.
    """
    if not isinstance(runs, Mapping) or not runs:
        raise AnalysisError("runs is empty: give at least one policy with its seeds")
    parsed = {str(name): as_runs(str(name), policy_runs) for name, policy_runs in runs.items()}
    baseline = random_key if random_key in parsed else None
    policies = [name for name in parsed if name != baseline]
    rows = [policy_row(name.upper(), parsed[name]) for name in policies]
    tests: list[RandomComparison] = []
    if baseline is not None:
        rows.append(policy_row(RANDOM_LABEL, parsed[baseline]))
        for name in policies:
            tests += versus_random(
                name,
                parsed[name],
                parsed[baseline],
                paired=paired,
                confidence=confidence,
                n_resamples=n_resamples,
                bootstrap_seed=bootstrap_seed,
            )
    if ground_truth is not None:
        rows.append(real_best_row(ground_truth))
    return ComparisonStudy(
        rows=tuple(rows),
        versus_random=tuple(tests),
        runs=parsed,
        random_key=baseline,
        std_ddof=STD_DDOF,
        note=note,
    )
