"""Jobs and plans: what one invocation will run, in which order, and how a job is recognised again.

A job is a JSON-serialisable `JobSpec`. Its identity is (command, space, policy, seed, phase,
config hash): the same job in a later invocation, even of another `nas` command (the ground truth
of `nas run compare --space 2` and of `nas run ground-truth --space 2`), has the same `job_id`, so
a finished one is found in the tracking store and reused instead of run again.

A `Plan` is a list of stages. A stage builds its jobs from the results of the stages before it
(evaluation jobs train the architectures the search jobs found), so the number of jobs is known
before anything runs while the jobs themselves are not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from naseval.cli.settings import stable_hash

JobStatus = Literal["FINISHED", "FAILED", "REUSED"]


@dataclass(frozen=True)
class JobSpec:
    """One unit of work, as it travels to an executor (in-process or a Ray worker)."""

    command: str  # what the job does: "search", "train", "ground-truth", "ws-ranking", "sharing"
    space: Mapping[str, Any]  # Space.to_dict() of the space it works in
    policy: str | None  # search policy, or None for jobs without one
    seed: int  # the job's seed (search seed; evaluation seed for training jobs)
    phase: str  # where it sits in the protocol: "search", "eval", "ground-truth", "ranking", ...
    config: Mapping[str, Any]  # every resolved setting the job uses (JSON types only)
    inputs: Mapping[str, Any] = field(default_factory=dict)  # e.g. the architecture to train
    label: str = ""  # readable MLflow run name, e.g. "search/darts/seed=3"
    num_cpus: float = 1.0  # resources a Ray task of this job asks for
    num_gpus: float = 0.0

    @property
    def config_hash(self) -> str:
        return stable_hash({"config": self.config, "inputs": self.inputs})

    @property
    def identity(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "space": dict(self.space),
            "policy": self.policy,
            "seed": self.seed,
            "phase": self.phase,
            "config_hash": self.config_hash,
        }

    @property
    def job_id(self) -> str:
        return stable_hash(self.identity)

    @property
    def name(self) -> str:
        return self.label or f"{self.command}/{self.policy or '-'}/seed={self.seed}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "space": dict(self.space),
            "policy": self.policy,
            "seed": self.seed,
            "phase": self.phase,
            "config": dict(self.config),
            "inputs": dict(self.inputs),
            "label": self.label,
            "num_cpus": self.num_cpus,
            "num_gpus": self.num_gpus,
        }


@dataclass(frozen=True)
class JobOutcome:
    """What became of one job."""

    spec: JobSpec
    status: JobStatus  # FINISHED (ran now), REUSED (found finished in the store), FAILED
    result: dict[str, Any] | None  # the job's JSON result; None when it failed
    error: str | None = None  # one-line reason of a failure
    run_id: str | None = None  # its MLflow child run

    @property
    def ok(self) -> bool:
        return self.status != "FAILED"


Results = Mapping[str, JobOutcome]  # job_id -> outcome, of every job run so far
StageBuilder = Callable[[Results], list[JobSpec]]


@dataclass(frozen=True)
class Stage:
    """Jobs that can run in any order once the stages before them have finished."""

    name: str  # shown in the progress display and the summary, e.g. "search"
    expected_jobs: int  # how many jobs it will have (for the estimate printed up front)
    build: StageBuilder  # its jobs, from the outcomes of the earlier stages
    prototype: JobSpec | None = None  # a job like its jobs, for cost estimates before it is built
    known_jobs: tuple[JobSpec, ...] = ()  # its jobs, when they are known before anything runs


@dataclass(frozen=True)
class Plan:
    """Everything one invocation runs, stage by stage, before the driver's analysis."""

    command: str  # the nas command, e.g. "compare"
    stages: Sequence[Stage]

    @property
    def expected_jobs(self) -> int:
        return sum(stage.expected_jobs for stage in self.stages)


def fixed_stage(name: str, jobs: list[JobSpec]) -> Stage:
    """A stage whose jobs are known now."""
    return Stage(name=name, expected_jobs=len(jobs), build=lambda _results: list(jobs),
                 known_jobs=tuple(jobs))


def cost_items(plan: Plan) -> list[tuple[JobSpec, int]]:
    """(representative job, count) pairs covering every stage, for a cost estimate."""
    items: list[tuple[JobSpec, int]] = []
    for stage in plan.stages:
        if stage.known_jobs:
            items.extend((spec, 1) for spec in stage.known_jobs)
        elif stage.prototype is not None:
            items.append((stage.prototype, stage.expected_jobs))
    return items


def seeds_from_option(text: str | None, default: Sequence[int]) -> list[int]:
    """`--seeds 3` -> [0, 1, 2]; `--seeds 0,4,7` -> [0, 4, 7]; None -> `default`."""
    if text is None:
        return list(default)
    text = text.strip()
    try:
        if "," in text:
            seeds = [int(part) for part in text.split(",") if part.strip()]
        else:
            count = int(text)
            if count < 1:
                raise ValueError
            seeds = list(range(count))
    except ValueError:
        raise ValueError(
            f"--seeds takes a count (3) or a comma-separated list (0,4,7), got {text!r}"
        ) from None
    if not seeds or any(seed < 0 for seed in seeds) or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds needs distinct non-negative seeds, got {text!r}")
    return seeds
