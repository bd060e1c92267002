"""`vlprep inspect STORE`: summary, one item, verification, errors, rendering."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np
from tqdm import tqdm

from vlprep.store import FeatureStore, StoreError, summarize, verify
from vlprep.store.summary import format_summary

from .output import emit_json, fail


@click.command("inspect")
@click.argument("store_path", metavar="STORE", type=click.Path(path_type=Path))
@click.option("--id", "item_id", help="Show one item.")
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
    type=click.Path(path_type=Path),
    help="Draw the item (--id) or the store to a PNG.",
)
@click.option(
    "--image",
    type=click.Path(exists=True, path_type=Path),
    help="Image/video to draw on (default: the recorded path).",
)
@click.option("--vocab", help="objects.txt,attributes.txt label names for rendering region stores.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def inspect_cmd(store_path, item_id, do_verify, show_errors, render_to, image, vocab, as_json):
    """Summarise, verify or draw a feature store."""
    try:
        store = FeatureStore(store_path)
    except StoreError as exc:
        fail(str(exc), 2)  # cannot be opened: not a store, or damaged (names `vlprep repair`)
    try:
        if do_verify:
            _verify(store, as_json)
        elif render_to is not None:
            from vlprep.render import render

            out = render(store, render_to, item_id=item_id, media=image, vocab=vocab)
            if as_json:
                emit_json({"rendered": str(out)})
            else:
                click.echo(f"rendered {item_id or store.kind} to {out}")
        elif show_errors:
            errors = store.errors()
            if as_json:
                emit_json(errors)
            else:
                for e in errors:
                    click.echo(f"{e['at']}  {e['stage']:<8} {e['id']}  {e['message']}  ({e['source']})")
                click.echo(f"{len(errors)} error record(s)")
        elif item_id is not None:
            _show_item(store, item_id, as_json)
        else:
            summary = summarize(store)
            emit_json(summary) if as_json else click.echo(format_summary(summary))
    except KeyError as exc:
        fail(exc.args[0], 1)
    except StoreError as exc:
        fail(str(exc), exc.exit_code)


def _verify(store: FeatureStore, as_json: bool) -> None:
    with tqdm(
        total=len(store.shards()), desc="verify", unit="shard", disable=as_json or None, file=sys.stderr
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


def _show_item(store: FeatureStore, item_id: str, as_json: bool) -> None:
    record = store[item_id]
    if as_json:
        emit_json(
            {
                "id": item_id,
                **{k: np.asarray(v).tolist() if hasattr(v, "shape") else v for k, v in record.items()},
            }
        )
        return
    click.echo(f"id  {item_id}")
    for name, value in record.items():
        if isinstance(value, np.ndarray):
            stats = ""
            if value.size and value.dtype.kind in "fiu":
                mean = value.astype(np.float64).mean()
                stats = f"  min {value.min():.4g} max {value.max():.4g} mean {mean:.4g}"
            click.echo(f"  {name:<16} {value.dtype}{list(value.shape)}{stats}")
        else:
            click.echo(f"  {name:<16} {value!r}")
