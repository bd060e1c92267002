"""`store.json`: format version, kind, schema, producer, settings and the record of runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vlprep import __version__

from .errors import StoreError
from .index import now
from .layout import FORMAT_VERSION, META_FILE, read_json, write_json_atomic


def new_meta(
    kind: str, shard_size: int, dtype: str | None, compression: str, producer: Any
) -> dict[str, Any]:
    stamp = now()
    return {
        "format": "vlprep-store",
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "schema": None,
        "producer": canonical(producer),
        "shard_size": shard_size,
        "dtype": dtype,
        "compression": compression,
        "generation": 0,
        "vlprep_version": __version__,
        "created": stamp,
        "updated": stamp,
        "runs": [],
    }


def canonical(value: Any) -> Any:
    """The JSON form of a value, so that tuples and lists (or numpy scalars) compare equal."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def load_meta(root: Path) -> dict[str, Any]:
    path = root / META_FILE
    if not path.is_file():
        if not root.exists():
            raise StoreError(f"{root}: no such store (the directory does not exist)")
        raise StoreError(f"{root} is not a vlprep store: it has no {META_FILE}")
    try:
        meta = read_json(path)
    except (OSError, ValueError) as exc:
        raise StoreError(f"{path}: unreadable store metadata ({exc})") from exc
    if meta.get("format") != "vlprep-store":
        raise StoreError(f"{path} is not vlprep store metadata")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise StoreError(
            f"{root}: store format v{meta['format_version']} is newer than this vlprep reads "
            f"(v{FORMAT_VERSION}); upgrade vlprep"
        )
    return meta


def save_meta(root: Path, meta: dict[str, Any]) -> None:
    meta["updated"] = now()
    write_json_atomic(root / META_FILE, meta)
