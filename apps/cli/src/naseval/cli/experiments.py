"""Each `nas run` command as a plan of jobs and an analysis of their outcomes.

Builders here turn a resolved `Preset` into `JobSpec`s (small functions, one per kind of job) and
stages into a `Plan`; the `analyse_*` functions turn outcomes into a `Report` with the paper's
tables (naseval.analysis) and figures.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from naseval.cli.driver import Report
from naseval.cli.plan import JobOutcome, JobSpec, Plan, Results, Stage, fixed_stage
from naseval.cli.presets import Preset
from naseval.cli.settings import to_jsonable
from naseval.space import Architecture, Space

GROUND_TRUTH_MAX_SIZE = 512  # spaces small enough to train exhaustively (Space(2): 32, Space(3): 384)

# -- job specs -------------------------------------------------------------------------------


def _resources(preset: Preset) -> dict[str, Any]:
    return {"num_cpus": preset.resources.num_cpus, "num_gpus": preset.resources.num_gpus}


def search_spec(preset: Preset, space: Space, policy: str, seed: int) -> JobSpec:
    """A policy's search with one seed; Random's identity leaves out the supernet it never builds."""
    from naseval.policies import POLICIES

    config: dict[str, Any] = {
        "data": to_jsonable(preset.data),
        "budget": to_jsonable(preset.search.budget_for(policy)),
        "policy": to_jsonable(preset.policy_config(policy, space.size)),
    }
    if POLICIES[policy].trains_supernet:
        config["supernet"] = to_jsonable(preset.search.supernet)
        config["sharing"] = preset.search.sharing
        config["data"] = to_jsonable(preset.data)
    else:
        config.pop("data")  # Random draws from the space; it reads no data
    return JobSpec(
        command="search", space=space.to_dict(), policy=policy, seed=seed, phase="search",
        config=config, label=f"search/{policy}/seed={seed}", **_resources(preset),
    )


def train_spec(preset: Preset, space: Space, arch: str, *, policy: str | None, seed: int,
               label: str) -> JobSpec:
    """`arch` trained from scratch with the preset's ONE evaluation seed."""
    return JobSpec(
        command="train", space=space.to_dict(), policy=policy, seed=seed, phase="eval",
        config={
            "data": to_jsonable(preset.data),
            "train": to_jsonable(preset.evaluation.train),
            "train_seed": preset.evaluation.seed,
        },
        inputs={"arch": str(Architecture.parse(arch))}, label=label, **_resources(preset),
    )


def ground_truth_specs(preset: Preset, space: Space) -> list[JobSpec]:
    """Every architecture of `space`, one job per training seed (they parallelise on Ray)."""
    return [
        JobSpec(
            command="ground-truth", space=space.to_dict(), policy=None, seed=seed,
            phase="ground-truth",
            config={"data": to_jsonable(preset.data), "train": to_jsonable(preset.ground_truth.train)},
            label=f"ground-truth/space={space.n_nodes}/seed={seed}", **_resources(preset),
        )
        for seed in range(preset.ground_truth.seeds)
    ]


def ranking_specs(preset: Preset, space: Space, *, phase: str, sharing: str | None = None) -> list[JobSpec]:
    """A uniformly trained supernet per seed, and its WS ranking of every architecture."""
    scheme = sharing or preset.search.sharing
    return [
        JobSpec(
            command="ws-ranking", space=space.to_dict(), policy=None, seed=seed, phase=phase,
            config={
                "data": to_jsonable(preset.data),
                "supernet": to_jsonable(preset.ranking.supernet),
                "eval_batches": preset.ranking.eval_batches,
                "sharing": scheme,
            },
            label=f"{phase}/space={space.n_nodes}/{scheme}/seed={seed}", **_resources(preset),
        )
        for seed in range(preset.ranking.seeds)
    ]


def sharing_space(preset: Preset) -> Space:
    """The sharing study's space: the fixed first nodes, then the free ones (paper: Space(3))."""
    return Space(preset.ranking.sharing_nodes, fixed=Architecture.parse(preset.ranking.sharing_fixed))


# -- plans -----------------------------------------------------------------------------------


