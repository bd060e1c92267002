"""Writing a dataset's manifest: one JSON object per line with `id`, `path`, `split` and whatever the
annotations say about the item (`captions`, `segments`, ...). `vlprep regions`/`vlprep video` read it as
input (pipelines/inputs.py) and `vlprep vocab --field captions` reads its captions."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from .base import Collector, CorpusError, Tree
from .registry import DATASETS


def scan(
    dataset: str,
    root: str | os.PathLike,
    annotation_dirs: Iterable[str | os.PathLike] = (),
    on_files: Callable[[int], None] | None = None,
) -> Collector:
    """Every item of `dataset` under `root`, with the counts of what did not line up."""
    corpus = DATASETS.get(dataset)
    if corpus is None:
        raise CorpusError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)}")
    tree = Tree(root, annotation_dirs, on_file=on_files)
    collector = Collector()
    try:
        corpus.scan(tree, collector)
    except CorpusError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # a field the documented format has is absent or of another type: a data problem in that file
        where = collector.annotations[-1] if collector.annotations else f"{dataset} annotations"
        raise CorpusError(
            f"{where}: not the expected format ({type(exc).__name__}: {exc})", data=True
        ) from None
    if not collector.rows:
        first = f" (first missing: {', '.join(collector.missing[:3])})" if collector.missing else ""
        raise CorpusError(
            f"{dataset}: none of the {len(collector.missing)} items the annotations list is under "
            f"{tree.root}{first}"
        )
    return collector


def build_manifest(
    dataset: str,
    root: str | os.PathLike,
    out: str | os.PathLike,
    *,
    splits: Sequence[str] = (),
    annotation_dirs: Iterable[str | os.PathLike] = (),
    on_files: Callable[[int], None] | None = None,
) -> dict:
    """Scans `root` as `dataset` and writes the manifest to `out` (whole or not at all); returns the
    summary: items per split, captions, and the missing / duplicate / unlisted counts with examples."""
    start = time.perf_counter()
    collector = scan(dataset, root, annotation_dirs, on_files)
    rows = collector.rows
    if splits:
        present = sorted({row["split"] for row in rows})
        unknown = [s for s in splits if s not in present]
        if unknown:
            raise CorpusError(
                f"{dataset}: no split {', '.join(unknown)} here; splits found: {', '.join(present)}"
            )
        rows = [row for row in rows if row["split"] in set(splits)]
        collector.rows = rows
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with open(partial, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(partial, out)
    summary = {"dataset": dataset, "media": DATASETS[dataset].media, "root": str(Path(root)), "out": str(out)}
    summary.update(collector.summary())
    summary["seconds"] = round(time.perf_counter() - start, 3)
    return summary


def summary_line(summary: dict) -> str:
    splits = ", ".join(f"{name} {count}" for name, count in sorted(summary["splits"].items()))
    return (
        f"manifest {summary['dataset']}: {summary['items']} {summary['media']}s ({splits}), "
        f"{summary['captions']} captions; {summary['missing']} missing, "
        f"{summary['duplicates']} duplicate ids, {summary['unlisted']} unlisted files "
        f"-> {summary['out']} ({summary['seconds']:.1f} s)"
    )
