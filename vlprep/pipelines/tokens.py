"""The `tokens assign` job. Token ids for every item of a feature store: a new `tokens` store of the same
ids, or a `tokens` field added to the source store in place.

The new store is written with `StoreWriter`, so an interrupted run resumes where it stopped (ids already
committed are skipped) and a different codebook on an existing output store is refused. With `workers > 0`
chunks of items are tokenised by Ray tasks; the driver alone writes.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vlprep.tokenizers.visual.codebook import Codebook, CodebookError

CARRIED_FIELDS = ("timestamps",)


def codebook_producer(codebook: Codebook, codebook_path: str | Path | None, field: str) -> dict[str, Any]:
    producer: dict[str, Any] = {
        "name": "vlprep.tokens",
        "levels": codebook.levels,
        "branching": codebook.branching,
        "dim": codebook.dim,
        "normalize": codebook.normalize,
        "descent": "tree",
        "field": field,
    }
    if codebook_path is not None:
        producer["codebook_sha256"] = hashlib.sha256(Path(codebook_path).read_bytes()).hexdigest()
    else:
        digest = hashlib.sha256()
        for c in codebook.centroids:
            digest.update(np.ascontiguousarray(c, np.float32).tobytes())
        producer["centroids_sha256"] = digest.hexdigest()
    return producer


def _feature_dim(store: Any, field: str) -> int | None:
    if field not in store.fields:
        raise CodebookError(
            f"{store.path}: no field {field!r} to tokenise; the store has {', '.join(store.fields)}"
        )
    ids = store.ids()
    if not ids:
        return None
    value = np.asarray(store.get(ids[0], [field])[field])
    return int(value.shape[-1]) if value.ndim else 1


def checked_rows(codebook: Codebook, features: Any) -> np.ndarray:
    """One item's features as [T, D] (a single vector [D] gives [1, D]), refused if unusable."""
    f = np.asarray(features)
    if f.ndim == 1:
        f = f[None, :]
    if f.ndim != 2:
        raise CodebookError(f"features must be [T, D], got shape {f.shape}")
    codebook.check_dim(f.shape[1])
    if not np.isfinite(f).all():
        raise CodebookError("features contain NaN or inf")
    return f


def tokens_of(codebook: Codebook, features: Any, device: str = "cpu") -> np.ndarray:
    """int32 [T] token ids for one item's features [T, D]."""
    f = checked_rows(codebook, features)
    return codebook.assign(f, device=device).astype(np.int32) if len(f) else np.zeros(0, np.int32)


def _records(
    store: Any, codebook: Codebook, ids: Sequence[str], field: str, carried: Sequence[str], device: str
) -> list[tuple[str, dict[str, Any] | None, str | None]]:
    records = store.get_many(ids, [field, *carried])
    rows, failures = [], {}
    for item_id, rec in zip(ids, records, strict=True):
        try:
            rows.append(checked_rows(codebook, rec[field]))
        except CodebookError as exc:
            failures[item_id] = str(exc)
    # One descent for the whole chunk: items are often short (tens of clips), and per-call costs add up.
    good = np.concatenate(rows) if rows else np.zeros((0, codebook.dim), np.float32)
    ids_all = codebook.assign(good, device=device).astype(np.int32) if len(good) else np.zeros(0, np.int32)
    parts = iter(np.split(ids_all, np.cumsum([len(r) for r in rows])[:-1]) if rows else [])
    out = []
    for item_id, rec in zip(ids, records, strict=True):
        if item_id in failures:
            out.append((item_id, None, failures[item_id]))
            continue
        record = {"tokens": next(parts)}
        for name in carried:
            record[name] = rec[name]
        out.append((item_id, record, None))
    return out


def _remote_records(store, codebook, ids, field, carried):
    return _records(store, codebook, ids, field, carried, "cpu")


