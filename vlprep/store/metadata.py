"""`store.json`: format version, kind, schema, producer, settings and the record of runs."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from vlprep import __version__

from .errors import NotAStoreError, StoreError, damaged
from .index import now
from .layout import FORMAT_VERSION, META_FILE, read_json, write_json_atomic


def new_meta(
    kind: str, shard_size: int, dtype: str | None, compression: str, producer: Any
) -> dict[str, Any]:
    stamp = now()
    return {
        "format": "vlprep-store",
        "format_version": FORMAT_VERSION,
        "uuid": uuid.uuid4().hex,
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
    """The store's metadata, checked field by field. A directory that only looks like a store (an index
    or shards but no readable `store.json`) raises StoreDamagedError naming `vlprep repair`."""
    path = root / META_FILE
    if not path.is_file():
        if not root.exists():
            raise NotAStoreError(f"{root}: no such store (the directory does not exist)")
        if looks_like_store(root):
            raise damaged(root, f"{META_FILE} is missing")
        raise NotAStoreError(f"{root} is not a vlprep store: it has no {META_FILE}")
    try:
        meta = read_json(path)
    except UnicodeDecodeError:
        raise damaged(root, f"{META_FILE} is not UTF-8 text") from None
    except ValueError as exc:
        raise damaged(root, f"{META_FILE} is not valid JSON ({exc})") from None
    except OSError as exc:
        raise StoreError(f"{path}: cannot read the store metadata ({exc.strerror or exc})") from exc
    problem = meta_problem(meta)
    if problem:
        raise damaged(root, f"{META_FILE} {problem}")
    if meta["format_version"] > FORMAT_VERSION:
        raise StoreError(
            f"{root}: store format v{meta['format_version']} is newer than this vlprep reads "
            f"(v{FORMAT_VERSION}); upgrade vlprep"
        )
    return meta


def looks_like_store(root: Path) -> bool:
    """An index, or shard-named files in shards/: what is left of a store that lost its store.json."""
    from .layout import INDEX_FILE, SHARD_DIR, is_written_name, parse_shard_name

    shards = root / SHARD_DIR
    return (root / INDEX_FILE).exists() or (
        shards.is_dir() and any(parse_shard_name(p.name) or is_written_name(p.name) for p in shards.iterdir())
    )


_TYPES: dict[str, tuple[type, ...]] = {
    "format_version": (int,),
    "kind": (str,),
    "shard_size": (int,),
    "dtype": (str, type(None)),
    "compression": (str,),
    "generation": (int,),
    "uuid": (str,),
    "schema": (dict, type(None)),
    "runs": (list,),
}


def meta_problem(meta: Any) -> str | None:
    """What is wrong with a parsed `store.json`, or None. Every field a command relies on is checked, so
    that a hand-edited or half-written file is refused in one line instead of failing later."""
    if not isinstance(meta, dict) or meta.get("format") != "vlprep-store":
        return "is not vlprep store metadata"
    for key, types in _TYPES.items():
        if key == "uuid" and key not in meta:
            continue  # stores written before store identities existed are still readable
        if key not in meta:
            return f"has no {key!r}"
        if not isinstance(meta[key], types) or (isinstance(meta[key], bool) and bool not in types):
            return f"has a {type(meta[key]).__name__} for {key!r}"
    if meta["shard_size"] < 1 or meta["generation"] < 0:
        return "has a negative shard_size or generation"
    for name, spec in (meta["schema"] or {}).items():
        if (
            not isinstance(spec, dict)
            or not isinstance(spec.get("dtype"), str)
            or not isinstance(spec.get("shape"), list)
            or not all(d is None or (isinstance(d, int) and d >= 0) for d in spec["shape"])
        ):
            return f"has an invalid schema entry for {name!r}"
    return None


def save_meta(root: Path, meta: dict[str, Any]) -> None:
    meta["updated"] = now()
    write_json_atomic(root / META_FILE, meta)
