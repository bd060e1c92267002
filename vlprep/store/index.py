"""The SQLite index: which item lives in which shard row, the shards with their checksums, the errors.

An item exists if and only if this index has it; shard files are published before their rows are
inserted, in one transaction per shard, so a crash between the two leaves only an orphan file.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from pathlib import Path

from .errors import StoreError, StoreIOError, damaged
from .faults import step

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS items (id TEXT PRIMARY KEY, shard INTEGER NOT NULL, row INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS items_by_shard ON items (shard, row);
CREATE TABLE IF NOT EXISTS shards (
    shard INTEGER PRIMARY KEY, file TEXT NOT NULL, items INTEGER NOT NULL, bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL, committed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS errors (
    id TEXT NOT NULL, source TEXT, stage TEXT NOT NULL, message TEXT, at TEXT NOT NULL,
    PRIMARY KEY (id, stage)
);
"""

_BATCH = 900  # stay under SQLite's host-parameter limit


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


TABLES = ("items", "shards", "errors")


def translate(root: Path, exc: sqlite3.DatabaseError) -> StoreError:
    """SQLite's error in the store's words: a damaged index names `vlprep repair`, a full disk ENOSPC."""
    message = str(exc)
    if "disk is full" in message:
        return StoreIOError(
            f"{root}: no space left on device (ENOSPC) while updating {INDEX_NAME}; the committed items "
            "are intact: free space and run the same command again to resume"
        )
    if "disk I/O error" in message:
        return StoreIOError(
            f"{root}: I/O error while using {INDEX_NAME} ({message}); check the disk, then rerun"
        )
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in message or "readonly" in message):
        return StoreError(f"{root}: {INDEX_NAME}: {message}")
    return damaged(root, f"{INDEX_NAME} is damaged ({message})")


INDEX_NAME = "index.sqlite"


class _Connection(sqlite3.Connection):
    """A connection whose errors are StoreErrors (IntegrityError, a caller's bug, passes through)."""

    root: Path

    def execute(self, *args):  # type: ignore[override]
        try:
            return super().execute(*args)
        except sqlite3.IntegrityError:
            raise
        except sqlite3.DatabaseError as exc:
            raise translate(self.root, exc) from None

    def executemany(self, *args):  # type: ignore[override]
        try:
            return super().executemany(*args)
        except sqlite3.IntegrityError:
            raise
        except sqlite3.DatabaseError as exc:
            raise translate(self.root, exc) from None


def connect(path: Path, readonly: bool, create: bool = False) -> sqlite3.Connection:
    """Open the index of the store at `path.parent`. An existing index must hold the three tables (a
    zero-length, garbled or foreign file is refused as damaged); `create` makes a new one."""
    root = path.parent
    if not create and not path.is_file():
        raise damaged(root, f"{INDEX_NAME} is missing")
    try:
        if readonly:
            conn = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, timeout=60, check_same_thread=False, factory=_Connection
            )
        else:
            # The pipeline's writer runs on a commit thread of the process that opened it (one thread at a
            # time: the StoreWriter is never shared), so the connection is not tied to its creating thread.
            conn = sqlite3.connect(
                path, timeout=60, isolation_level=None, check_same_thread=False, factory=_Connection
            )
    except sqlite3.DatabaseError as exc:
        raise translate(root, exc) from None
    conn.root = root
    try:
        if create:
            conn.execute("PRAGMA synchronous=FULL")
            for statement in SCHEMA_SQL.strip().split(";"):
                if statement.strip():
                    conn.execute(statement)
        else:
            found = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            missing = [t for t in TABLES if t not in found]
            if missing:
                raise damaged(root, f"{INDEX_NAME} has no table(s) {', '.join(missing)}")
            if not readonly:
                conn.execute("PRAGMA synchronous=FULL")
    except BaseException:
        conn.close()
        raise
    return conn


