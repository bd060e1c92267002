"""`vlprep demo OUT_DIR`."""

from __future__ import annotations

from pathlib import Path

import click

from vlprep.store.summary import format_summary

from .output import emit_json

BANNER = (
    "RANDOM DATA: these records are generated, so the features mean nothing. "
    "The store, index and inspection machinery around them are real."
)


@click.command("demo")
@click.argument("out_dir", type=click.Path(path_type=Path), default="demo-out")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def demo_cmd(out_dir: Path, as_json: bool) -> None:
    """Run the main job end to end on generated data and show how to inspect the result."""
    from vlprep.demo import run_demo

    result = run_demo(out_dir)
    if as_json:
        emit_json(result)
        return
    summary = result["summary"]
    click.echo(BANNER)
    click.echo(format_summary(summary))
    click.echo(f"verify: {'OK' if result['verify']['ok'] else 'FAULTS'}")
    click.echo(
        f"\nInspect it yourself:\n  vlprep inspect {result['store']}\n"
        f"  vlprep inspect {result['store']} --verify\n"
        f"  vlprep inspect {result['store']} --id generated/0000.jpg"
    )
    click.echo(f"demo: {summary['items']} items, {summary['errors']} error(s) in {result['store']}")
