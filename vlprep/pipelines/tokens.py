"""The `tokens assign` job. Token ids for every item of a feature store: a new `tokens` store of the same
ids, or a `tokens` field added to the source store in place.

The new store is written with `StoreWriter`, so an interrupted run resumes where it stopped (ids already
committed are skipped) and a different codebook on an existing output store is refused. With `workers > 0`
chunks of items are tokenised by model actors of the shared pipeline core (`runner.run_job`: the same Ray
session, worker replacement, error rows and run summary as `regions` and `video`); the driver alone writes.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vlprep.pipelines.inputs import Item
from vlprep.pipelines.runner import Failure, JobSpec, RunOptions, run_job
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


def store_rows(stores: Any, field: str = "features") -> Iterator[np.ndarray]:
    """The `field` arrays of one store or several (paths or FeatureStores), item by item: what
    `tokens fit` samples from. A store without the field is refused before anything is read."""
    from vlprep.store import FeatureStore

    if isinstance(stores, (str, Path, FeatureStore)):
        stores = [stores]
    opened = [s if isinstance(s, FeatureStore) else FeatureStore(s) for s in stores]
    for store in opened:
        if field not in store.fields:
            raise CodebookError(
                f"{store.path}: no field {field!r} to read; the store has {', '.join(store.fields)}"
            )
    for store in opened:
        for _, value in store.iter_field(field):
            yield np.asarray(value)


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


@dataclass
class _Assigner:
    """What a tokens model actor holds: the source store (opened where the actor runs) and the codebook."""

    store: Any
    codebook: Codebook
    field: str
    carried: list[str]


def _load_assigner(source: str, codebook: Codebook, field: str, carried: list[str]) -> _Assigner:
    from vlprep.store import FeatureStore

    return _Assigner(FeatureStore(source), codebook, field, carried)


def _assign_batch(model: _Assigner, batch: list[tuple[Item, Any]]) -> list[dict | Failure]:
    ids = [item.id for item, _ in batch]
    rows = _records(model.store, model.codebook, ids, model.field, model.carried, "cpu")
    return [record if record is not None else Failure("assign", message) for _, record, message in rows]


def _token_count(record: dict) -> float:
    return float(len(record["tokens"]))


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
        return _assign_in_place(store, codebook, field, device, progress, t0, producer)
    if out is None:
        raise ValueError("an output store is needed unless in_place is set")

    carried = [name for name in CARRIED_FIELDS if name in store.fields]
    if workers > 0:
        run = RunOptions(
            workers=workers,
            cpus_per_worker=0.5,
            threads_per_worker=1,
            decode_cpus=0.0,
            address=address,
            shard_size=shard_size,
            overwrite=overwrite,
            progress=False,
        )
        result = _assign_on_ray(store, codebook, producer, out, field, carried, chunk_items, run, progress)
        tokens = result.get("tokens", 0)
        seconds = time.perf_counter() - t0
        return _summary(store, out, result["ok"], result["failed"], result["skipped"], tokens, seconds)
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
        for start in range(0, len(todo), chunk_items):
            results = _records(store, codebook, todo[start : start + chunk_items], field, carried, device)
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
        summary = _summary(store, out, ok, failed, skipped, tokens_total, time.perf_counter() - t0)
        writer.record_run(summary)
    return summary


def _summary(store, out, ok, failed, skipped, tokens, seconds) -> dict[str, Any]:
    return {
        "command": "tokens assign",
        "source": str(store.path),
        "out": str(out),
        "ok": ok,
        "failed": failed,
        "skipped": skipped,
        "tokens": int(tokens),
        "seconds": round(seconds, 3),
        "items_per_s": round(ok / seconds, 2) if seconds > 0 else None,
    }


def _assign_on_ray(
    store, codebook, producer, out, field, carried, chunk_items, run: RunOptions, progress
) -> dict[str, Any]:
    """Chunks of items through `runner.run_job`: each actor opens the source store itself (on a cluster
    it must be readable at the same path on every node)."""
    spec = JobSpec(
        kind="tokens",
        producer=producer,
        load_model=functools.partial(_load_assigner, str(store.path), codebook, field, carried),
        run_batch=_assign_batch,
        decode=None,
        items_per_call=chunk_items,
        unit="item",
        measure=_token_count,
        measure_name="tokens",
        record_path=False,
    )
    items = [Item(item_id, str(store.path)) for item_id in store.ids()]
    return run_job(spec, items, out, run, on_progress=progress)


def _assign_in_place(store, codebook, field, device, progress, t0, producer) -> dict[str, Any]:
    from vlprep.store import StoreWriter, add_field

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
    summary = _summary(store, path, written, 0, 0, tokens_total, time.perf_counter() - t0)
    summary["command"] = "tokens assign --in-place"
    # The store's producer stays the extractor's; the run entry says which codebook made `tokens`.
    with StoreWriter(path, kind=store.kind) as writer:
        writer.record_run({**summary, "tokens_producer": producer})
    return summary
