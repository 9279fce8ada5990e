"""The `nas` command: experiments tracked in MLflow, run here or on a Ray cluster.

    nas run compare --space 8            the paper's protocol, every policy vs random
    nas run compare --space 2            ... with the REAL-BEST row from the exhaustive ground truth
    nas ui                               browse every run in the MLflow UI

Errors become one line that says what to do: exit code 2 for bad input, 1 when jobs failed.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from naseval.cli import commands
from naseval.cli.errors import cli_errors

HELP = "Evaluate the search phase of neural architecture search (Sciuto et al., ICLR 2020)."

app = typer.Typer(help=HELP, no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False, rich_markup_mode=None)
run_app = typer.Typer(help="Run experiments; every run is tracked in MLflow and resumable.",
                      no_args_is_help=True, rich_markup_mode=None)
space_app = typer.Typer(help="Inspect search spaces and architectures.", no_args_is_help=True,
                        rich_markup_mode=None)
data_app = typer.Typer(help="Find, download and verify Penn Treebank.", no_args_is_help=True,
                       rich_markup_mode=None)
app.add_typer(run_app, name="run")
app.add_typer(space_app, name="space")
app.add_typer(data_app, name="data")

# -- options shared by the run commands ------------------------------------------------------

PresetOpt = Annotated[str, typer.Option("--preset", help="quick (default: minutes on a CPU) or paper.")]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", metavar="KEY=VALUE", help="Change one setting, e.g. evaluation.train.epochs=3 "
    "(repeatable; `nas config` lists the keys).")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML file of settings.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")]
TrackingOpt = Annotated[str | None, typer.Option(
    "--tracking-uri", help="MLflow store (default: MLFLOW_TRACKING_URI, else ./mlflow.db).")]
ExperimentOpt = Annotated[str | None, typer.Option(
    "--experiment", help="MLflow experiment (default: naseval-<command>).")]
ExecutorOpt = Annotated[str, typer.Option("--executor", help="local (this process) or ray.")]
RayAddressOpt = Annotated[str | None, typer.Option(
    "--ray-address", help="Ray cluster (default: RAY_ADDRESS, else a local Ray instance).")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Also write results.json, tables, figures here.")]
ResumeOpt = Annotated[bool, typer.Option(
    "--resume/--fresh", help="Reuse finished jobs and continue unfinished ones (default), or start over.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the results as JSON on stdout.")]
SeedsOpt = Annotated[str | None, typer.Option(
    "--seeds", help="A count (3 = seeds 0,1,2) or a list (0,4,7); default: the preset's.")]
WorkdirOpt = Annotated[Path | None, typer.Option(
    "--workdir", help="Checkpoints live here (default: .naseval/ beside the store or in the cwd).")]
DryRunOpt = Annotated[bool, typer.Option(
    "--dry-run", help="Print the jobs and the cost estimate, run nothing.")]
SpaceOpt = Annotated[int, typer.Option("--space", help="Nodes per cell: 8 (the paper's main space) or 2.")]


def _common(
    preset: PresetOpt = "quick", set_: SetOpt = None, config: ConfigOpt = None,
    device: DeviceOpt = "auto", tracking_uri: TrackingOpt = None, experiment: ExperimentOpt = None,
    executor: ExecutorOpt = "local", ray_address: RayAddressOpt = None, out: OutOpt = None,
    resume: ResumeOpt = True, json_: JsonOpt = False, workdir: WorkdirOpt = None,
    dry_run: DryRunOpt = False,
) -> commands.CommonOptions:
    """The options every `nas run` command takes (its signature is theirs, see run_command)."""
    return commands.CommonOptions(
        preset=preset, settings=list(set_ or []), config_file=config, device=device,
        tracking_uri=tracking_uri, experiment=experiment, executor=executor,
        ray_address=ray_address, out=out, resume=resume, json=json_, workdir=workdir,
        dry_run=dry_run,
    )


RunBody = Callable[..., None]


def run_command(name: str) -> Callable[[RunBody], RunBody]:
    """Register `body(common, **own options)` as `nas run <name>`.

    The command's options are the body's own, then `_common`'s; typer reads them from the
    signature built here, so each shared option is declared once.
    """

    def register(body: RunBody) -> RunBody:
        own = list(inspect.signature(body, eval_str=True).parameters.values())[1:]
        shared = list(inspect.signature(_common, eval_str=True).parameters.values())
        shared_names = [p.name for p in shared]

        def command(**options: Any) -> None:
            common = _common(**{k: options.pop(k) for k in shared_names})
            with cli_errors():
                body(common, **options)

        command.__name__, command.__doc__ = body.__name__, body.__doc__
        command.__signature__ = inspect.Signature([*own, *shared])  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in [*own, *shared]}
        run_app.command(name)(command)
        return body

    return register


@run_command("compare")
def run_compare(
    common: commands.CommonOptions,
    space: SpaceOpt = 8,
    policies: Annotated[str | None, typer.Option(
        "--policies", help="Comma-separated policies (default: darts,nao,enas,random).")] = None,
    seeds: SeedsOpt = None,
) -> None:
    """Every policy searches with each seed; each found architecture is trained from scratch.

    Prints the paper's table (mean +- std, best valid and test perplexity, each policy against
    a random architecture). With --space 2 it adds REAL-BEST from the exhaustive ground truth.
    """
    commands.compare(common, space=space, policies=policies, seeds=seeds)


@run_command("search")
def run_search(
    common: commands.CommonOptions,
    policy: Annotated[str, typer.Option("--policy", help="darts, nao, enas, random or random-ws.")],
    space: SpaceOpt = 8,
    seed: Annotated[int, typer.Option("--seed", help="Search seed.")] = 0,
) -> None:
    """One policy's search with one seed: the architecture it finds and its own ranking."""
    commands.search(common, policy=policy, space=space, seed=seed)


