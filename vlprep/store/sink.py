"""Shards written by other processes (the pipeline's model actors on every node) into a store that one
`StoreWriter` owns: the writer hands out a `ShardSink`, a remote process writes complete shard files with
it (`.tmp`, fsync, rename, like the writer's own), and the writer commits each one to the index from its
receipt (`StoreWriter.commit_written`). A shard written but never committed is treated like the writer's
own uncommitted shards: the next writer adopts it unless one of its ids is already committed."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlprep.checksums import file_sha256

from .ids import check_id
from .layout import SHARD_DIR, WRITTEN_PREFIX
from .schema import Schema, coerce_record, infer_schema, schema_from_json, schema_to_json, with_storage_dtype
from .shard import write_shard

# Names of shards written through a sink (WRITTEN_PREFIX + 32 hex digits): never a numbered shard name,
# so they cannot collide with the writer's own or with each other. Their identity attributes carry
# shard -1: the number is given when the writer commits them.
__all__ = ["WRITTEN_PREFIX", "ShardSink"]


@dataclass(frozen=True)
class ShardSink:
    """Everything a process needs to write shards of the store at `root` (picklable, small)."""

    root: str
    schema: dict | None  # the store's schema as JSON; None until the first item defines it
    dtype: str | None
    compression: str
    meta_sha256: str  # store.json as the writer saw it: proof that a remote process sees the same store
    identity: dict | None = None  # the shard identity attributes (shard.identity), schema set per file

    def sees_store(self) -> bool:
        """Whether this process sees the writer's store directory (a filesystem shared with it)."""
        meta = Path(self.root) / "store.json"
        try:
            return meta.is_file() and file_sha256(meta) == self.meta_sha256
        except OSError:
            return False

    def check(self, item_id: str, record: Mapping[str, Any]) -> dict[str, Any]:
        """The record as it will be stored, checked the way `StoreWriter.add` checks it (the id, a value
        out of the storage dtype's range): raises `ItemError` for this item alone, before it joins a
        shard whose write it would otherwise fail."""
        check_id(item_id)
        return coerce_record(item_id, record, self._schema(record))

    def _schema(self, record: Mapping[str, Any]) -> Schema:
        if self.schema:
            return schema_from_json(self.schema)
        return with_storage_dtype(infer_schema(record), self.dtype)

    def write(self, ids: Sequence[str], records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Writes one complete shard of these records and returns its receipt: file, ids, bytes, sha256
        and the schema it was written with."""
        if not ids:
            raise ValueError("a shard needs at least one item")
        schema = self._schema(records[0])
        rows = [coerce_record(i, r, schema) for i, r in zip(ids, records, strict=True)]
        name = f"{WRITTEN_PREFIX}{uuid.uuid4().hex}.h5"
        path = Path(self.root) / SHARD_DIR / name
        attrs = {**self.identity, "schema": json.dumps(schema_to_json(schema))} if self.identity else {}
        write_shard(path, list(ids), rows, schema, self.compression, attrs)
        return {
            "file": name,
            "ids": list(ids),
            "bytes": path.stat().st_size,
            "sha256": file_sha256(path),
            "schema": schema_to_json(schema),
        }
