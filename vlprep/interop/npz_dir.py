"""A directory of `.npz` files, one per image, with the keys of the bottom-up-attention extraction
scripts (`x`, `bbox`, `num_bbox`, `image_h`, `image_w`) plus LXMERT-named object and attribute arrays
(`objects_id`, `objects_conf`, `attrs_id`, `attrs_conf`) and, on request, a box `geometry` encoding.

File names are one-to-one with ids: an id that is a safe relative path without `%` is its own name (ids
with slashes become subdirectories); any other id is percent-encoded whole (`%` included, so `a/../b` and
`a%2F..%2Fb` get different names); an id whose name would exceed a file-name limit becomes
`%sha256-<hex of its UTF-8>.npz`. `index.json` beside the files maps every id to its file."""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

KEYS = {
    "features": "x",
    "boxes": "bbox",
    "object_ids": "objects_id",
    "object_scores": "objects_conf",
    "attr_ids": "attrs_id",
    "attr_scores": "attrs_conf",
}
INDEX_FILE = "index.json"


# leaves room under the usual 255-byte limit for ".npz" and the ".tmp.npz" of the atomic write
_MAX_PART_BYTES = 200
_MAX_PATH_BYTES = 1024


def file_name(item_id: str) -> str:
    """The relative .npz path for an id; distinct ids always get distinct paths."""
    parts = item_id.split("/")
    safe = "%" not in item_id and all(
        p not in ("", ".", "..") and "\\" not in p and "\0" not in p for p in parts
    )
    name = item_id if safe else urllib.parse.quote(item_id, safe="", errors="surrogatepass")
    if len(name.encode("utf-8", "surrogatepass")) > _MAX_PATH_BYTES or any(
        len(part.encode("utf-8", "surrogatepass")) > _MAX_PART_BYTES for part in name.split("/")
    ):
        # '%s' never starts a percent-encoding, and safe names hold no '%': no other id maps here
        return f"%sha256-{hashlib.sha256(item_id.encode('utf-8', 'surrogatepass')).hexdigest()}.npz"
    return name + ".npz"


def npz_arrays(record: dict[str, Any], geometry: np.ndarray | None = None) -> dict[str, np.ndarray]:
    arrays = {new: np.asarray(record[old]) for old, new in KEYS.items() if old in record}
    n = int(np.asarray(record["features"]).shape[0])
    arrays["num_bbox"] = np.asarray(n)
    arrays["image_h"] = np.asarray(int(record["image_h"]))
    arrays["image_w"] = np.asarray(int(record["image_w"]))
    if geometry is not None:
        arrays["geometry"] = np.asarray(geometry)
    return arrays


def write_npz_dir(
    rows: Iterable[tuple[str, dict[str, Any]]],
    out_dir: str | Path,
    geometry: Any = None,
) -> int:
    """Writes one .npz per (id, record); `geometry(record) -> array` adds a `geometry` key. Returns the
    number of files."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    index: dict[str, str] = {}
    for item_id, record in rows:
        name = file_name(item_id)
        target = out_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        extra = geometry(record) if geometry is not None else None
        tmp = target.with_name(target.name + ".tmp.npz")
        np.savez(tmp, **npz_arrays(record, extra))
        tmp.replace(target)
        index[item_id] = name
    with open(out_dir / INDEX_FILE, "w", encoding="utf-8") as fh:
        json.dump(index, fh, ensure_ascii=False, indent=0)
    return len(index)


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}
