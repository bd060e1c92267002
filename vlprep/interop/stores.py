"""Converting between stores and the interop formats (what `vlprep convert` / `vlprep export` call)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from vlprep.interop import lxmert_tsv, npz_dir

EXPORT_FORMATS = ("lxmert-tsv", "npz-dir")
REGION_FIELDS = ("features", "boxes", "image_h", "image_w")


def convert_lxmert_tsv(
    tsv: str | Path,
    out: str | Path,
    shard_size: int = 1000,
    dtype: str | None = None,
    compression: str | None = None,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Reads an LXMERT TSV into a regions store; ids already in the store are skipped (resume).
    Returns {"added", "skipped"}."""
    from vlprep.store import StoreWriter

    tsv = Path(tsv)
    producer = {"converted_from": "lxmert-tsv", "source": tsv.name, "bytes": os.path.getsize(tsv)}
    added = skipped = 0
    with (
        _no_new_store_left_on_failure(Path(out)),
        StoreWriter(
            out,
            kind="regions",
            shard_size=shard_size,
            producer=producer,
            dtype=dtype,
            compression=compression,
            overwrite=overwrite,
        ) as writer,
    ):
        chunk: list[tuple[str, dict]] = []

        def drain() -> None:
            nonlocal added, skipped
            todo = set(writer.pending([i for i, _ in chunk]))
            for item_id, record in chunk:
                if item_id in todo:
                    writer.add(item_id, record)
                    todo.discard(item_id)  # a repeated id in the file is kept once
                    added += 1
                else:
                    skipped += 1
            if progress is not None:
                progress(len(chunk))
            chunk.clear()

        for item_id, record in lxmert_tsv.read_tsv(tsv):
            chunk.append((item_id, record))
            if len(chunk) >= 256:
                drain()
        drain()
    return {"added": added, "skipped": skipped}


@contextlib.contextmanager
def _no_new_store_left_on_failure(out: Path) -> Iterator[None]:
    """A conversion that fails before committing anything leaves no store behind: an empty store would
    make the corrected rerun fail with "parameters differ". Only a store this call created and that
    holds no committed shard is removed."""
    from vlprep.store.layout import INDEX_FILE, META_FILE, SHARD_DIR

    existed = out.exists()
    try:
        yield
    except BaseException:
        own = {META_FILE, INDEX_FILE, INDEX_FILE + "-journal", SHARD_DIR, ".writer.lock"}
        if (
            not existed
            and out.is_dir()
            and all(p.name in own for p in out.iterdir())
            and not any((out / SHARD_DIR).glob("*.h5"))
        ):
            shutil.rmtree(out, ignore_errors=True)
        raise


def _region_rows(store: Any, on_row: Callable[[], None] | None) -> Iterator[tuple[str, dict]]:
    from vlprep.store import StoreError

    missing = [f for f in REGION_FIELDS if f not in store.fields]
    if missing:
        raise StoreError(f"{store.path}: export needs a regions store; missing field(s) {', '.join(missing)}")
    for item_id, record in store:
        yield item_id, record
        if on_row is not None:
            on_row()


def export_store(
    store_path: str | Path,
    fmt: str,
    out: str | Path,
    geometry: int | str | None = None,
    on_row: Callable[[], None] | None = None,
) -> int:
    """Writes every item of a regions store in `fmt` ("lxmert-tsv" or "npz-dir"); returns the count."""
    from vlprep.store import FeatureStore, box_geometry

    store = FeatureStore(store_path)
    rows = _region_rows(store, on_row)
    if fmt == "lxmert-tsv":
        if geometry is not None:
            raise ValueError(
                "--geometry applies to npz-dir; LXMERT derives its box features from boxes, img_h, img_w"
            )
        return lxmert_tsv.write_tsv(rows, out)
    if fmt == "npz-dir":
        encode = None
        if geometry is not None:

            def encode(record: dict) -> Any:
                return box_geometry(record["boxes"], record["image_h"], record["image_w"], geometry)

        return npz_dir.write_npz_dir(rows, out, encode)
    raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
