"""Where things live inside a store directory, and the small file-system primitives the store relies on."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from .faults import step

FORMAT_VERSION = 1
META_FILE = "store.json"
INDEX_FILE = "index.sqlite"
SHARD_DIR = "shards"
QUARANTINE_DIR = "quarantine"
LOCK_FILE = ".writer.lock"
TMP_SUFFIX = ".tmp"

_SHARD_RE = re.compile(r"(\d{5,})(?:\.g(\d+))?\.h5")
# shards written by other processes through a ShardSink (numbered only when committed)
WRITTEN_PREFIX = "w-"
_WRITTEN_RE = re.compile(r"w-[0-9a-f]{32}\.h5")


def shard_name(number: int, generation: int = 0) -> str:
    # A generation suffix appears only once a field has been added in place (a rewritten shard).
    return f"{number:05d}.h5" if generation == 0 else f"{number:05d}.g{generation}.h5"


def parse_shard_name(name: str) -> tuple[int, int] | None:
    """(number, generation) of a shard file name, or None for any other name (a `.tmp` included)."""
    m = _SHARD_RE.fullmatch(name)
    return (int(m.group(1)), int(m.group(2) or 0)) if m else None


def is_written_name(name: str) -> bool:
    """The name of a shard a ShardSink wrote (`w-<32 hex>.h5`)."""
    return _WRITTEN_RE.fullmatch(name) is not None


def is_shard_tmp(name: str) -> bool:
    """A shard being written: the names only a StoreWriter, add_field or a ShardSink create in shards/."""
    if not name.endswith(TMP_SUFFIX):
        return False
    final = name[: -len(TMP_SUFFIX)]
    return parse_shard_name(final) is not None or is_written_name(final)


def fsync_dir(path: Path) -> None:
    step("fsync_dir")
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    step("fsync_file")
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def replace(src: Path, dst: Path) -> None:
    step("rename")
    os.replace(src, dst)


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + TMP_SUFFIX)
    step("json_write")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=False, ensure_ascii=False)
        f.write("\n")
        f.flush()
        step("json_fsync")
        os.fsync(f.fileno())
    replace(tmp, path)
    fsync_dir(path.parent)


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)
