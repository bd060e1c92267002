"""`vlprep repair STORE`: rebuild a damaged store's index and metadata from its shards."""

from __future__ import annotations

from pathlib import Path

import click

from .config_file import config_options
from .output import emit_json, fail


@click.command("repair")
@click.argument("store_path", metavar="STORE", type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Show what would be done; change nothing.")
@click.option("--gc", is_flag=True, help="Also remove superseded shard generations (left by add_field).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@config_options
def repair_cmd(store_path, dry_run, gc, as_json):
    """Rebuild index.sqlite and store.json from the shards, adopt complete unindexed shards, and move
    what cannot be used to STORE/quarantine/ (nothing is deleted, except superseded generations with --gc)."""
    from vlprep.store import StoreError, repair

    try:
        report = repair(store_path, dry_run=dry_run, gc=gc)
    except StoreError as exc:
        fail(str(exc), exc.exit_code)
    if as_json:
        emit_json(report.to_json())
        return
    for line in report.lines():
        click.echo(line)
    lost = "" if report.errors_lost == 0 else ", error records lost"
    state = ("would change" if dry_run else "repaired") if report.changed else "nothing to repair"
    click.echo(
        f"repair: {state}: {report.items:,} items in {report.shards:,} shards, "
        f"{report.errors_kept:,} error records{lost} -> {store_path}"
    )
