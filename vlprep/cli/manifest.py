"""`vlprep manifest DATASET ROOT --out manifest.jsonl`: a known corpus listed with ids, splits, captions."""

from __future__ import annotations

from pathlib import Path

import click
from tqdm import tqdm

from vlprep.corpora.registry import DATASETS

from .config_file import config_options
from .output import bars_off, emit_json, fail

_EPILOG = "\b\nDatasets and their ids (docs/corpora.md has the layouts):\n" + "\n".join(
    f"  {c.name:<10} {c.media}s, id: {c.id_convention}" for c in DATASETS.values()
)


@click.command("manifest", epilog=_EPILOG)
@click.argument("dataset", type=click.Choice(list(DATASETS)), metavar="DATASET")
@click.argument("root", type=click.Path(path_type=Path))
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Manifest to write (JSONL)."
)
@click.option(
    "--split",
    "splits",
    multiple=True,
    metavar="NAME",
    help="Only this split (repeatable); the names are the dataset's own (val2014, training, validate, ...).",
)
@click.option(
    "--annotations",
    "annotation_dirs",
    multiple=True,
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="Also look for the annotation files here (repeatable); ROOT is always searched.",
)
@click.option("--no-progress", is_flag=True, help="No progress display.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@config_options
def manifest_cmd(dataset, root, out, splits, annotation_dirs, no_progress, as_json):
    """List the images or videos of a known DATASET under ROOT as a JSONL manifest.

    One line per item: `id` (the convention of the models that use the corpus), `path`, `split`, and
    `captions` (video: `segments`, the [start, end] of each caption) where the annotation files have
    them. Give the manifest to `vlprep regions` / `vlprep video` as input and to `vlprep vocab ...
    --field captions`.

    Items the annotations list but ROOT lacks (missing), repeated ids (duplicates, kept once) and media
    files the annotations do not list (unlisted, left out) are counted in the summary. A missing required
    annotation file, or a ROOT without the dataset's media, is a usage error (exit 2) naming what was
    expected; an annotation file that cannot be parsed is a data error (exit 1)."""
    from vlprep.corpora import CorpusError, build_manifest
    from vlprep.corpora.manifest import summary_line

    for directory in (root, *annotation_dirs):
        if not directory.is_dir():
            fail(f"{directory}: no such directory", code=2)
    bars = True if no_progress else bars_off(as_json)  # None: only on a terminal
    with tqdm(desc="files scanned", unit=" files", disable=bars, leave=False) as bar:
        try:
            summary = build_manifest(
                dataset, root, out, splits=splits, annotation_dirs=annotation_dirs, on_files=bar.update
            )
        except CorpusError as exc:
            bar.close()
            fail(str(exc), code=1 if exc.data else 2)
        except OSError as exc:
            bar.close()
            fail(f"{exc.filename or out}: {exc.strerror or exc}", code=1)
    if as_json:
        emit_json(summary)
        return
    for note in summary["notes"]:
        click.echo(f"note: {note}", err=True)
    for kind in ("missing", "duplicates", "unlisted"):
        if summary["examples"][kind]:
            click.echo(
                f"{kind}: {', '.join(summary['examples'][kind])}" + (" ..." if summary[kind] > 5 else ""),
                err=True,
            )
    click.echo(summary_line(summary))
