"""`StoreWriter`: append items to a store, a shard at a time, with atomic commits and resume."""

from __future__ import annotations

import fcntl
import os
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from vlprep.checksums import file_sha256

from . import index
from .errors import NotAStoreError, StoreError, StoreMismatchError, damaged
from .ids import check_id, escape_id, id_problem
from .layout import (
    INDEX_FILE,
    LOCK_FILE,
    META_FILE,
    SHARD_DIR,
    TMP_SUFFIX,
    WRITTEN_PREFIX,
    is_shard_tmp,
    is_written_name,
    parse_shard_name,
    shard_name,
)
from .metadata import canonical, load_meta, looks_like_store, new_meta, save_meta
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
from .shard import COMPRESSIONS, identity, read_identity, structure_faults, write_shard
from .sink import ShardSink

DEFAULT_COMPRESSION = "none"
# What a writer killed while creating a store can have left behind, besides an empty index.
_CREATION_LEFTOVERS = {
    LOCK_FILE,
    META_FILE + TMP_SUFFIX,
    SHARD_DIR,
    INDEX_FILE,
    INDEX_FILE + "-journal",
    INDEX_FILE + TMP_SUFFIX,
}


def acquire_lock(root: Path):
    """The one-writer-at-a-time lock (repair takes it too); released by release_lock."""
    handle = open(root / LOCK_FILE, "a+")  # noqa: SIM115 (held until release_lock)
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise StoreError(f"{root}: another StoreWriter has this store open") from None
    return handle


def release_lock(handle) -> None:
    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    handle.close()


def check_writable(path: str | os.PathLike, overwrite: bool = False) -> None:
    """Raises what `StoreWriter(path, overwrite=overwrite)` would raise about the directory itself (not a
    directory, someone else's directory, a damaged `store.json` or index), reading only `store.json` and
    the index: no lock, no shard opened, nothing created or changed. A job calls it before it starts Ray
    or loads a model, so that a store it would refuse is refused at once. Parameters (kind, producer,
    schema) are still checked by the writer."""
    root = Path(path)
    if not root.exists():
        return
    if not root.is_dir():
        raise StoreError(f"{root} exists and is not a directory")
    if not (root / META_FILE).is_file():
        if not _only_creation_leftovers(root):
            _refuse(root)
        return
    load_meta(root)
    if not _index_expected(root):
        return
    conn = index.connect(root / INDEX_FILE, readonly=True)
    try:
        if not overwrite:  # overwrite replaces the index: the writer does not check it then either
            index.check_consistent(conn)
    finally:
        conn.close()


def _index_expected(root: Path) -> bool:
    """False only for a store whose index was never created and that has no shard: nothing to lose, the
    writer creates the index."""
    shards = root / SHARD_DIR
    return (root / INDEX_FILE).exists() or (
        shards.is_dir() and any(parse_shard_name(p.name) for p in shards.iterdir())
    )


def _refuse(root: Path) -> None:
    if looks_like_store(root):
        raise damaged(root, f"{META_FILE} is missing")
    raise NotAStoreError(
        f"{root} is a non-empty directory that is not a vlprep store; refusing to write into it "
        "(with or without --overwrite)"
    )


def _only_creation_leftovers(root: Path) -> bool:
    if not {p.name for p in root.iterdir()} <= _CREATION_LEFTOVERS:
        return False
    shards = root / SHARD_DIR
    if shards.exists() and (not shards.is_dir() or any(shards.iterdir())):
        return False
    if not (root / INDEX_FILE).exists():
        return True
    try:
        conn = index.connect(root / INDEX_FILE, readonly=True)
    except StoreError:
        return False
    try:
        return index.is_empty(conn)
    except StoreError:
        return False
    finally:
        conn.close()