@run_command("train")
def run_train(
    common: commands.CommonOptions,
    arch: Annotated[str, typer.Option(
        "--arch", help='Architecture text ("tanh:0 relu:1"), or a genotype JSON file.')],
    seed: Annotated[int | None, typer.Option("--seed", help="Training seed (default: the preset's).")] = None,
) -> None:
    """Train one architecture from scratch (the evaluation training of the preset)."""
    commands.train(common, arch=arch, seed=seed)


SmallSpaceOpt = Annotated[int, typer.Option("--space", help="Nodes per cell (2: 32 architectures).")]


@run_command("ground-truth")
def run_ground_truth(common: commands.CommonOptions, space: SmallSpaceOpt = 2) -> None:
    """Train every architecture of a small space on several seeds (the true ranking)."""
    commands.ground_truth(common, space=space)


@run_command("ws-ranking")
def run_ws_ranking(common: commands.CommonOptions, space: SmallSpaceOpt = 2) -> None:
    """Kendall tau of the weight-sharing ranking against the ground truth, per seed (Figure 4)."""
    commands.ws_ranking(common, space=space)


@run_command("sharing")
def run_sharing(common: commands.CommonOptions) -> None:
    """How the amount of weight sharing biases the WS ranking (Figure 5)."""
    commands.sharing(common)


@run_command("paper")
def run_paper(common: commands.CommonOptions) -> None:
    """The whole study: 8-node and 2-node tables, ground truth, WS ranking, sharing; one report."""
    commands.paper(common)


# -- space -----------------------------------------------------------------------------------

NodesArg = Annotated[int, typer.Argument(help="Nodes per cell.")]


@space_app.command("size")
def space_size(nodes: NodesArg = 8, json_: JsonOpt = False) -> None:
    """How many architectures a space has (n! * 4^n)."""
    with cli_errors():
        commands.space_size(nodes, json_)


