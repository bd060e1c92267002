"""`vlprep demo OUT_DIR`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .config_file import config_options
from .output import emit_json, quiet_stdout


@click.command("demo")
@click.argument("out_dir", type=click.Path(path_type=Path), default="demo-out")
@click.option(
    "--images", default=24, show_default=True, type=click.IntRange(min=1), help="Number of generated images."
)
@click.option(
    "--videos", default=3, show_default=True, type=click.IntRange(min=1), help="Number of generated videos."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@config_options
def demo_cmd(out_dir: Path, images: int, videos: int, as_json: bool) -> None:
    """Run every stage of vlprep on a generated corpus with random weights, then show where to go next."""
    from vlprep.demo.job import RANDOM_WARNING, REAL_DATA_COMMANDS, run_demo

    quiet = as_json or click.get_current_context().meta.get("vlprep.quiet", False)

    def say(message: str) -> None:  # "... stage" as each starts, an indented line as it ends
        if not quiet:
            click.echo(message if message.startswith(" ") else f"... {message}", err=True)

    if not as_json:
        click.echo(RANDOM_WARNING + "\n")
    bars = not quiet and sys.stderr.isatty()  # items done / total and rate; a line per stage otherwise
    with quiet_stdout():
        report = run_demo(out_dir, progress=say, images=images, videos=videos, bars=bars)
    if as_json:
        emit_json(report.to_json())
        return
    click.echo(f"\n{'stage':<16}{'items':>6}{'errors':>8}{'seconds':>9}  output")
    for s in report.stages:
        click.echo(f"{s.name:<16}{s.items:>6}{s.errors:>8}{s.seconds:>9.1f}  {s.output}")
    click.echo("\nErrors recorded on purpose (broken inputs the job stepped over):")
    for e in report.deliberate_errors:
        click.echo(f"  {e['id']}: {e['stage']}: {e['message']}")
    checks = ", ".join(f"{k} {'OK' if ok else 'FAULTS'}" for k, ok in report.verified.items())
    click.echo(f"\ninspect --verify: {checks}")
    click.echo("\nOutputs:")
    for what, path in report.outputs.items():
        click.echo(f"  {what:<24}{path}")
    click.echo(
        f"\nLook around:\n  vlprep inspect {out_dir / 'regions'}\n"
        f"  vlprep inspect {out_dir / 'video-tokens'}\n"
        f"  vlprep inspect {out_dir / 'regions'} --errors\n"
    )
    click.echo("The same on real data with real weights (see docs/weights.md):\n" + REAL_DATA_COMMANDS + "\n")
    click.echo(RANDOM_WARNING)
    ok = all(report.verified.values())
    click.echo(
        f"demo: {len(report.stages)} stages, {len(report.deliberate_errors)} deliberate errors recorded, "
        f"stores {'verified' if ok else 'with FAULTS'}, {report.seconds:.0f} s"
    )