class StoreWriter:
    """Append items to the store at `path`, creating it if needed.

    Items are buffered and committed a shard at a time: the shard file is written as `.tmp`, fsynced and
    renamed, and only then are its ids inserted into the index in one transaction. A crash therefore
    loses at most the uncommitted shard, and `pending()` tells a resumed job what is left to do.

    The writer deletes only what it can prove it made: its own `.tmp` files, and shard files that carry
    this store's uuid and hold no committed item. A directory that is not a vlprep store (and is not
    empty) is refused, with or without `overwrite`; a damaged store is refused until `vlprep repair`.
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
        self._failed: BaseException | None = None
        self._conn = None

        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"{self.root} exists and is not a directory")
        self.root.mkdir(parents=True, exist_ok=True)
        if not (self.root / META_FILE).is_file() and not _only_creation_leftovers(self.root):
            _refuse(self.root)  # before the lock file: nothing is created in someone else's directory
        self._lock = self._acquire_lock()
        try:
            existing = self._existing_store()
            if existing and overwrite:
                self._remove_store()
                existing = False
            if existing:
                self._open(kind, producer, dtype, compression)
            else:
                self._create(kind, producer, dtype, compression)
            self._declare(schema)
        except BaseException as exc:
            if self._conn is not None:
                self._conn.close()
            self._release_lock()
            if isinstance(exc, OSError):
                raise index.os_error(self.root, exc, "opening the store") from None
            raise

    # -- opening -----------------------------------------------------------------------------------

    def _existing_store(self) -> bool:
        """True for a store to resume; False for a directory a new store may be created in (empty, or
        holding only the empty remains of a writer killed while creating the store). Anything else is
        refused: someone else's directory, or a store whose store.json or index is damaged."""
        root = self.root
        if (root / META_FILE).is_file():
            return True
        if _only_creation_leftovers(self.root):
            return False
        _refuse(self.root)

    def _own_shard_files(self, meta: dict[str, Any], indexed: set[str]) -> tuple[list[Path], list[str]]:
        """Files in shards/ this store provably made (its `.tmp`s, the files its index lists, shards
        carrying its uuid), and the names of everything else there."""
        own, foreign = [], []
        for path in self._shard_paths():
            mine = path.is_file() and (
                is_shard_tmp(path.name)
                or path.name in indexed
                or (
                    (parse_shard_name(path.name) is not None or is_written_name(path.name))
                    and (read_identity(path) or {}).get("store_uuid") == meta["uuid"]
                )
            )
            (own.append(path) if mine else foreign.append(path.name))
        return own, foreign

    def _remove_store(self) -> None:
        """overwrite=True: remove this store's own files, refusing if shards/ holds anything else."""
        meta = self._load_meta()
        indexed: set[str] = set()
        if (self.root / INDEX_FILE).exists() or any(parse_shard_name(p.name) for p in self._shard_paths()):
            # a damaged index is refused too: its error records are not ours to drop unasked
            conn = index.connect(self.root / INDEX_FILE, readonly=True)
            indexed = {row[1] for row in index.shard_rows(conn)}
            conn.close()
        own, foreign = self._own_shard_files(meta, indexed)
        if foreign:
            raise NotAStoreError(
                f"{self.root}: refusing to overwrite: {SHARD_DIR}/ holds {len(foreign)} file(s) that are not "
                f"this store's (e.g. {foreign[0]!r}); move them away first"
            )
        for path in own:
            path.unlink()
        for name in (INDEX_FILE, INDEX_FILE + "-journal", META_FILE):
            (self.root / name).unlink(missing_ok=True)

    def _shard_paths(self) -> list[Path]:
        shard_dir = self.root / SHARD_DIR
        return sorted(shard_dir.iterdir()) if shard_dir.is_dir() else []

    def _load_meta(self) -> dict[str, Any]:
        meta = load_meta(self.root)
        if "uuid" not in meta:
            # A store written before stores had identities: it gets one now. Its old shards carry none,
            # so the writer never deletes them (only files its index lists count as its own).
            meta["uuid"] = uuid.uuid4().hex
            save_meta(self.root, meta)
        return meta

    def _acquire_lock(self):
        return acquire_lock(self.root)

    def _release_lock(self) -> None:
        if self._lock is not None:
            release_lock(self._lock)
            self._lock = None

    def _create(self, kind, producer, dtype, compression) -> None:
        # Order matters for a crash and for a reader polling the new store: store.json first, then the
        # index (renamed into place whole). A directory without store.json then holds at most the empty
        # remains _existing_store recognises; one without the index but no shard gets a new index.
        root = self.root
        (root / META_FILE).with_name(META_FILE + TMP_SUFFIX).unlink(missing_ok=True)
        for name in (INDEX_FILE, INDEX_FILE + "-journal"):
            (root / name).unlink(missing_ok=True)
        (root / SHARD_DIR).mkdir(exist_ok=True)
        self.meta = new_meta(kind, self.shard_size, dtype, compression or DEFAULT_COMPRESSION, producer)
        save_meta(root, self.meta)
        self._conn = index.create(root / INDEX_FILE)
        self.generation = 0
        self._next_shard = 0

    def _open(self, kind, producer, dtype, compression) -> None:
        root = self.root
        meta = self._load_meta()
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
        (root / SHARD_DIR).mkdir(exist_ok=True)
        if not _index_expected(root):
            # store.json was saved but the index never created, and no shard exists: nothing to lose.
            self._conn = index.create(root / INDEX_FILE)
        else:
            self._conn = index.connect(root / INDEX_FILE, readonly=False)
            index.check_consistent(self._conn)
        self.meta = meta
        self._reconcile()

    def _reconcile(self) -> None:
        """Bring the directory and store.json in line with the index after a crash, deleting only what
        this store provably made and nothing committed."""
        root, meta, conn = self.root, self.meta, self._conn
        rows = index.shard_rows(conn)
        if any(parse_shard_name(file) is None and not is_written_name(file) for _, file, *_ in rows):
            raise damaged(root, f"{INDEX_FILE} names a shard file that is not a shard name")
        indexed = {number: parse_shard_name(file) for number, file, *_ in rows}
        # numbered files only: a committed ShardSink file keeps its w- name until add_field renumbers it
        indexed_gen = {number: ng[1] for number, ng in indexed.items() if ng is not None}
        top_gen = max(indexed_gen.values(), default=0)
        if top_gen > meta["generation"]:
            # add_field switched the index to a new generation and was stopped before saving
            # store.json: roll forward to the schema the indexed shards carry.
            number = next(n for n, g in indexed_gen.items() if g == top_gen)
            ident = read_identity(root / SHARD_DIR / shard_name(number, top_gen))
            if ident is None or ident["store_uuid"] != meta["uuid"]:
                raise damaged(root, f"shard {shard_name(number, top_gen)} has no identity of this store")
            meta["schema"], meta["generation"] = ident["schema"], top_gen
            save_meta(root, meta)
        self.generation = meta["generation"]
        numbers = set(indexed)
        listed = {file for _, file, *_ in rows}
        unlisted_written: list[Path] = []
        for path in self._shard_paths():
            if path.is_dir():
                continue  # not ours: left alone (verify and repair mention it)
            if is_shard_tmp(path.name):
                path.unlink()  # an unfinished write of ours: none of its items exists
                continue
            parsed = parse_shard_name(path.name)
            if parsed is None:
                if is_written_name(path.name) and path.name not in listed:
                    unlisted_written.append(path)  # numbered after the numbered shards, below
                continue
            number, gen = parsed
            numbers.add(number)
            if number in indexed_gen and gen == indexed_gen[number]:
                continue
            ident = read_identity(path)
            if ident is None or ident["store_uuid"] != meta["uuid"]:
                continue  # not provably ours: never touched (repair quarantines it)
            if number in indexed:
                if gen > indexed_gen.get(number, -1):
                    path.unlink()  # a generation add_field built but never switched to
                # a lower generation is superseded: kept for open readers until `vlprep repair --gc`
            elif gen == self.generation and self._adopt(path, number, ident):
                pass
        self._next_shard = max(numbers, default=-1) + 1
        # A worker-written shard whose receipt never reached the driver (the driver or the job was killed
        # in between) is adopted the same way, so that a resumed job does not extract its items again.
        for path in sorted(unlisted_written, key=lambda p: (p.stat().st_mtime_ns, p.name)):
            ident = read_identity(path)
            if ident is None or ident["store_uuid"] != meta["uuid"] or ident["generation"] != self.generation:
                continue  # not provably ours, or written before an add_field: left for `vlprep repair`
            if self._adopt(path, self._next_shard, ident):
                self._next_shard += 1

    def _adopt(self, path: Path, number: int, ident: dict[str, Any]) -> bool:
        """A complete shard of ours whose index transaction never ran (a crash between the rename and
        the commit): its items are added to the index unless any of them is already committed."""
        import h5py

        schema = self.meta["schema"]
        if not schema and is_written_name(path.name):
            schema = ident["schema"]  # workers wrote before the driver committed anything
        if not schema or ident["schema"] != schema:
            return False
        try:
            with h5py.File(path, "r") as f:
                faults, _, _ = structure_faults(f, schema_from_json(schema))
                ids = [] if faults else f["ids"].asstr()[()].tolist()
        except Exception:
            return False
        if faults or not ids or len(set(ids)) != len(ids) or index.committed_among(self._conn, ids):
            return False
        if not self.meta["schema"]:
            self.meta["schema"] = schema
            save_meta(self.root, self.meta)  # before the commit: a schema without items is harmless
        index.commit_shard(self._conn, number, path.name, ids, path.stat().st_size, file_sha256(path))
        return True

    def _declare(self, schema: Mapping[str, Any] | None) -> None:
        self.dtype = self.meta["dtype"]
        self.schema: Schema | None = schema_from_json(self.meta["schema"]) if self.meta["schema"] else None
        if schema is not None:
            declared = with_storage_dtype(normalize_schema(schema), self.dtype)
            if self.schema is None:
                self._set_schema(declared)
            else:
                check_same_schema(self.schema, declared, str(self.root))

    def _set_schema(self, schema: Schema) -> None:
        self.schema = schema
        self.meta["schema"] = schema_to_json(schema)
        self._save_meta()

    # -- writing -----------------------------------------------------------------------------------

    def pending(self, ids: Iterable[str]) -> list[str]:
        """The given ids, in order and without repeats, that are neither committed nor buffered."""
        ids = list(dict.fromkeys(ids))
        # an invalid id is never committed; it stays pending so that add() turns it into an error
        done = index.committed_among(self._conn, [i for i in ids if id_problem(i) is None])
        return [i for i in ids if i not in done and i not in self._buffered]

    def add(self, item_id: str, record: Mapping[str, Any]) -> None:
        self._check_open()
        check_id(item_id)
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
        # An id that cannot be stored (a NUL, a lone surrogate) is recorded in its escaped form.
        try:
            index.record_error(self._conn, escape_id(str(item_id)), str(source), str(stage), str(message))
        except OSError as exc:
            raise index.os_error(self.root, exc, "recording an error") from None

    def record_run(self, summary: Mapping[str, Any]) -> None:
        self._check_open()
        self.meta.setdefault("runs", []).append({"at": index.now(), **canonical(dict(summary))})
        self._save_meta()

    def _save_meta(self) -> None:
        try:
            save_meta(self.root, self.meta)
        except OSError as exc:
            raise index.os_error(self.root, exc, f"saving {META_FILE}") from None

    def flush(self) -> None:
        """Commit the buffered items as one shard now."""
        self._check_open()
        if not self._buffer:
            return
        if self._failed is not None:
            raise StoreError(f"{self.root}: an earlier write failed ({self._failed}); reopen to resume")
        number = self._next_shard
        name = shard_name(number, self.generation)
        path = self.root / SHARD_DIR / name
        attrs = identity(self.meta, number, self.generation, self.schema)
        try:
            write_shard(path, self._buffer_ids, self._buffer, self.schema, self.meta["compression"], attrs)
            size, sha = path.stat().st_size, file_sha256(path)
            index.commit_shard(self._conn, number, name, self._buffer_ids, size, sha)
        except OSError as exc:
            self._failed = index.os_error(self.root, exc, f"writing shard {name}")
            raise self._failed from None
        except StoreError as exc:
            self._failed = exc
            raise
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
            identity=identity(self.meta, -1, self.generation, self.schema or {}),
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
            if self._failed is None:
                # After a failed write the buffer is not retried here: the error has been raised
                # once, the committed items are intact, and a rerun resumes.
                self.flush()
                self._save_meta()
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
