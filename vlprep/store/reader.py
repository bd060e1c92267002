"""`FeatureStore`: read-only access to a store, cheap to pickle, safe across processes.

Nothing is opened until it is needed, and handles belong to the process that opened them: after a
fork (DataLoader workers) or an unpickle (Ray), each process opens its own SQLite connection and its
own shard files, keeping at most `max_open` shard files open at once.

Across writes a reader stays consistent: items are looked up in the live index, and the shard-number ->
file map is re-read when a shard is missing from it (committed after the map was read) or its file is
gone (a superseded generation removed by `vlprep repair --gc`), then the read is retried once.
"""

from __future__ import annotations

import os
import sqlite3
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import index
from .errors import StoreError
from .geometry import box_geometry
from .layout import INDEX_FILE, SHARD_DIR
from .metadata import load_meta
from .schema import Schema, schema_from_json
from .shard import ShardReader

Record = dict[str, Any]


class FeatureStore:
    def __init__(self, path: str | os.PathLike, max_open: int = 32):
        self.path = Path(path)
        self.max_open = max(1, int(max_open))
        self.meta: dict[str, Any] = load_meta(self.path)
        self.schema: Schema = schema_from_json(self.meta["schema"] or {})
        self._reset()
        self._conn_ = index.connect(self.path / INDEX_FILE, readonly=True)  # refuses a damaged index

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._conn_: sqlite3.Connection | None = None
        self._files: dict[int, str] | None = None
        self._readers: OrderedDict[int, ShardReader] = OrderedDict()

    def __getstate__(self) -> dict[str, Any]:
        return {"path": str(self.path), "max_open": self.max_open}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], state["max_open"])

    def __repr__(self) -> str:
        return f"FeatureStore({str(self.path)!r}, kind={self.kind!r})"

    # -- handles -----------------------------------------------------------------------------------

    def _check_process(self) -> None:
        if self._pid != os.getpid():
            # Handles inherited through fork are not ours to use (h5py and SQLite both say so).
            self._reset()

    @property
    def _conn(self) -> sqlite3.Connection:
        self._check_process()
        if self._conn_ is None:
            self._conn_ = index.connect(self.path / INDEX_FILE, readonly=True)
        return self._conn_

    def _reader(self, shard: int) -> ShardReader:
        self._check_process()
        reader = self._readers.get(shard)
        if reader is not None:
            self._readers.move_to_end(shard)
            return reader
        if self._files is None or shard not in self._files:
            self._refresh()
        try:
            reader = self._open_shard(shard)
        except FileNotFoundError:
            self._refresh()
            try:
                reader = self._open_shard(shard)
            except FileNotFoundError as exc:
                raise StoreError(
                    f"{self.path}: shard file {exc.args[0].name} is missing; "
                    f"see `vlprep inspect {self.path} --verify`"
                ) from None
        self._readers[shard] = reader
        while len(self._readers) > self.max_open:
            _, old = self._readers.popitem(last=False)
            old.close()
        return reader

    def _refresh(self) -> None:
        self._files = {row[0]: row[1] for row in index.shard_rows(self._conn)}
        if not self.schema:  # opened before the first item was written
            self.meta = load_meta(self.path)
            self.schema = schema_from_json(self.meta["schema"] or {})

    def _open_shard(self, shard: int) -> ShardReader:
        file = (self._files or {}).get(shard)
        if file is None:
            raise StoreError(f"{self.path}: shard {shard} is not in the index")
        path = self.path / SHARD_DIR / file
        if not path.is_file():
            raise FileNotFoundError(path)
        try:
            return ShardReader(path, self.schema)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot open shard {path.name}: {exc}") from exc

    def close(self) -> None:
        if self._pid == os.getpid():
            for reader in self._readers.values():
                reader.close()
            if self._conn_ is not None:
                self._conn_.close()
        self._reset()

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- description -------------------------------------------------------------------------------

    @property
    def kind(self) -> str:
        return self.meta["kind"]

    @property
    def producer(self) -> Any:
        return self.meta.get("producer")

    @property
    def fields(self) -> list[str]:
        return list(self.schema)

    def __len__(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM items").fetchone()[0]

    def __contains__(self, item_id: object) -> bool:
        if not isinstance(item_id, str):
            return False
        return self._conn.execute("SELECT 1 FROM items WHERE id = ?", (item_id,)).fetchone() is not None

    def ids(self) -> list[str]:
        return list(index.iter_ids(self._conn))

    def shards(self) -> list[dict[str, Any]]:
        """The committed shards: number, file, items, bytes, sha256, committed_at."""
        keys = ("shard", "file", "items", "bytes", "sha256", "committed_at")
        return [dict(zip(keys, row)) for row in index.shard_rows(self._conn)]

    def errors(self) -> list[dict[str, str]]:
        return index.error_rows(self._conn)

    # -- reading -----------------------------------------------------------------------------------

    def _fields(self, fields: Sequence[str] | None) -> list[str]:
        if fields is None:
            return list(self.schema)
        unknown = [f for f in fields if f not in self.schema]
        if unknown:
            raise StoreError(
                f"{self.path}: no field(s) {', '.join(map(repr, unknown))}; "
                f"the store has {', '.join(self.schema)}"
            )
        return list(fields)

    def get(self, item_id: str, fields: Sequence[str] | None = None) -> Record:
        row = self._conn.execute("SELECT shard, row FROM items WHERE id = ?", (item_id,)).fetchone()
        if row is None:
            raise KeyError(f"{item_id!r} is not in the store {self.path}")
        return self._reader(row[0]).read(row[1], self._fields(fields))

    def __getitem__(self, item_id: str) -> Record:
        return self.get(item_id)

    def get_many(self, ids: Sequence[str], fields: Sequence[str] | None = None) -> list[Record]:
        names = self._fields(fields)
        where = index.locate_many(self._conn, list(ids))
        missing = [i for i in ids if i not in where]
        if missing:
            raise KeyError(f"{len(missing)} id(s) not in the store {self.path}, e.g. {missing[0]!r}")
        by_shard: dict[int, list[str]] = defaultdict(list)
        for item_id in dict.fromkeys(ids):
            by_shard[where[item_id][0]].append(item_id)
        found: dict[str, Record] = {}
        for shard in sorted(by_shard):
            reader = self._reader(shard)
            for item_id in sorted(by_shard[shard], key=lambda i: where[i][1]):
                found[item_id] = reader.read(where[item_id][1], names)
        return [found[i] for i in ids]

    def iter_records(self, fields: Sequence[str] | None = None) -> Iterator[tuple[str, Record]]:
        """Every item in storage order, reading each shard's datasets whole (the fast sequential path)."""
        names = self._fields(fields)
        for shard, *_ in index.shard_rows(self._conn):
            reader = self._reader(shard)
            yield from zip(reader.ids, reader.iter_all(names))

    def __iter__(self) -> Iterator[tuple[str, Record]]:
        return self.iter_records()

    def iter_field(self, name: str) -> Iterator[tuple[str, Any]]:
        for item_id, record in self.iter_records([name]):
            yield item_id, record[name]

    def geometry(self, item_id: str, dims: int | str = 4) -> np.ndarray:
        """Box geometry of a region item, computed from its boxes and image size (see geometry.py)."""
        needed = ("boxes", "image_h", "image_w")
        if any(n not in self.schema for n in needed):
            raise StoreError(f"{self.path}: geometry needs the fields {', '.join(needed)} (a regions store)")
        rec = self.get(item_id, needed)
        return box_geometry(rec["boxes"], rec["image_h"], rec["image_w"], dims)

    def torch_dataset(
        self,
        fields: Sequence[str] | None = None,
        max_items: int | None = None,
        geometry: int | str | None = None,
        ids: Iterable[str] | None = None,
    ):
        from .dataset import FeatureDataset

        return FeatureDataset(self, fields=fields, max_items=max_items, geometry=geometry, ids=ids)
