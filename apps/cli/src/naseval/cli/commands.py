"""What each `nas` command does, behind the Typer signatures in main.py.

Run commands resolve the preset (`--config`, then `--set`), build a plan (experiments.py),
print the scale, the job count and a cost estimate, and hand the plan to the driver.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from naseval.cli import experiments
from naseval.cli.console import Console, format_seconds
from naseval.cli.costs import estimate
from naseval.cli.driver import Driver, Invocation, RunSummary
from naseval.cli.errors import JobsFailed, UsageError
from naseval.cli.execution import DEFAULT_JOBS_MODULE, quiet_mlflow
from naseval.cli.executors import make_executor
from naseval.cli.plan import Plan, cost_items, seeds_from_option
from naseval.cli.presets import PRESETS, Preset
from naseval.cli.provenance import provenance_tags
from naseval.cli.settings import (
    apply_settings,
    field_paths,
    flat_params,
    load_toml,
    parse_assignments,
    to_jsonable,
)
from naseval.cli.tracking import Tracker, check_reachable, is_server_uri, resolve_tracking_uri
from naseval.space import Architecture, Space

JOBS_MODULE_ENV = "NASEVAL_CLI_JOBS"  # another module of job bodies (tests, plugins)


@dataclass(frozen=True)
class CommonOptions:
    """The options every run command takes."""

    preset: str  # preset name: quick or paper
    settings: list[str]  # --set KEY=VALUE items, applied after --config
    config_file: Path | None  # --config TOML file
    device: str  # auto, cpu or cuda
    tracking_uri: str | None  # --tracking-uri (else MLFLOW_TRACKING_URI, else ./mlflow.db)
    experiment: str | None  # --experiment (else naseval-<command>)
    executor: str  # local or ray
    ray_address: str | None  # --ray-address (else RAY_ADDRESS, else a local Ray)
    out: Path | None  # --out DIR
    resume: bool  # --resume (default) / --fresh
    json: bool  # --json: results as JSON on stdout
    workdir: Path | None  # checkpoints root (default .naseval/ beside a sqlite store, or cwd)
    dry_run: bool = False  # print the jobs and the estimate, run nothing


# -- resolving input -------------------------------------------------------------------------


def resolve_preset(name: str, settings: Sequence[str], config_file: Path | None) -> Preset:
    if name not in PRESETS:
        raise UsageError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    preset = PRESETS[name]()
    if config_file is not None:
        preset = apply_settings(preset, load_toml(config_file))
    if settings:
        preset = apply_settings(preset, parse_assignments(settings))
    return preset


def parse_space(nodes: int) -> Space:
    if nodes < 1:
        raise UsageError(f"--space must be >= 1 node (8: the paper's main space, 2: the small one), got {nodes}")
    if nodes > 12:
        raise UsageError(f"--space {nodes} is larger than any studied space; use 8 (the paper's) or fewer")
    return Space(nodes)


def parse_policies(text: str | None, default: Sequence[str]) -> list[str]:
    from naseval.policies import POLICIES

    names = [p.strip() for p in text.split(",") if p.strip()] if text else list(default)
    for name in names:
        check_policy(name)
    if len(set(names)) != len(names):
        raise UsageError(f"--policies lists a policy twice: {text}")
    if not names:
        raise UsageError(f"--policies is empty; choose from {', '.join(sorted(POLICIES))}")
    return names


def check_policy(name: str) -> str:
    from naseval.policies import POLICIES

    if name not in POLICIES:
        close = difflib.get_close_matches(name, list(POLICIES), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise UsageError(f"unknown policy {name!r}; {hint}known: {', '.join(sorted(POLICIES))}")
    return name


def parse_seeds(text: str | None, preset: Preset) -> list[int]:
    try:
        return seeds_from_option(text, range(preset.seeds))
    except ValueError as error:
        raise UsageError(str(error)) from None


def check_device(device: str) -> str:
    if device not in ("auto", "cpu", "cuda"):
        raise UsageError(f"--device must be auto, cpu or cuda, got {device!r}")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UsageError("--device cuda, but no CUDA device is visible here; use --device cpu or auto")
    return device


def resolved_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def parse_architecture(text: str) -> Architecture:
    """Architecture text ("tanh:0 relu:1"), a genotype (JSON or DARTS `Genotype(...)`), or a file
    holding one of those (a results.json of a search job works too)."""
    path = Path(text) if len(text) < 4096 else None
    if path is not None and path.suffix in (".json", ".txt", ".py") and not path.is_file():
        raise UsageError(f"architecture file {text} does not exist")
    if path is not None and path.is_file():
        text = path.read_text().strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None
    if isinstance(data, dict) and "recurrent" not in data:
        data = data.get("genotype") or data.get("arch") or data
    if isinstance(data, str):
        text, data = data, None
    if data is not None:
        return Architecture.from_genotype(data)
    return Architecture.from_genotype(text) if "recurrent" in text else Architecture.parse(text)


# -- running a plan ---------------------------------------------------------------------------


def _workdir(common: CommonOptions, uri: str) -> Path:
    if common.workdir is not None:
        return common.workdir.resolve()
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).parent / ".naseval"
    return Path.cwd() / ".naseval"


def _data_check(preset: Preset, console: Console, fetch: bool) -> None:
    """Missing data is bad input: say so before any job starts (and before the store is touched).

    Where downloading is allowed and `fetch` (not a dry run), missing PTB is downloaded and
    verified here, once: left to the jobs, every job would try, and without a network every
    one of them would fail with the same error.
    """
    if preset.data.corpus != "ptb":
        return
    from naseval.trainer import find_ptb, ptb_path

    if find_ptb(preset.data.path) is not None:
        return
    if not preset.data.download:
        raise UsageError("PTB not found: set NASEVAL_DATA_DIR, pass --set data.path=DIR, or run "
                         "`nas data download`")
    if fetch:
        console.info("PTB not found locally: downloading it into the user cache (SHA256-verified)")
        ptb_path(preset.data.path, download=True)


def execute(common: CommonOptions, preset: Preset, *, command: str, run_name: str, plan: Plan,
            analyse: experiments.Analyse, identity: dict[str, Any], console: Console) -> RunSummary | None:
    """Estimate, run and report one plan; raises JobsFailed when jobs are missing.

    With --dry-run: the stages, their jobs and the estimate, and None; nothing is written.
    """
    check_device(common.device)
    if common.executor not in ("local", "ray"):
        raise UsageError(f"--executor must be local or ray, got {common.executor!r}")
    uri = resolve_tracking_uri(common.tracking_uri)
    check_reachable(uri)
    _data_check(preset, console, fetch=not common.dry_run)
    device = resolved_device(common.device)
    quiet_mlflow()
    tracker = Tracker(uri)
    items = cost_items(plan)
    done = sum(1 for spec, _ in items if common.resume and tracker.find_finished_job(spec.job_id))
    items = [(spec, n) for spec, n in items
             if not (common.resume and tracker.find_finished_job(spec.job_id))]
    cost = estimate(items, device) if items else None
    where = f"{common.executor} executor" + (f" at {common.ray_address}" if common.ray_address else "")
    reused = f", {done} finished earlier and reused" if done else ""
    if cost is not None and cost.seconds:
        console.info(f"{plan.expected_jobs} jobs on {device} ({where}{reused}); estimated "
                     f"{format_seconds(cost.seconds)} for the rest, run one after another")
    else:
        console.info(f"{plan.expected_jobs} jobs on {device} ({where}{reused})")
    if common.dry_run:
        _print_plan(console, plan, common.json, cost.seconds if cost else None)
        return None
    if common.executor == "ray" and not is_server_uri(uri) and (common.ray_address or os.environ.get("RAY_ADDRESS")):
        console.warn(f"Ray workers log to {uri}; on a multi-machine cluster use an MLflow "
                     "server (--tracking-uri http://...) that every node can reach")
    tracker = Tracker(uri)
    executor = make_executor(common.executor, common.ray_address)
    tags = {
        "preset": preset.name,
        "command": command,
        "device": device,
        "executor": common.executor,
        **({"space": str(identity["space"])} if "space" in identity else {}),
        **provenance_tags(),
    }
    invocation = Invocation(
        command=command,
        experiment=common.experiment or f"naseval-{command}",
        run_name=run_name,
        identity={"command": command, "preset": to_jsonable(preset), **identity},
        params={**flat_params(preset), **{k: json.dumps(v) for k, v in identity.items()},
                "device": device, "executor": common.executor},
        tags=tags,
    )
    driver = Driver(
        tracker=tracker, executor=executor, console=console,
        checkpoint_root=_workdir(common, uri) / "checkpoints", device=common.device,
        resume=common.resume, jobs_module=os.environ.get(JOBS_MODULE_ENV, DEFAULT_JOBS_MODULE),
    )
    try:
        summary = driver.run(invocation, plan, analyse, common.out)
    finally:
        executor.close()
    _print_summary(console, common, summary, invocation, uri)
    if summary.missing:
        not_run = f", {summary.not_run} not run" if summary.not_run else ""
        raise JobsFailed(f"{summary.failed} job(s) failed{not_run} (listed above); re-run the "
                         "same command to retry them, finished jobs are kept")
    return summary


def _print_plan(console: Console, plan: Plan, json_mode: bool, seconds: float | None) -> None:
    stages = [{"stage": stage.name, "jobs": stage.expected_jobs,
               "names": [spec.name for spec in stage.known_jobs]} for stage in plan.stages]
    if json_mode:
        console.result(json.dumps({"command": plan.command, "jobs": plan.expected_jobs,
                                   "estimated_seconds": seconds, "stages": stages}))
        return
    for stage in plan.stages:
        names = [spec.name for spec in stage.known_jobs]
        listed = (", ".join(names[:6]) + (", ..." if len(names) > 6 else "")) if names \
            else "built from the stages before"
        console.result(f"{stage.name}: {stage.expected_jobs} job(s): {listed}")
    console.result("dry run: nothing was run or logged")


def _print_summary(console: Console, common: CommonOptions, summary: RunSummary,
                   invocation: Invocation, uri: str) -> None:
    reused = sum(1 for o in summary.outcomes.values() if o.status == "REUSED")
    if common.json:
        console.result(json.dumps({
            "parent_run_id": summary.parent_run_id,
            "experiment_id": summary.experiment_id,
            "tracking_uri": uri,
            "missing": summary.missing,
            "results": summary.report.results if summary.report else None,
        }, default=str))
    elif summary.report is not None and summary.report.text:
        console.result(summary.report.text)
    for line in summary.missing:
        console.info(f"missing: {line}")
    console.info(
        f"MLflow: run {summary.parent_run_id} in experiment {invocation.experiment!r} at {uri}"
        + (f" ({reused} job(s) reused)" if reused else "")
        + "; browse with `nas ui`" + (f" --tracking-uri {uri}" if common.tracking_uri else "")
    )
    if common.out is not None:
        console.info(f"results written to {common.out}")


def _scale_line(console: Console, preset: Preset, common: CommonOptions) -> None:
    changes = len(common.settings) + (1 if common.config_file else 0)
    suffix = f" (changed by {changes} --set/--config)" if changes else ""
    console.info(preset.scale + suffix)


# -- run commands ------------------------------------------------------------------------------


def compare(common: CommonOptions, *, space: int, policies: str | None, seeds: str | None) -> RunSummary | None:
    preset = resolve_preset(common.preset, common.settings, common.config_file)
    the_space = parse_space(space)
    names = parse_policies(policies, preset.policies)
    seed_list = parse_seeds(seeds, preset)
    console = Console(json_mode=common.json)
    _scale_line(console, preset, common)
    with_truth = the_space.n_nodes <= 2  # the paper's small space: add REAL-BEST
    plan = experiments.compare_plan(preset, the_space, names, seed_list, with_ground_truth=with_truth)
    note = f"{the_space.n_nodes}-node space, {len(seed_list)} seeds, preset {preset.name}"
    return execute(
        common, preset, command="compare", run_name=f"compare/space={space}/{preset.name}",
        plan=plan, analyse=experiments.compare_analysis(the_space, note),
        identity={"space": space, "policies": names, "seeds": seed_list}, console=console,
    )


def search(common: CommonOptions, *, policy: str, space: int, seed: int) -> RunSummary | None:
    preset = resolve_preset(common.preset, common.settings, common.config_file)
    check_policy(policy)
    the_space = parse_space(space)
    console = Console(json_mode=common.json)
    _scale_line(console, preset, common)
    plan = experiments.search_plan(preset, the_space, policy, seed)
    return execute(
        common, preset, command="search", run_name=f"search/{policy}/space={space}/seed={seed}",
        plan=plan, analyse=experiments.search_analysis(),
        identity={"space": space, "policy": policy, "seed": seed}, console=console,
    )


def train(common: CommonOptions, *, arch: str, seed: int | None) -> RunSummary | None:
    preset = resolve_preset(common.preset, common.settings, common.config_file)
    architecture = parse_architecture(arch)
    if seed is not None:
        preset = dataclasses.replace(preset, evaluation=dataclasses.replace(preset.evaluation, seed=seed))
    console = Console(json_mode=common.json)
    _scale_line(console, preset, common)
    plan = experiments.train_plan(preset, architecture)
    return execute(
        common, preset, command="train", run_name=f"train/{architecture}",
        plan=plan, analyse=experiments.train_analysis(),
        identity={"arch": str(architecture), "seed": preset.evaluation.seed}, console=console,
    )


def _small_space_study(common: CommonOptions, space: int, command: str,
                       make_plan: Callable[[Preset, Space], Plan],
                       make_analysis: Callable[[Space], experiments.Analyse]) -> RunSummary | None:
    """A study over every architecture of a small space (`ground-truth`, `ws-ranking`)."""
    preset = resolve_preset(common.preset, common.settings, common.config_file)
    the_space = _small_space(space)
    console = Console(json_mode=common.json)
    _scale_line(console, preset, common)
    plan = make_plan(preset, the_space)
    return execute(
        common, preset, command=command, run_name=f"{command}/space={space}/{preset.name}",
        plan=plan, analyse=make_analysis(the_space),
        identity={"space": space}, console=console,
    )


def ground_truth(common: CommonOptions, *, space: int) -> RunSummary | None:
    return _small_space_study(common, space, "ground-truth",
                              experiments.ground_truth_plan, experiments.ground_truth_analysis)


def ws_ranking(common: CommonOptions, *, space: int) -> RunSummary | None:
    return _small_space_study(common, space, "ws-ranking",
                              experiments.ws_ranking_plan, experiments.ws_ranking_analysis)


def sharing(common: CommonOptions) -> RunSummary | None:
    preset = resolve_preset(common.preset, common.settings, common.config_file)
    console = Console(json_mode=common.json)
    _scale_line(console, preset, common)
    plan = experiments.sharing_plan(preset)
    space = experiments.sharing_space(preset)
    return execute(
        common, preset, command="sharing", run_name=f"sharing/{preset.name}",
        plan=plan, analyse=experiments.sharing_analysis(space),
        identity={"sharing_space": space.to_dict()}, console=console,
    )


def paper(common: CommonOptions) -> RunSummary | None:
    preset = resolve_preset(common.preset, common.settings, common.config_file)
    seed_list = list(range(preset.seeds))
    console = Console(json_mode=common.json)
    _scale_line(console, preset, common)
    plan, analyse = experiments.paper_plan(preset, list(preset.policies), seed_list)
    return execute(
        common, preset, command="paper", run_name=f"paper/{preset.name}", plan=plan,
        analyse=analyse, identity={"policies": list(preset.policies), "seeds": seed_list},
        console=console,
    )


def _small_space(nodes: int) -> Space:
    space = parse_space(nodes)
    if space.size > experiments.GROUND_TRUTH_MAX_SIZE:
        raise UsageError(f"--space {nodes} has {space.size:,} architectures, too many to train "
                         "exhaustively; use --space 2 (32 architectures)")
    return space


# -- space, data, config -----------------------------------------------------------------------


def space_size(nodes: int, json_mode: bool) -> None:
    if nodes < 1:
        raise UsageError(f"a space needs >= 1 node, got {nodes}")
    space = Space(nodes)
    print(json.dumps({"nodes": nodes, "size": space.size}) if json_mode else f"{space.size:,}")


def space_sample(nodes: int, count: int, seed: int, json_mode: bool) -> None:
    import numpy as np

    if count < 1:
        raise UsageError(f"--count must be >= 1, got {count}")
    space = parse_space(nodes)
    rng = np.random.default_rng(seed)
    archs = [str(space.sample(rng)) for _ in range(count)]
    print(json.dumps(archs) if json_mode else "\n".join(archs))


def space_show(text: str, json_mode: bool) -> None:
    arch = parse_architecture(text)
    space = Space(arch.n_nodes)
    info = {
        "arch": str(arch),
        "nodes": arch.n_nodes,
        "index": space.index(arch),
        "space_size": space.size,
        "tokens": arch.to_tokens(),
        "genotype": arch.to_genotype(),
    }
    if json_mode:
        print(json.dumps(info))
        return
    describe = getattr(arch, "describe", None)
    print(describe() if callable(describe) else str(arch))
    print(f"index {info['index']:,} of Space({arch.n_nodes}) ({space.size:,} architectures)")
    print(f"tokens   {info['tokens']}")
    print(f"genotype {json.dumps(info['genotype'])}")


def space_enumerate(nodes: int, limit: int, json_mode: bool) -> None:
    space = parse_space(nodes)
    count = min(space.size, max(limit, 0))
    archs = [str(space.at(i)) for i in range(count)]
    if json_mode:
        print(json.dumps(archs))
        return
    for i, arch in enumerate(archs):
        print(f"{i}\t{arch}")
    if count < space.size:
        print(f"... {space.size - count:,} more (raise --limit)", file=sys.stderr)


def data_path(json_mode: bool) -> None:
    from naseval.trainer import find_ptb
    from naseval.trainer.corpus import default_cache_dir

    folder = find_ptb()
    if folder is None:
        raise UsageError(f"PTB not found: set NASEVAL_DATA_DIR or run `nas data download` "
                         f"(it writes to {default_cache_dir()})")
    print(json.dumps({"path": str(folder)}) if json_mode else str(folder))


def data_verify(path: Path | None) -> None:
    from naseval.trainer import find_ptb, verify_ptb

    folder = path if path is not None else find_ptb()
    if folder is None:
        raise UsageError("PTB not found: pass its folder, set NASEVAL_DATA_DIR, or run `nas data download`")
    verify_ptb(folder)
    print(f"{folder}: ptb.train.txt, ptb.valid.txt, ptb.test.txt match their SHA256 sums")


def data_download(dest: Path | None) -> None:
    from naseval.trainer import download_ptb

    console = Console()
    console.info(f"downloading PTB into {dest or 'the user cache'} ...")
    folder = download_ptb(dest)
    print(str(folder))


def show_config(*, preset: str, settings: list[str], config_file: Path | None, json_mode: bool) -> None:
    resolved = resolve_preset(preset, settings, config_file)
    values = {k: to_jsonable(v) for k, v in field_paths(resolved).items()}
    if json_mode:
        print(json.dumps(values))
        return
    width = max(len(k) for k in values)
    for key, value in values.items():
        print(f"{key:<{width}}  {json.dumps(value)}")


# -- report, ui, bench -------------------------------------------------------------------------


def report(run_id: str, *, tracking_uri: str | None, out: Path | None, json_mode: bool) -> None:
    from naseval.cli.reports import render_report

    uri = resolve_tracking_uri(tracking_uri)
    check_reachable(uri)
    render_report(Tracker(uri), run_id, out=out, json_mode=json_mode, console=Console(json_mode=json_mode))


def ui_command(uri: str, port: int) -> list[str]:
    """The `mlflow ui` command line for store `uri` on 127.0.0.1:`port`."""
    mlflow = shutil.which("mlflow") or str(Path(sys.executable).with_name("mlflow"))
    cmd = [mlflow, "ui", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
           "--backend-store-uri", uri]
    if uri.startswith("sqlite:///"):
        artifacts = Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts"
        cmd += ["--default-artifact-root", artifacts.resolve().as_uri()]
    return cmd


def ui(*, tracking_uri: str | None, port: int) -> None:
    uri = resolve_tracking_uri(tracking_uri)
    if is_server_uri(uri):
        check_reachable(uri)
        print(f"the store is a tracking server; open {uri} in a browser")
        return
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        raise UsageError(f"no MLflow store at {uri.removeprefix('sqlite:///')}; run an experiment "
                         "first (nas run compare --space 8) or pass --tracking-uri")
    console = Console()
    console.info(f"MLflow UI on http://127.0.0.1:{port} for {uri} (Ctrl-C stops it)")
    with contextlib.suppress(KeyboardInterrupt):
        subprocess.run(ui_command(uri, port), check=False)


def bench(*, preset: str, settings: list[str], config_file: Path | None, device: str,
          json_mode: bool, steps: int, reference: bool) -> None:
    import torch

    from naseval.trainer.bench import bench_train_step

    check_device(device)
    if steps < 1:
        raise UsageError(f"--steps must be >= 1, got {steps}")
    resolved = resolve_preset(preset, settings, config_file)
    console = Console(json_mode=json_mode)
    threads = max(1, int(resolved.resources.num_cpus))
    console.info(f"measuring training throughput on {resolved_device(device)} "
                 f"({threads} torch thread(s), as a job of the {resolved.name} preset gets) ...")
    configs = {"search": resolved.search.supernet, "evaluation": resolved.evaluation.train}
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        results = {name: bench_train_step(config, device=device, steps=steps, warmup=1,
                                          reference=reference)
                   for name, config in configs.items()}
    finally:
        torch.set_num_threads(previous)
    plan = experiments.compare_plan(resolved, Space(8), list(resolved.policies),
                                    list(range(resolved.seeds)), with_ground_truth=False)
    cost = estimate(cost_items(plan), resolved_device(device))
    out = {"device": resolved_device(device), "threads": threads, "throughput": results,
           "compare_space8": {"preset": resolved.name, "jobs": cost.jobs, "seconds": cost.seconds}}
    if json_mode:
        print(json.dumps(out, default=str))
        return
    for name, result in results.items():
        ratio = f", {float(result['ratio']):.2f}x the reference cell" if "ratio" in result else ""
        print(f"{name:<11} hidden {result['nhid']:>4} batch {result['batch_size']:>3}: "
              f"{float(result['fast_tokens_per_s']):>10,.0f} tokens/s{ratio}")
    print(f"nas run compare --space 8 --preset {resolved.name}: {cost.jobs} jobs, about "
          f"{format_seconds(cost.seconds)} here, run one after another")