def assign_store(
    source: str | Path,
    codebook: Codebook | str | Path,
    out: str | Path | None = None,
    *,
    in_place: bool = False,
    field: str = "features",
    workers: int = 0,
    chunk_items: int = 256,
    shard_size: int = 1000,
    overwrite: bool = False,
    device: str = "cpu",
    address: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Tokenise every item of the store at `source`; return a summary.

    Writes the store `out` (kind "tokens": `tokens` int32 [T] plus the source's `timestamps`), or with
    `in_place` adds `tokens` to `source` itself through `vlprep.store.add_field`. Items whose features
    cannot be tokenised are recorded as errors of the new store and stay pending. `workers` Ray tasks run
    at once (joining the cluster at `address`, else a local Ray, unless this process already runs Ray).
    """
    from vlprep.store import FeatureStore, StoreWriter

    t0 = time.perf_counter()
    codebook_path = None
    if not isinstance(codebook, Codebook):
        codebook_path = Path(codebook)
        codebook = Codebook.load(codebook_path)
    store = FeatureStore(source)
    dim = _feature_dim(store, field)
    if dim is not None:
        codebook.check_dim(dim, what=f"the {field!r} features of {store.path}")
    producer = codebook_producer(codebook, codebook_path, field)

    if in_place:
        if out is not None:
            raise ValueError("give either an output store or in_place, not both")
        return _assign_in_place(store, codebook, field, device, progress, t0)
    if out is None:
        raise ValueError("an output store is needed unless in_place is set")

    carried = [name for name in CARRIED_FIELDS if name in store.fields]
    ok = failed = 0
    tokens_total = 0
    with StoreWriter(
        out, kind="tokens", shard_size=shard_size, producer=producer, overwrite=overwrite
    ) as writer:
        all_ids = store.ids()
        todo = writer.pending(all_ids)
        skipped = len(all_ids) - len(todo)
        if progress is not None and skipped:
            progress(skipped)
        chunks = [todo[i : i + chunk_items] for i in range(0, len(todo), chunk_items)]
        for results in _run_chunks(store, codebook, chunks, field, carried, workers, device, address):
            for item_id, record, message in results:
                if record is None:
                    writer.error(item_id, str(store.path), "assign", message)
                    failed += 1
                else:
                    writer.add(item_id, record)
                    tokens_total += len(record["tokens"])
                    ok += 1
            if progress is not None:
                progress(len(results))
        seconds = time.perf_counter() - t0
        summary = {
            "command": "tokens assign",
            "source": str(store.path),
            "out": str(out),
            "ok": ok,
            "failed": failed,
            "skipped": skipped,
            "tokens": tokens_total,
            "seconds": round(seconds, 3),
            "items_per_s": round(ok / seconds, 2) if seconds > 0 else None,
        }
        writer.record_run(summary)
    return summary


def _run_chunks(store, codebook, chunks, field, carried, workers, device, address=None):
    if workers <= 0:
        for ids in chunks:
            yield _records(store, codebook, ids, field, carried, device)
        return
    import ray

    started = not ray.is_initialized()
    if started:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        task = ray.remote(num_cpus=0.5)(_remote_records)
        store_ref, codebook_ref = ray.put(store), ray.put(codebook)
        in_flight: deque = deque()
        # Results are taken in submission order so the output store's order does not depend on timing.
        for ids in chunks:
            in_flight.append(task.remote(store_ref, codebook_ref, ids, field, carried))
            if len(in_flight) >= 2 * workers:
                yield ray.get(in_flight.popleft())
        while in_flight:
            yield ray.get(in_flight.popleft())
    finally:
        if started:
            ray.shutdown()


def _assign_in_place(store, codebook, field, device, progress, t0) -> dict[str, Any]:
    from vlprep.store import add_field

    tokens_total = 0

    def compute(item_id: str, record: dict[str, Any]) -> np.ndarray:
        nonlocal tokens_total
        tokens = tokens_of(codebook, record[field], device)
        tokens_total += len(tokens)
        return tokens

    path = store.path
    store.close()
    # One new shard generation, switched to in one transaction: never a half-tokenised store.
    written = add_field(path, "tokens", compute, progress=progress)
    seconds = time.perf_counter() - t0
    return {
        "command": "tokens assign --in-place",
        "source": str(path),
        "out": str(path),
        "ok": written,
        "failed": 0,
        "skipped": 0,
        "tokens": tokens_total,
        "seconds": round(seconds, 3),
        "items_per_s": round(written / seconds, 2) if seconds > 0 else None,
    }