@space_app.command("sample")
def space_sample(
    nodes: NodesArg = 8,
    count: Annotated[int, typer.Option("--count", "-n", help="How many.")] = 1,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    json_: JsonOpt = False,
) -> None:
    """Architectures drawn uniformly from a space."""
    with cli_errors():
        commands.space_sample(nodes, count, seed, json_)


@space_app.command("show")
def space_show(
    arch: Annotated[str, typer.Argument(help='Architecture text ("tanh:0 relu:1") or genotype JSON file.')],
    json_: JsonOpt = False,
) -> None:
    """One architecture: its nodes, index in its space, encodings and genotype."""
    with cli_errors():
        commands.space_show(arch, json_)


@space_app.command("enumerate")
def space_enumerate(
    nodes: NodesArg = 2,
    limit: Annotated[int, typer.Option("--limit", help="Stop after this many.")] = 100,
    json_: JsonOpt = False,
) -> None:
    """Every architecture of a space in index order (up to --limit)."""
    with cli_errors():
        commands.space_enumerate(nodes, limit, json_)


# -- data ------------------------------------------------------------------------------------


@data_app.command("path")
def data_path(json_: JsonOpt = False) -> None:
    """Where PTB is found (explicit path, NASEVAL_DATA_DIR, then the cache)."""
    with cli_errors():
        commands.data_path(json_)


@data_app.command("verify")
def data_verify(
    path: Annotated[Path | None, typer.Argument(help="PTB folder (default: where it is found).")] = None,
) -> None:
    """Check the PTB files against their SHA256 sums."""
    with cli_errors():
        commands.data_verify(path)


@data_app.command("download")
def data_download(
    dest: Annotated[Path | None, typer.Option("--dest", help="Folder (default: the user cache).")] = None,
) -> None:
    """Download PTB (verified) into the cache or --dest."""
    with cli_errors():
        commands.data_download(dest)


# -- the rest --------------------------------------------------------------------------------


@app.command("report")
def report(
    run: Annotated[str, typer.Argument(help="Parent run id (see `nas ui` or the end of a run).")],
    tracking_uri: TrackingOpt = None, out: OutOpt = None, json_: JsonOpt = False,
) -> None:
    """Re-render the tables, figures and a Markdown report of a finished run from MLflow."""
    with cli_errors():
        commands.report(run, tracking_uri=tracking_uri, out=out, json_mode=json_)


@app.command("ui")
def ui(
    tracking_uri: TrackingOpt = None,
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1.")] = 5000,
) -> None:
    """Start the MLflow UI on 127.0.0.1 on the store in use (Ctrl-C stops it)."""
    with cli_errors():
        commands.ui(tracking_uri=tracking_uri, port=port)


@app.command("bench")
def bench(
    preset: PresetOpt = "quick", set_: SetOpt = None, config: ConfigOpt = None,
    device: DeviceOpt = "auto", json_: JsonOpt = False,
    steps: Annotated[int, typer.Option("--steps", help="Timed training steps per model.")] = 5,
    reference: Annotated[bool, typer.Option(
        "--reference/--no-reference", help="Also time the per-timestep reference cell.")] = True,
) -> None:
    """Training throughput on this machine, and what the preset's compare would cost here."""
    with cli_errors():
        commands.bench(preset=preset, settings=list(set_ or []), config_file=config,
                       device=device, json_mode=json_, steps=steps, reference=reference)


@app.command("config")
def show_config(
    preset: PresetOpt = "quick", set_: SetOpt = None, config: ConfigOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Every setting of a preset (the keys --set and --config accept), with its value."""
    with cli_errors():
        commands.show_config(preset=preset, settings=list(set_ or []), config_file=config,
                             json_mode=json_)


@app.command("version")
def version(json_: JsonOpt = False) -> None:
    """The installed naseval package versions."""
    from naseval.cli.provenance import package_versions

    versions = package_versions()
    if json_:
        typer.echo(json.dumps(versions))
    else:
        for name, value in versions.items():
            typer.echo(f"{name} {value}")


def main() -> None:  # pragma: no cover - console entry for `python -m naseval.cli.main`
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
