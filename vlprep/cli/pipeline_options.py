"""Options shared by the corpus jobs (`vlprep regions`, `vlprep video`): inputs, Ray resources, store
settings, `--config`, and the mapping of outcomes to exit codes (0 done, 1 fatal or --strict with
failures, 2 usage)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from vlprep.pipelines.runner import SHARD_WRITES

from .config_file import config_options
from .output import bars_off, emit_json, quiet_stdout


def _options(f: Callable) -> Callable:
    decorators = [
        click.argument("inputs", metavar="INPUT...", nargs=-1),
        click.option("--out", required=True, help="The store directory (created, or resumed if it exists)."),
        click.option(
            "--workers",
            default=None,
            type=click.IntRange(min=1),
            help="Model actors, each loads the model once  [default: one per GPU; on CPUs as many as "
            "fill the nodes with --threads-per-worker threads each].",
        ),
        click.option(
            "--cpus-per-worker",
            default=None,
            type=click.FloatRange(min=0.01),
            help="Ray CPUs per model actor, fractional allowed  [default: 1 on GPU; on CPU the CPUs "
            "left after one decode task, shared by the workers].",
        ),
        click.option(
            "--gpus-per-worker",
            default=None,
            type=click.FloatRange(min=0),
            help="GPUs per model actor; > 0 runs the model on CUDA  [default: 1 when the cluster has "
            "GPUs, else 0].",
        ),
        click.option(
            "--threads-per-worker",
            type=click.IntRange(min=1),
            default=None,
            help="torch threads in each actor  [default: ceil(--cpus-per-worker); up to 4 when the "
            "workers are chosen for you].",
        ),
        click.option(
            "--decode-cpus",
            default=0.25,
            show_default=True,
            type=click.FloatRange(min=0.01),
            help="Ray CPUs per decode task.",
        ),
        click.option(
            "--address",
            default=None,
            help="Join this Ray cluster (host:port or 'auto')  [default: $RAY_ADDRESS if set, else a "
            "local Ray starts].",
        ),
        click.option(
            "--num-cpus",
            type=click.IntRange(min=1),
            default=None,
            help="CPUs of the local Ray  [default: all].",
        ),
        click.option(
            "--shard-writes",
            type=click.Choice(SHARD_WRITES),
            default="auto",
            show_default=True,
            help="Who writes shard files: the driver, or each model worker into the store directory "
            "(a filesystem all nodes share); auto: the workers when there are several and every one "
            "sees the store directory (always on one node), else the driver.",
        ),
        click.option(
            "--shard-size",
            default=1000,
            show_default=True,
            type=click.IntRange(min=1),
            help="Items per committed shard (a crash loses at most about two shards of work per worker).",
        ),
        click.option(
            "--dtype",
            type=click.Choice(["float32", "float16"]),
            default=None,
            help="Storage dtype of float fields  [default: as produced].",
        ),
        click.option(
            "--compression",
            type=click.Choice(["none", "lzf", "gzip"]),
            default=None,
            help="Shard compression  [default: none].",
        ),
        click.option("--strict", is_flag=True, help="Exit 1 when any item failed."),
        click.option(
            "--overwrite", is_flag=True, help="Replace an existing store written with other parameters."
        ),
        click.option(
            "--progress/--no-progress", default=True, show_default=True, help="Show a progress bar."
        ),
        click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON."),
    ]
    f = config_options(f)
    for decorator in reversed(decorators):
        f = decorator(f)
    return f


pipeline_options = _options


def run_options(params: dict[str, Any]) -> Any:
    from vlprep.pipelines.runner import RunOptions

    return RunOptions(
        workers=params["workers"],
        cpus_per_worker=params["cpus_per_worker"],
        gpus_per_worker=params["gpus_per_worker"],
        threads_per_worker=params["threads_per_worker"],
        decode_cpus=params["decode_cpus"],
        address=params["address"],
        num_cpus=params["num_cpus"],
        shard_size=params["shard_size"],
        shard_writes=params["shard_writes"],
        dtype=params["dtype"],
        compression=params["compression"],
        overwrite=params["overwrite"],
        progress=params["progress"] and not bars_off(params["as_json"]),
    )


def config_error(exc: Any) -> click.BadParameter:
    """A config's ConfigValueError as a usage error naming the option (`min_size` -> `--min-size`)."""
    return click.BadParameter(exc.reason, param_hint=f"--{exc.field.replace('_', '-')}")


def check_inputs(inputs: Any) -> list[str]:
    if isinstance(inputs, str):
        inputs = [inputs]
    inputs = list(inputs or ())
    if not inputs:
        raise click.UsageError("give at least one INPUT (a directory, glob, list file or manifest)")
    return inputs


def format_summary(summary: dict, unit: str, out: str) -> str:
    line = (
        f"{summary['kind']}: {summary['ok']} ok, {summary['failed']} failed, {summary['skipped']} skipped "
        f"in {summary['seconds']:.1f} s ({summary['items_per_s']:.2f} {unit}/s"
    )
    if summary.get("startup_seconds"):
        line += (
            f", {summary['items_per_s_after_startup']:.2f} {unit}/s after "
            f"{summary['startup_seconds']:.1f} s start-up"
        )
    extra = [k for k in summary if k.endswith("_seconds_per_s")]
    for key in extra:
        line += f", {summary[key]:.2f} {key.replace('_per_s', '').replace('_', ' ')}/s"
    line += f") -> {out}"
    if summary.get("fewer_boxes"):
        line += f"; {summary['fewer_boxes']:,} images kept fewer than {summary['min_boxes']} boxes"
    return line


def run_job_cli(job: Callable[[], dict], *, unit: str, out: str, strict: bool, as_json: bool) -> None:
    """Runs `job`, prints the summary, and exits with the contract's code (errors: cli/errors.py)."""
    with quiet_stdout():
        summary = job()
    if as_json:
        emit_json(summary)
    else:
        click.echo(format_summary(summary, unit, out))
    if strict and (summary["failed"] or summary.get("fewer_boxes")):
        if not as_json:
            click.echo(
                f"--strict: {summary['failed']} failed (see `vlprep inspect {out} --errors`), "
                f"{summary.get('fewer_boxes', 0)} with fewer boxes than asked",
                err=True,
            )
        raise SystemExit(1)