def create(path: Path) -> sqlite3.Connection:
    """A new, empty index, built beside `path` and renamed into place, so that a reader never finds an
    index without its tables."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    connect(tmp, readonly=False, create=True).close()
    os.replace(tmp, path)
    return connect(path, readonly=False)


def check_consistent(conn: sqlite3.Connection) -> None:
    """A writer's check before it trusts the index to decide what exists: SQLite's own page check, and
    every shard's item count against the items table."""
    root = conn.root  # type: ignore[attr-defined]
    result = [r[0] for r in conn.execute("PRAGMA quick_check")]
    if result != ["ok"]:
        raise damaged(root, f"{INDEX_NAME} fails SQLite's check ({'; '.join(result[:2])})")
    bad = conn.execute(
        "SELECT COUNT(*) FROM (SELECT shard, COUNT(*) AS n FROM items GROUP BY shard) AS i "
        "LEFT JOIN shards AS s ON s.shard = i.shard WHERE s.items IS NOT i.n"
    ).fetchone()[0]
    bad += conn.execute(
        "SELECT COUNT(*) FROM shards AS s WHERE s.items != (SELECT COUNT(*) FROM items WHERE shard = s.shard)"
    ).fetchone()[0]
    if bad:
        raise damaged(root, f"{INDEX_NAME} disagrees with itself ({bad} shard(s) with the wrong item count)")


def is_empty(conn: sqlite3.Connection) -> bool:
    return all(conn.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone() is None for t in TABLES)


def commit_shard(
    conn: sqlite3.Connection, shard: int, file: str, ids: Sequence[str], size: int, sha256: str
) -> None:
    with transaction(conn):
        step("sql_insert_shard")
        conn.execute(
            "INSERT INTO shards VALUES (?, ?, ?, ?, ?, ?)", (shard, file, len(ids), size, sha256, now())
        )
        step("sql_insert_items")
        conn.executemany("INSERT INTO items VALUES (?, ?, ?)", ((i, shard, r) for r, i in enumerate(ids)))
        step("sql_delete_errors")
        _delete_errors(conn, ids)


def _delete_errors(conn: sqlite3.Connection, ids: Sequence[str]) -> None:
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        conn.execute(f"DELETE FROM errors WHERE id IN ({','.join('?' * len(chunk))})", chunk)


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    step("sql_begin")
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        step("sql_commit")
        conn.execute("COMMIT")
    except BaseException:
        # After an I/O error SQLite may already have rolled back; a second ROLLBACK would then raise
        # "cannot rollback - no transaction is active" and hide the real cause.
        if conn.in_transaction:
            with suppress(StoreError):
                conn.execute("ROLLBACK")
        raise


def os_error(root: Path, exc: OSError, doing: str) -> StoreError:
    """An operating-system failure while writing, in one line; ENOSPC is named as such."""
    text = str(exc)
    if exc.errno == errno.ENOSPC or "No space left" in text:
        return StoreIOError(
            f"{root}: no space left on device (ENOSPC) while {doing}; the committed items are intact: "
            "free space and run the same command again to resume"
        )
    return StoreIOError(f"{root}: {exc.strerror or text} while {doing}; the committed items are intact")


def record_error(conn: sqlite3.Connection, item_id: str, source: str, stage: str, message: str) -> None:
    step("sql_record_error")
    conn.execute(
        "INSERT OR REPLACE INTO errors VALUES (?, ?, ?, ?, ?)", (item_id, source, stage, message, now())
    )


def committed_among(conn: sqlite3.Connection, ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        rows = conn.execute(f"SELECT id FROM items WHERE id IN ({','.join('?' * len(chunk))})", chunk)
        found.update(r[0] for r in rows)
    return found


def locate_many(conn: sqlite3.Connection, ids: Sequence[str]) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        rows = conn.execute(
            f"SELECT id, shard, row FROM items WHERE id IN ({','.join('?' * len(chunk))})", chunk
        )
        out.update((r[0], (r[1], r[2])) for r in rows)
    return out


def shard_rows(conn: sqlite3.Connection) -> list[tuple[int, str, int, int, str, str]]:
    return list(
        conn.execute("SELECT shard, file, items, bytes, sha256, committed_at FROM shards ORDER BY shard")
    )


def error_rows(conn: sqlite3.Connection) -> list[dict[str, str]]:
    cur = conn.execute("SELECT id, source, stage, message, at FROM errors ORDER BY at, id")
    return [dict(zip(("id", "source", "stage", "message", "at"), row)) for row in cur]


def iter_ids(conn: sqlite3.Connection) -> Iterable[str]:
    return (r[0] for r in conn.execute("SELECT id FROM items ORDER BY shard, row"))
