"""`vlprep inspect STORE`: summary, one item, verification, errors, rendering."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np
from tqdm import tqdm

from .config_file import config_options
from .output import bars_off, emit_json, fail


@click.command("inspect")
@click.argument("store_path", metavar="STORE", type=click.Path(path_type=Path))
@click.option("--id", "item_id", help="Show one item: dtype, shape and value range of each field.")
@click.option("--values", "show_values", is_flag=True, help="With --id: print the arrays themselves.")
@click.option(
    "--verify",
    "do_verify",
    is_flag=True,
    help="Check checksums, offsets, ids and values; exit 1 on any fault.",
)
@click.option("--errors", "show_errors", is_flag=True, help="List the error records.")
@click.option(
    "--render",
    "render_to",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Draw the item (--id) to a PNG; without --id, an overview of the store.",
)
@click.option(
    "--image",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Image/video to draw on (default: the recorded path).",
)
@click.option("--vocab", help="objects.txt,attributes.txt label names for rendering region stores.")
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Region stores: draw this many highest-scoring boxes.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@config_options
def inspect_cmd(
    store_path, item_id, show_values, do_verify, show_errors, render_to, image, vocab, top, as_json
):
    """Summarise, verify or draw a feature store."""
    from vlprep.store import FeatureStore, summarize
    from vlprep.store.summary import format_summary

    if show_values and item_id is None:
        raise click.UsageError("--values needs --id ID")
    if image is not None and (render_to is None or item_id is None):
        raise click.UsageError("--image applies to --render with --id")
    store = FeatureStore(store_path)
    if do_verify:
        _verify(store, as_json)
    elif render_to is not None:
        from vlprep.render import render

        out = render(store, render_to, item_id=item_id, media=image, vocab=vocab, top=top)
        if as_json:
            emit_json({"rendered": str(out)})
        else:
            click.echo(f"rendered {item_id if item_id is not None else store.kind + ' store'} to {out}")
    elif show_errors:
        errors = store.errors()
        if as_json:
            emit_json(errors)
        else:
            for e in errors:
                click.echo(f"{e['at']}  {e['stage']:<8} {e['id']}  {e['message']}  ({e['source']})")
            click.echo(f"{len(errors)} error record(s)")
    elif item_id is not None:
        _show_item(store, item_id, as_json, show_values)
    else:
        summary = summarize(store)
        emit_json(summary) if as_json else click.echo(format_summary(summary))


def _verify(store, as_json: bool) -> None:
    from vlprep.store import verify

    with tqdm(
        total=len(store.shards()), desc="verify", unit="shard", disable=bars_off(as_json), file=sys.stderr
    ) as bar:
        report = verify(store, progress=bar.update)
    if as_json:
        emit_json(report.to_json())
    else:
        for fault in report.faults:
            click.echo(f"FAULT  {fault}")
        for note in report.notes:
            click.echo(f"note   {note}")
        status = "OK" if report.ok else f"{len(report.faults)} fault(s)"
        click.echo(f"verify: {status}: {report.items:,} items in {report.shards:,} shards checked")
    if not report.ok:
        sys.exit(1)


def field_summary(value) -> dict:
    """dtype, shape and value range of one field of a record; scalars and strings as they are."""
    if not isinstance(value, np.ndarray):
        return {"value": value.item() if hasattr(value, "item") else value}
    out: dict = {"dtype": str(value.dtype), "shape": list(value.shape)}
    if value.size and value.dtype.kind in "fiub":
        as_float = value.astype(np.float64)
        finite = np.isfinite(as_float)
        if finite.any():
            kept = as_float[finite]
            out.update(min=float(kept.min()), max=float(kept.max()), mean=float(kept.mean()))
        if not finite.all():
            out["non_finite"] = int((~finite).sum())
    return out


def _show_item(store, item_id: str, as_json: bool, show_values: bool) -> None:
    try:
        record = store[item_id]
    except KeyError:
        fail(f"no item {item_id!r} in {store.path} ({len(store):,} items)", 2)
    fields = {name: field_summary(value) for name, value in record.items()}
    if as_json:
        out: dict = {"id": item_id, "fields": fields}
        if show_values:
            out["values"] = {
                k: np.asarray(v).tolist() if hasattr(v, "shape") else v for k, v in record.items()
            }
        emit_json(out)
        return
    click.echo(f"id  {item_id}")
    for name, info in fields.items():
        if "value" in info:
            click.echo(f"  {name:<16} {info['value']!r}")
            continue
        line = f"  {name:<16} {info['dtype']}{info['shape']}"
        if "min" in info:
            line += f"  min {info['min']:.4g} max {info['max']:.4g} mean {info['mean']:.4g}"
        if info.get("non_finite"):
            line += f"  {info['non_finite']:,} non-finite"
        click.echo(line)
    if show_values:
        with np.printoptions(threshold=sys.maxsize, linewidth=120):
            for name, value in record.items():
                click.echo(f"\n{name} =\n{np.asarray(value)}")
