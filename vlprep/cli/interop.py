"""`vlprep convert lxmert-tsv IN.tsv --out STORE` and `vlprep export STORE --format ... --out OUT`."""

from __future__ import annotations

import sys
import time

import click
from tqdm import tqdm

from .config_file import config_options
from .output import bars_off, emit_json, fail


@click.command("convert")
@click.argument("fmt", metavar="FORMAT", type=click.Choice(["lxmert-tsv"]))
@click.argument("source", metavar="IN", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", required=True, help="The regions store to write (resumed if it exists).")
@click.option("--shard-size", default=1000, show_default=True, type=click.IntRange(min=1))
@click.option("--dtype", type=click.Choice(["float32", "float16"]), default=None)
@click.option("--compression", type=click.Choice(["none", "lzf", "gzip"]), default=None)
@click.option("--overwrite", is_flag=True, help="Replace an existing store.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@config_options
def convert_cmd(fmt, source, out, shard_size, dtype, compression, overwrite, as_json):
    """Read region features in another project's FORMAT into a store (LXMERT's TSV: exact values)."""
    from vlprep.interop.stores import convert_lxmert_tsv

    t0 = time.perf_counter()
    with tqdm(unit="img", disable=bars_off(as_json), file=sys.stderr) as bar:
        result = convert_lxmert_tsv(
            source, out, shard_size, dtype, compression, overwrite, progress=bar.update
        )
    result.update(format=fmt, source=str(source), out=str(out), seconds=round(time.perf_counter() - t0, 3))
    if as_json:
        emit_json(result)
    else:
        click.echo(
            f"convert {fmt}: {result['added']} added, {result['skipped']} skipped "
            f"in {result['seconds']:.1f} s -> {out}"
        )


@click.command("export")
@click.argument("store", type=click.Path(exists=True, file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["lxmert-tsv", "npz-dir"]), required=True)
@click.option("--out", required=True, help="The TSV file (lxmert-tsv) or directory (npz-dir) to write.")
@click.option(
    "--geometry",
    type=click.Choice(["4", "5", "6", "7", "vlbert"]),
    default=None,
    help="npz-dir: add a `geometry` array with this box encoding.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@config_options
def export_cmd(store, fmt, out, geometry, as_json):
    """Write a regions STORE in another project's format."""
    from vlprep.interop.stores import export_store

    if geometry is not None and fmt != "npz-dir":
        raise click.UsageError("--geometry applies to --format npz-dir only")
    t0 = time.perf_counter()
    with tqdm(unit="img", disable=bars_off(as_json), file=sys.stderr) as bar:
        try:
            count = export_store(store, fmt, out, geometry, on_row=lambda: bar.update(1))
        except ValueError as exc:  # an item the format cannot hold (an id with a tab, ...)
            fail(str(exc), 1)
    result = {
        "format": fmt,
        "store": str(store),
        "out": str(out),
        "items": count,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    if as_json:
        emit_json(result)
    else:
        click.echo(f"export {fmt}: {count} items in {result['seconds']:.1f} s -> {out}")
