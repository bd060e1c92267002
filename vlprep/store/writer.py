"""`StoreWriter`: append items to a store, a shard at a time, with atomic commits and resume."""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from vlprep.checksums import file_sha256

from . import index
from .errors import StoreError, StoreMismatchError
from .layout import INDEX_FILE, META_FILE, SHARD_DIR, TMP_SUFFIX, shard_name
from .metadata import canonical, load_meta, new_meta, save_meta
from .schema import (
    Schema,
    check_same_schema,
    coerce_record,
    infer_schema,
    normalize_schema,
    schema_from_json,
    schema_to_json,
    with_storage_dtype,
)
from .shard import COMPRESSIONS, write_shard
from .sink import WRITTEN_PREFIX, ShardSink

LOCK_FILE = ".writer.lock"
DEFAULT_COMPRESSION = "none"


class StoreWriter:
    """Append items to the store at `path`, creating it if needed.

    Items are buffered and committed a shard at a time: the shard file is written as `.tmp`, fsynced and
    renamed, and only then are its ids inserted into the index in one transaction. A crash therefore
    loses at most the uncommitted shard, and `pending()` tells a resumed job what is left to do.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        kind: str = "features",
        schema: Mapping[str, Any] | None = None,
        shard_size: int = 1000,
        producer: Any = None,
        dtype: str | None = None,
        compression: str | None = None,
        overwrite: bool = False,
    ):
        if shard_size < 1:
            raise StoreError(f"shard_size must be at least 1, got {shard_size}")
        if compression is not None and compression not in COMPRESSIONS:
            raise StoreError(f"unknown compression {compression!r}; choose one of {', '.join(COMPRESSIONS)}")
        self.root = Path(path)
        self.shard_size = shard_size
        self._buffer_ids: list[str] = []
        self._buffer: list[dict[str, Any]] = []
        self._buffered: set[str] = set()
        self._closed = False

        self._check_directory()
        self._lock = self._acquire_lock()
        try:
            if overwrite or not (self.root / META_FILE).is_file():
                self._wipe()
            (self.root / SHARD_DIR).mkdir(exist_ok=True)
            self._open(kind, schema, producer, dtype, compression)
        except BaseException:
            self._release_lock()
            raise

    # -- opening -----------------------------------------------------------------------------------

    def _check_directory(self) -> None:
        root = self.root
        if root.exists() and not root.is_dir():
            raise StoreError(f"{root} exists and is not a directory")
        # A writer killed while creating the store may leave its own first files behind; anything
        # else in the directory belongs to someone else.
        own = {LOCK_FILE, META_FILE + TMP_SUFFIX, SHARD_DIR, INDEX_FILE, INDEX_FILE + "-journal"}
        if (
            root.is_dir()
            and not (root / META_FILE).is_file()
            and any(p.name not in own for p in root.iterdir())
        ):
            raise StoreError(
                f"{root} is a non-empty directory that is not a vlprep store; refusing to write into it"
            )
        root.mkdir(parents=True, exist_ok=True)

    def _wipe(self) -> None:
        for name in (META_FILE, INDEX_FILE, INDEX_FILE + "-journal", SHARD_DIR):
            target = self.root / name
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)

    def _acquire_lock(self):
        handle = open(self.root / LOCK_FILE, "a+")  # noqa: SIM115 (held until close())
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise StoreError(f"{self.root}: another StoreWriter has this store open") from None
        return handle

    def _release_lock(self) -> None:
        if self._lock is not None:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def _open(self, kind, schema, producer, dtype, compression) -> None:
        root = self.root
        if (root / META_FILE).is_file():
            meta = load_meta(root)
            if meta["kind"] != kind:
                raise StoreMismatchError(
                    f"{root}: the store holds kind {meta['kind']!r}, the writer writes {kind!r}; "
                    "use another --out or overwrite=True (--overwrite)"
                )
            if producer is not None and canonical(producer) != meta["producer"]:
                raise StoreMismatchError(
                    f"{root}: extraction parameters differ from those the store was written with:\n"
                    f"{_dict_diff(meta['producer'], canonical(producer))}\n"
                    "use another --out, or overwrite=True (--overwrite) to replace the store"
                )
            if dtype is not None and dtype != meta["dtype"]:
                raise StoreMismatchError(f"{root}: store dtype is {meta['dtype']!r}, writer asks {dtype!r}")
            if compression is not None:
                meta["compression"] = compression
        else:
            meta = new_meta(kind, self.shard_size, dtype, compression or DEFAULT_COMPRESSION, producer)
            save_meta(root, meta)
        self.meta = meta
        self.dtype = meta["dtype"]
        self.schema: Schema | None = schema_from_json(meta["schema"]) if meta["schema"] else None
        if schema is not None:
            declared = with_storage_dtype(normalize_schema(schema), self.dtype)
            if self.schema is None:
                self._set_schema(declared)
            else:
                check_same_schema(self.schema, declared, str(root))

        self._conn = index.connect(root / INDEX_FILE, readonly=False)
        shards = index.shard_rows(self._conn)
        self._next_shard = max((row[0] for row in shards), default=-1) + 1
        self._clean_shard_dir({row[1] for row in shards})

    def _clean_shard_dir(self, known_files: set[str]) -> None:
        # Stray .tmp files and files whose index transaction never ran are remains of a crash:
        # none of their items exist, so they are removed and their items stay pending.
        for path in (self.root / SHARD_DIR).iterdir():
            if path.name.endswith(TMP_SUFFIX) or path.name not in known_files:
                path.unlink()

    def _set_schema(self, schema: Schema) -> None:
        self.schema = schema
        self.meta["schema"] = schema_to_json(schema)
        save_meta(self.root, self.meta)

    # -- writing -----------------------------------------------------------------------------------

    def pending(self, ids: Iterable[str]) -> list[str]:
        """The given ids, in order and without repeats, that are neither committed nor buffered."""
        ids = list(dict.fromkeys(ids))
        done = index.committed_among(self._conn, ids)
        return [i for i in ids if i not in done and i not in self._buffered]

    def add(self, item_id: str, record: Mapping[str, Any]) -> None:
        self._check_open()
        if not isinstance(item_id, str) or not item_id:
            raise StoreError(f"item ids are non-empty strings, got {item_id!r}")
        if item_id in self._buffered or index.committed_among(self._conn, [item_id]):
            raise StoreError(f"{self.root}: item {item_id!r} is already in the store")
        if self.schema is None:
            self._set_schema(with_storage_dtype(infer_schema(record), self.dtype))
        self._buffer.append(coerce_record(item_id, record, self.schema))
        self._buffer_ids.append(item_id)
        self._buffered.add(item_id)
        if len(self._buffer) >= self.shard_size:
            self.flush()

    def error(self, item_id: str, source: str, stage: str, message: str) -> None:
        """Record why an item could not be produced; a later successful commit of it clears this."""
        self._check_open()
        index.record_error(self._conn, str(item_id), str(source), str(stage), str(message))

    def record_run(self, summary: Mapping[str, Any]) -> None:
        self._check_open()
        self.meta.setdefault("runs", []).append({"at": index.now(), **canonical(dict(summary))})
        save_meta(self.root, self.meta)

    def flush(self) -> None:
        """Commit the buffered items as one shard now."""
        self._check_open()
        if not self._buffer:
            return
        number = self._next_shard
        name = shard_name(number)
        path = self.root / SHARD_DIR / name
        write_shard(path, self._buffer_ids, self._buffer, self.schema, self.meta["compression"])
        index.commit_shard(self._conn, number, name, self._buffer_ids, path.stat().st_size, file_sha256(path))
        self._next_shard += 1
        self._buffer, self._buffer_ids, self._buffered = [], [], set()

    def sink(self) -> ShardSink:
        """What another process needs to write complete shards of this store itself (`ShardSink.write`);
        each comes back here as a receipt for `commit_written`."""
        self._check_open()
        return ShardSink(
            root=str(self.root),
            schema=self.meta["schema"] or None,
            dtype=self.dtype,
            compression=self.meta["compression"],
            meta_sha256=file_sha256(self.root / META_FILE),
        )

    def commit_written(self, receipt: Mapping[str, Any]) -> None:
        """Commits a shard that a `ShardSink` wrote (its receipt: file, ids, bytes, sha256, schema) to the
        index in one transaction, after checking that this process sees the file at the size its writer
        reported, that its schema is the store's and that none of its ids is already in the store."""
        self._check_open()
        name = str(receipt["file"])
        if not name.startswith(WRITTEN_PREFIX) or "/" in name or name.endswith(TMP_SUFFIX):
            raise StoreError(f"{self.root}: {name!r} is not the name of a shard written through a sink")
        path = self.root / SHARD_DIR / name
        if not path.is_file():
            raise StoreError(
                f"{self.root}: shard {name}, written by another process, is not here: the store directory "
                "must be on a filesystem that every writing node shares"
            )
        size = path.stat().st_size
        if size != int(receipt["bytes"]):
            raise StoreError(
                f"{self.root}: shard {name} has {size} bytes, its writer wrote {receipt['bytes']}"
            )
        schema = schema_from_json(receipt["schema"])
        if self.schema is None:
            self._set_schema(schema)
        else:
            check_same_schema(self.schema, schema, str(self.root))
        ids = [str(i) for i in receipt["ids"]]
        taken = [i for i in ids if i in self._buffered] or sorted(index.committed_among(self._conn, ids))
        if taken:
            raise StoreError(f"{self.root}: shard {name} holds {taken[0]!r}, which is already in the store")
        index.commit_shard(self._conn, self._next_shard, name, ids, size, str(receipt["sha256"]))
        self._next_shard += 1

    @property
    def committed(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM items").fetchone()[0]

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    # -- closing -----------------------------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        try:
            self.flush()
            save_meta(self.root, self.meta)
        finally:
            self._closed = True
            self._conn.close()
            self._release_lock()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self.root}: the writer is closed")

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _dict_diff(old: Any, new: Any) -> str:
    if not isinstance(old, dict) or not isinstance(new, dict):
        return f"  store: {old!r}\n  now:   {new!r}"
    lines = [
        f"  {key}: store has {old.get(key, '<absent>')!r}, now {new.get(key, '<absent>')!r}"
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key)
    ]
    return "\n".join(lines)
