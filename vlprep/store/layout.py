"""Where things live inside a store directory, and the small file-system primitives the store relies on."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
META_FILE = "store.json"
INDEX_FILE = "index.sqlite"
SHARD_DIR = "shards"
TMP_SUFFIX = ".tmp"


def shard_name(number: int, generation: int = 0) -> str:
    # A generation suffix appears only once a field has been added in place (a rewritten shard).
    return f"{number:05d}.h5" if generation == 0 else f"{number:05d}.g{generation}.h5"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + TMP_SUFFIX)
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=False, ensure_ascii=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)