def _eval_stage(preset: Preset, space: Space, searches: Sequence[JobSpec]) -> Stage:
    search_ids = {spec.job_id: spec for spec in searches}

    def build(results: Results) -> list[JobSpec]:
        specs = []
        for job_id, search in search_ids.items():
            outcome = results.get(job_id)
            if outcome is None or not outcome.ok or outcome.result is None:
                continue
            specs.append(train_spec(
                preset, space, outcome.result["arch"], policy=search.policy, seed=search.seed,
                label=f"train/{search.policy}/seed={search.seed}",
            ))
        return specs

    prototype = None
    if searches:
        first = searches[0]
        prototype = train_spec(preset, space, str(space.at(0)), policy=first.policy, seed=first.seed,
                               label="train/prototype")
    return Stage(name="evaluation", expected_jobs=len(searches), build=build, prototype=prototype)


def compare_stages(preset: Preset, space: Space, policies: Sequence[str], seeds: Sequence[int],
                   *, with_ground_truth: bool) -> list[Stage]:
    searches = [search_spec(preset, space, p, s) for p in policies for s in seeds]
    stages = [fixed_stage("search", searches), _eval_stage(preset, space, searches)]
    if with_ground_truth:
        stages.append(fixed_stage("ground-truth", ground_truth_specs(preset, space)))
    return stages


def compare_plan(preset: Preset, space: Space, policies: Sequence[str], seeds: Sequence[int],
                 *, with_ground_truth: bool) -> Plan:
    """Search (policy x seed) -> train each found architecture -> [ground truth of a small space]."""
    return Plan("compare", compare_stages(preset, space, policies, seeds,
                                          with_ground_truth=with_ground_truth))


def search_plan(preset: Preset, space: Space, policy: str, seed: int) -> Plan:
    return Plan("search", [fixed_stage("search", [search_spec(preset, space, policy, seed)])])


def train_plan(preset: Preset, arch: Architecture) -> Plan:
    space = Space(arch.n_nodes)
    spec = train_spec(preset, space, str(arch), policy=None, seed=preset.evaluation.seed,
                      label=f"train/{arch}/seed={preset.evaluation.seed}")
    return Plan("train", [fixed_stage("train", [spec])])


def ground_truth_plan(preset: Preset, space: Space) -> Plan:
    return Plan("ground-truth", [fixed_stage("ground-truth", ground_truth_specs(preset, space))])


def ws_ranking_plan(preset: Preset, space: Space) -> Plan:
    """The ground truth (reused when finished) and one WS ranking per supernet seed."""
    return Plan("ws-ranking", [
        fixed_stage("ground-truth", ground_truth_specs(preset, space)),
        fixed_stage("ws-ranking", ranking_specs(preset, space, phase="ws-ranking")),
    ])


def sharing_plan(preset: Preset) -> Plan:
    space = sharing_space(preset)
    return Plan("sharing", [fixed_stage("sharing", ranking_specs(preset, space, phase="sharing"))])


def _prefixed(stages: list[Stage], prefix: str) -> list[Stage]:
    """The same stages with `prefix/` in front of every job label (labels are not identity)."""
    def relabel(spec: JobSpec) -> JobSpec:
        return dataclasses.replace(spec, label=f"{prefix}/{spec.name}")

    def wrap(stage: Stage) -> Stage:
        return Stage(
            name=f"{prefix}/{stage.name}", expected_jobs=stage.expected_jobs,
            build=lambda results: [relabel(s) for s in stage.build(results)],
            prototype=stage.prototype, known_jobs=tuple(relabel(s) for s in stage.known_jobs),
        )

    return [wrap(stage) for stage in stages]


def paper_plan(preset: Preset, policies: Sequence[str], seeds: Sequence[int]) -> tuple[Plan, Analyse]:
    """The whole study: Table 2 (8 nodes), Table 3 (2 nodes), Figure 4 (WS ranking), Figure 5."""
    big, small, shared = Space(8), Space(2), sharing_space(preset)
    stages = (
        _prefixed(compare_stages(preset, big, policies, seeds, with_ground_truth=False), "space=8")
        + _prefixed(compare_stages(preset, small, policies, seeds, with_ground_truth=True), "space=2")
        + [fixed_stage("ws-ranking", ranking_specs(preset, small, phase="ws-ranking")),
           fixed_stage("sharing", ranking_specs(preset, shared, phase="sharing"))]
    )
    parts = [
        compare_analysis(big, f"8-node space, {len(seeds)} seeds, preset {preset.name}", stem="table_space8"),
        compare_analysis(small, f"2-node space, {len(seeds)} seeds, preset {preset.name}", stem="table_space2"),
        ws_ranking_analysis(small),
        sharing_analysis(shared),
    ]
    return Plan("paper", stages), combined_analysis(parts, title=f"naseval paper study ({preset.name} preset)")


