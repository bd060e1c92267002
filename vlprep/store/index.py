"""The SQLite index: which item lives in which shard row, the shards with their checksums, the errors.

An item exists if and only if this index has it; shard files are published before their rows are
inserted, in one transaction per shard, so a crash between the two leaves only an orphan file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

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


def connect(path: Path, readonly: bool) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60, check_same_thread=False)
    else:
        # The pipeline's writer runs on a commit thread of the process that opened it (one thread at a
        # time: the StoreWriter is never shared), so the connection is not tied to its creating thread.
        conn = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(SCHEMA_SQL)
    return conn


def commit_shard(
    conn: sqlite3.Connection, shard: int, file: str, ids: Sequence[str], size: int, sha256: str
) -> None:
    with transaction(conn):
        conn.execute(
            "INSERT INTO shards VALUES (?, ?, ?, ?, ?, ?)", (shard, file, len(ids), size, sha256, now())
        )
        conn.executemany("INSERT INTO items VALUES (?, ?, ?)", ((i, shard, r) for r, i in enumerate(ids)))
        _delete_errors(conn, ids)


def _delete_errors(conn: sqlite3.Connection, ids: Sequence[str]) -> None:
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        conn.execute(f"DELETE FROM errors WHERE id IN ({','.join('?' * len(chunk))})", chunk)


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def record_error(conn: sqlite3.Connection, item_id: str, source: str, stage: str, message: str) -> None:
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
