"""`verify(store)`: check every shard and every indexed item; list each fault found."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import h5py
import numpy as np

from vlprep.checksums import file_sha256

from .layout import SHARD_DIR, is_shard_tmp, is_written_name, parse_shard_name
from .schema import STRING
from .shard import structure_faults

_BLOCK_ROWS = 4096


@dataclass
class VerifyReport:
    shards: int = 0
    items: int = 0
    faults: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.faults

    def to_json(self) -> dict:
        return {
            "ok": self.ok,
            "shards": self.shards,
            "items": self.items,
            "faults": self.faults,
            "notes": self.notes,
        }


def verify(store, progress: Callable[[int], None] | None = None) -> VerifyReport:
    """Checksums against the index, ids and offsets consistent, every indexed item readable, no NaN/inf,
    no duplicate ids. `progress(1)` is called after each shard."""
    from . import index

    report = VerifyReport()
    shard_rows = index.shard_rows(store._conn)
    report.shards = len(shard_rows)
    indexed = {}
    for item_id, shard, row in store._conn.execute("SELECT id, shard, row FROM items"):
        indexed.setdefault(shard, {})[row] = item_id
    report.items = sum(len(v) for v in indexed.values())
    seen: Counter[str] = Counter()
    known_files = set()
    for shard, file, n_items, size, sha, _ in shard_rows:
        known_files.add(file)
        _verify_shard(store, shard, file, n_items, size, sha, indexed.get(shard, {}), seen, report)
        if progress:
            progress(1)
    for item_id, count in seen.items():
        if count > 1:
            report.faults.append(f"id {item_id!r} appears {count} times across shards")
    indexed_gen = {shard: (parse_shard_name(file) or (shard, 0))[1] for shard, file, *_ in shard_rows}
    for path in sorted((store.path / SHARD_DIR).iterdir()):
        if path.name not in known_files:
            report.notes.append(f"{path.name}: {_stray_kind(path, indexed_gen)}")
    return report


def _stray_kind(path, indexed_gen) -> str:
    parsed = parse_shard_name(path.name)
    if path.is_dir():
        return "a directory, not the store's (ignored)"
    if is_shard_tmp(path.name):
        return "unfinished write (ignored by readers, removed by the next writer)"
    if parsed is None and is_written_name(path.name):
        return "written by a worker but never committed (ignored by readers; `vlprep repair` adopts it)"
    if parsed is None:
        return "not a shard name (ignored)"
    if parsed[0] in indexed_gen and parsed[1] < indexed_gen[parsed[0]]:
        return (
            "superseded generation, kept for readers opened before add_field "
            "(`vlprep repair --gc` removes it)"
        )
    return "shard file not in the index (ignored by readers; `vlprep repair` adopts or quarantines it)"


def _verify_shard(store, shard, file, n_items, size, sha, rows, seen, report) -> None:
    path = store.path / SHARD_DIR / file
    where = f"shard {shard} ({file})"
    if not path.is_file():
        report.faults.append(f"{where}: file missing ({len(rows)} indexed items unreadable)")
        return
    if path.stat().st_size != size:
        report.faults.append(f"{where}: size {path.stat().st_size} bytes, index says {size}")
    if file_sha256(path) != sha:
        report.faults.append(f"{where}: sha256 differs from the index (the file changed after commit)")
    try:
        with h5py.File(path, "r") as f:
            _verify_contents(store, f, where, n_items, rows, seen, report)
    except Exception as exc:  # any failure to read is the fault we are looking for
        report.faults.append(f"{where}: unreadable ({type(exc).__name__}: {exc})")


def _verify_contents(store, f, where, n_items, rows, seen, report) -> None:
    # Structure first, against the bytes in the file: a crafted shape or external storage is reported
    # before anything is allocated or read.
    faults, _, _ = structure_faults(f, store.schema)
    if faults:
        report.faults.extend(f"{where}: {fault}" for fault in faults)
        return
    ids = [s.decode("utf-8") if isinstance(s, bytes) else s for s in f["ids"][()]]
    seen.update(ids)
    if len(ids) != n_items or len(rows) != n_items:
        report.faults.append(f"{where}: holds {len(ids)} ids, index says {n_items} ({len(rows)} item rows)")
    for row, item_id in rows.items():
        if row >= len(ids) or ids[row] != item_id:
            report.faults.append(f"{where}: index puts {item_id!r} at row {row}, the shard disagrees")
    for fl in store.schema.values():
        ds = f[fl.name]
        if fl.dtype != STRING and fl.is_float:
            for start in range(0, ds.shape[0], _BLOCK_ROWS):
                block = ds[start : start + _BLOCK_ROWS]
                if not np.isfinite(block).all():
                    report.faults.append(f"{where}: {fl.name!r} contains NaN or inf")
                    break
