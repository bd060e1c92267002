"""Adding a field to an existing store in place, as a new shard generation.

Every shard is rewritten with the extra field to a new file name; the index then switches to the new
files in one transaction and `store.json` learns the field. A crash before the switch leaves the old
store intact (the next writer removes the unswitched new files, which carry this store's uuid); a crash
after it and before `store.json` is saved is rolled forward by the next writer from the schema the new
shards carry. A generation number is never one that already names a file on disk or in the index, and
the superseded files stay until `vlprep repair --gc`, so a reader opened before the switch keeps working.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from vlprep.checksums import file_sha256

from . import index
from .errors import StoreError
from .faults import step
from .layout import SHARD_DIR, parse_shard_name, shard_name
from .metadata import save_meta
from .reader import FeatureStore
from .schema import Field, infer_schema
from .shard import identity, write_shard
from .writer import StoreWriter


def add_field(
    path: str | os.PathLike,
    name: str,
    compute: Callable[[str, dict[str, Any]], Any],
    progress: Callable[[int], None] | None = None,
) -> int:
    """Add field `name` to every item: `compute(item_id, record)` gives its value. Returns items written."""
    root = Path(path)
    store = FeatureStore(root)
    if name in store.schema:
        raise StoreError(f"{root}: the store already has a field {name!r}")
    kind = store.kind
    store.close()
    try:
        return _add_field(root, kind, name, compute, progress)
    except OSError as exc:
        raise index.os_error(root, exc, f"adding the field {name!r}") from None


def _add_field(root: Path, kind: str, name: str, compute, progress) -> int:
    # Holding the writer lock keeps other writers out while the generation is built.
    with StoreWriter(root, kind=kind) as writer:
        if name in (writer.schema or {}):
            return 0  # an add_field stopped after its index switch, just rolled forward by the writer
        schema = dict(writer.schema or {})
        conn = writer._conn
        generation = _next_generation(root, conn, writer.meta["generation"])
        reader = FeatureStore(root)
        switched: list[tuple[int, str, int, str]] = []
        written = 0
        new_field: Field | None = None
        for shard, *_ in index.shard_rows(conn):
            ids = reader._reader(shard).ids
            records = reader._reader(shard).read_all(list(schema))
            for item_id, rec in zip(ids, records):
                rec[name] = compute(item_id, rec)
            if records and new_field is None:
                new_field = infer_schema({name: records[0][name]})[name]
                if new_field.ragged and any(f.ragged for f in schema.values()):
                    _check_lengths(records, schema, name)
            if new_field is not None:
                records = [
                    {**r, name: np.asarray(r[name]).astype(new_field.dtype, copy=False)} for r in records
                ]
            file = shard_name(shard, generation)
            target = root / SHARD_DIR / file
            new_schema = {**schema, name: new_field} if new_field else schema
            write_shard(
                target,
                ids,
                records,
                new_schema,
                writer.meta["compression"],
                identity(writer.meta, shard, generation, new_schema),
            )
            switched.append((shard, file, target.stat().st_size, file_sha256(target)))
            written += len(ids)
            if progress:
                progress(len(ids))
        reader.close()
        if new_field is None:
            raise StoreError(f"{root}: the store is empty; there is nothing to add {name!r} to")
        with index.transaction(conn):
            step("sql_switch_generation")
            conn.executemany(
                "UPDATE shards SET file = ?, bytes = ?, sha256 = ?, committed_at = ? WHERE shard = ?",
                [(file, size, sha, index.now(), shard) for shard, file, size, sha in switched],
            )
        writer.meta["schema"][name] = new_field.to_json()
        writer.meta["generation"] = generation
        writer.generation = generation
        writer.schema = {**schema, name: new_field}
        save_meta(root, writer.meta)
        # The superseded files are not removed here: a reader opened before the switch may still
        # read them. `vlprep repair --gc` removes them when no reader needs them any more.
    return written


def _next_generation(root: Path, conn, current: int) -> int:
    """One above every generation named in store.json, the index or any file in shards/: a crash after
    the index switch but before store.json was saved must not make the rerun reuse a live file name."""
    names = [row[1] for row in index.shard_rows(conn)]
    names += [p.name.removesuffix(".tmp") for p in (root / SHARD_DIR).iterdir()]
    gens = [parsed[1] for parsed in map(parse_shard_name, names) if parsed]
    return max([current, *gens]) + 1


def _check_lengths(records, schema, name) -> None:
    first_ragged = next(f.name for f in schema.values() if f.ragged)
    for rec in records:
        if len(rec[name]) != len(rec[first_ragged]):
            raise StoreError(
                f"new ragged field {name!r} has {len(rec[name])} rows where {first_ragged!r} has "
                f"{len(rec[first_ragged])}; ragged fields of one item share their length"
            )