# -- analyses --------------------------------------------------------------------------------


Analyse = Callable[[Mapping[str, JobOutcome], Path], Report]


def _ok(outcomes: Mapping[str, JobOutcome], command: str, phase: str | None = None) -> list[JobOutcome]:
    return [
        o for o in outcomes.values()
        if o.ok and o.result is not None and o.spec.command == command
        and (phase is None or o.spec.phase == phase)
    ]


def seed_runs(outcomes: Mapping[str, JobOutcome], space: Space) -> dict[str, list[dict[str, Any]]]:
    """Per policy, one record per search seed of what it found and how that trained."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for outcome in _ok(outcomes, "train", "eval"):
        if dict(outcome.spec.space) != space.to_dict() or outcome.result is None:
            continue
        result = outcome.result
        runs.setdefault(str(outcome.spec.policy), []).append({
            "seed": outcome.spec.seed,
            "architecture": result["arch"],
            "valid_ppl": result.get("valid_ppl"),
            "test_ppl": result.get("test_ppl"),
            "valid_curve": [v for v in result.get("valid_curve", []) if _positive(v)],
        })
    for records in runs.values():
        records.sort(key=lambda r: r["seed"])
    return runs


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def ground_truth_records(outcomes: Mapping[str, JobOutcome], space: Space) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for outcome in sorted(_ok(outcomes, "ground-truth"), key=lambda o: o.spec.seed):
        if dict(outcome.spec.space) == space.to_dict() and outcome.result is not None:
            records.extend(outcome.result["records"])
    return records


@dataclass
class _Artifacts:
    """Tables and figures accumulated into one report."""

    scratch: Path
    files: dict[str, str]
    figures: dict[str, Path]
    text: list[str]

    def table(self, stem: str, table: Any) -> None:
        self.files[f"{stem}.md"] = table.to_markdown()
        self.files[f"{stem}.csv"] = table.to_csv()
        self.files[f"{stem}.tex"] = table.to_latex()
        self.text.append(table.to_markdown())

    def figure(self, stem: str, draw: Callable[[], Any]) -> None:
        from naseval.analysis import AnalysisError, figures

        try:
            figure = draw()
        except AnalysisError:  # nothing to draw (e.g. only the random baseline ran)
            return
        for path in figures.save_figure(figure, self.scratch / stem, formats=("png",)):
            self.figures[path.name] = path
        import matplotlib.pyplot as plt

        plt.close(figure)


def compare_analysis(space: Space, note: str, stem: str = "table") -> Analyse:
    def analyse(outcomes: Mapping[str, JobOutcome], scratch: Path) -> Report:
        from naseval.analysis import (
            GroundTruth,
            compare_policies,
            comparison_table,
            versus_random_table,
        )

        runs = seed_runs(outcomes, space)
        records = ground_truth_records(outcomes, space)
        truth = GroundTruth.from_records(records) if records else None
        artifacts = _Artifacts(scratch, {}, {}, [])
        results: dict[str, Any] = {"space": space.to_dict(), "runs": runs}
        if runs:
            study = compare_policies(runs, random_key="random", ground_truth=truth, note=note)
            artifacts.table(stem, comparison_table(study))
            if study.versus_random:
                artifacts.table(f"{stem}_versus_random", versus_random_table(study))
            results["comparison"] = study.to_dict()

            def curves() -> Any:
                from naseval.analysis.figures import perplexity_curves_figure

                return perplexity_curves_figure(study)

            if any(r["valid_curve"] for rs in runs.values() for r in rs):
                artifacts.figure(f"curves_space{space.n_nodes}", curves)
        if truth is not None:
            results["ground_truth"] = truth.to_dict()
        return Report(results=results, text="\n".join(artifacts.text), files=artifacts.files,
                      figures=artifacts.figures)

    return analyse


def search_analysis() -> Analyse:
    def analyse(outcomes: Mapping[str, JobOutcome], scratch: Path) -> Report:
        found = [o.result for o in _ok(outcomes, "search") if o.result is not None]
        lines = []
        for result in found:
            search = result.get("search", {})
            lines.append(f"found: {result['arch']}")
            for arch, score in search.get("ranking", [])[:5]:
                lines.append(f"  {arch}\t{score:.4g}")
        return Report(results={"searches": found}, text="\n".join(lines))

    return analyse


def train_analysis() -> Analyse:
    def analyse(outcomes: Mapping[str, JobOutcome], scratch: Path) -> Report:
        trained = [o.result for o in _ok(outcomes, "train") if o.result is not None]
        lines = [f"{r['arch']}: valid ppl {_show(r.get('valid_ppl'))}, test ppl {_show(r.get('test_ppl'))}"
                 for r in trained]
        return Report(results={"trained": trained}, text="\n".join(lines))

    return analyse


def _show(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) else "diverged"


def ground_truth_analysis(space: Space) -> Analyse:
    def analyse(outcomes: Mapping[str, JobOutcome], scratch: Path) -> Report:
        from naseval.analysis import GroundTruth, ground_truth_table

        records = ground_truth_records(outcomes, space)
        artifacts = _Artifacts(scratch, {}, {}, [])
        results: dict[str, Any] = {"space": space.to_dict(), "records": records}
        if records:
            truth = GroundTruth.from_records(records)
            artifacts.table("ground_truth", ground_truth_table(truth))
            results["ground_truth"] = truth.to_dict()
        return Report(results=results, text="\n".join(artifacts.text), files=artifacts.files)

    return analyse


def _ws_scores(outcomes: Mapping[str, JobOutcome], space: Space, phase: str) -> dict[int, dict[str, float]]:
    return {
        o.spec.seed: o.result["scores"]
        for o in sorted(_ok(outcomes, "ws-ranking", phase), key=lambda o: o.spec.seed)
        if o.result is not None and dict(o.spec.space) == space.to_dict()
    }


def ws_ranking_analysis(space: Space) -> Analyse:
    def analyse(outcomes: Mapping[str, JobOutcome], scratch: Path) -> Report:
        from naseval.analysis import GroundTruth, ws_ranking_study, ws_ranking_table

        records = ground_truth_records(outcomes, space)
        scores = _ws_scores(outcomes, space, "ws-ranking")
        artifacts = _Artifacts(scratch, {}, {}, [])
        results: dict[str, Any] = {"space": space.to_dict(), "ws_scores": scores}
        if records and scores:
            truth = GroundTruth.from_records(records)
            study = ws_ranking_study(truth, scores)
            artifacts.table("ws_ranking", ws_ranking_table(study))
            results["ws_ranking"] = study.to_dict()

            def rank_changes() -> Any:
                from naseval.analysis.figures import rank_changes_figure

                return rank_changes_figure(study)

            artifacts.figure("rank_changes", rank_changes)
        return Report(results=results, text="\n".join(artifacts.text), files=artifacts.files,
                      figures=artifacts.figures)

    return analyse


def sharing_analysis(space: Space) -> Analyse:
    def analyse(outcomes: Mapping[str, JobOutcome], scratch: Path) -> Report:
        from naseval.analysis import sharing_study, sharing_table

        scores = _ws_scores(outcomes, space, "sharing")
        artifacts = _Artifacts(scratch, {}, {}, [])
        results: dict[str, Any] = {"space": space.to_dict(), "ws_scores": scores}
        if scores and space.fixed is not None:
            study = sharing_study(scores, space.fixed)
            artifacts.table("sharing", sharing_table(study))
            results["sharing"] = study.to_dict()

            def figure() -> Any:
                from naseval.analysis.figures import sharing_figure

                return sharing_figure(study)

            artifacts.figure("sharing", figure)
        return Report(results=results, text="\n".join(artifacts.text), files=artifacts.files,
                      figures=artifacts.figures)

    return analyse


def combined_analysis(parts: Sequence[Analyse], title: str) -> Analyse:
    """Several analyses as one report (`nas run paper`), with a Markdown report.md."""
    def analyse(outcomes: Mapping[str, JobOutcome], scratch: Path) -> Report:
        reports = [part(outcomes, scratch) for part in parts]
        files: dict[str, str] = {}
        figures: dict[str, Path] = {}
        for report in reports:
            files.update(report.files)
            figures.update(report.figures)
        text = "\n\n".join(r.text for r in reports if r.text)
        files["report.md"] = f"# {title}\n\n{text}\n" + "".join(
            f"\n![{name}](figures/{name})\n" for name in figures)
        return Report(results={"parts": [r.results for r in reports]}, text=text, files=files,
                      figures=figures)

    return analyse
