"""`verify(store)`: check every shard and every indexed item; list each fault found."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import h5py
import numpy as np

from vlprep.checksums import file_sha256

from .layout import SHARD_DIR, TMP_SUFFIX
from .schema import STRING

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
    stray = [p.name for p in (store.path / SHARD_DIR).iterdir() if p.name not in known_files]
    for name in stray:
        kind = "unfinished write" if name.endswith(TMP_SUFFIX) else "file not in the index"
        report.notes.append(f"{name}: {kind} (ignored by readers, removed by the next writer)")
    return report


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
    ids = [s.decode("utf-8") if isinstance(s, bytes) else s for s in f["ids"][()]]
    seen.update(ids)
    if len(ids) != n_items or len(rows) != n_items:
        report.faults.append(f"{where}: holds {len(ids)} ids, index says {n_items} ({len(rows)} item rows)")
    for row, item_id in rows.items():
        if row >= len(ids) or ids[row] != item_id:
            report.faults.append(f"{where}: index puts {item_id!r} at row {row}, the shard disagrees")
    ragged = [fl for fl in store.schema.values() if fl.ragged]
    if ragged:
        offsets = f["offsets"][()]
        if len(offsets) != len(ids) + 1 or offsets[0] != 0 or np.any(np.diff(offsets) < 0):
            report.faults.append(f"{where}: offsets are inconsistent (length, start or order)")
        for fl in ragged:
            if f[fl.name].shape[0] != offsets[-1]:
                report.faults.append(
                    f"{where}: {fl.name!r} has {f[fl.name].shape[0]} rows, offsets end at {offsets[-1]}"
                )
    for fl in store.schema.values():
        if fl.name not in f:
            report.faults.append(f"{where}: field {fl.name!r} missing")
            continue
        ds = f[fl.name]
        if not fl.ragged and ds.shape[0] != len(ids):
            report.faults.append(f"{where}: {fl.name!r} has {ds.shape[0]} rows for {len(ids)} items")
        if fl.dtype != STRING and fl.is_float:
            for start in range(0, ds.shape[0], _BLOCK_ROWS):
                block = ds[start : start + _BLOCK_ROWS]
                if not np.isfinite(block).all():
                    report.faults.append(f"{where}: {fl.name!r} contains NaN or inf")
                    break
