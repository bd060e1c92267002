"""LXMERT's bottom-up-attention TSV: one image per line, no header, tab-separated fields

    img_id img_h img_w objects_id objects_conf attrs_id attrs_conf num_boxes boxes features

where the last six arrays are base64 of raw little-endian buffers: objects_id/attrs_id int64,
objects_conf/attrs_conf float32, boxes float32 [n, 4], features float32 [n, D] (airsplay/lxmert
`src/utils.py:load_obj_tsv`). Lines end in CRLF, as Python's csv writer (which produced the published
files) writes them."""

from __future__ import annotations

import base64
import csv
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

FIELDNAMES = (
    "img_id",
    "img_h",
    "img_w",
    "objects_id",
    "objects_conf",
    "attrs_id",
    "attrs_conf",
    "num_boxes",
    "boxes",
    "features",
)
# TSV field -> (store field, dtype in the TSV)
ARRAYS = {
    "objects_id": ("object_ids", np.int64),
    "objects_conf": ("object_scores", np.float32),
    "attrs_id": ("attr_ids", np.int64),
    "attrs_conf": ("attr_scores", np.float32),
    "boxes": ("boxes", np.float32),
    "features": ("features", np.float32),
}
DEFAULT_FEATURE_DIM = 2048
# Larger than any photograph in the corpora these features come from (COCO, Visual Genome, CC: < 10k px)
# and small enough that drawing one stays within memory.
MAX_IMAGE_SIDE = 20_000


class TsvFormatError(ValueError):
    """A line that is not an LXMERT feature row."""


def _decode_array(text: str, dtype: type, where: str, field: str) -> np.ndarray:
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise TsvFormatError(f"{where}: field {field} is not base64 ({exc})") from None
    itemsize = np.dtype(dtype).itemsize
    if len(raw) % itemsize:
        raise TsvFormatError(f"{where}: field {field} has {len(raw)} bytes, not a multiple of {itemsize}")
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype)


def parse_row(
    row: list[str], where: str = "row", feature_dim: int | None = None
) -> tuple[str, dict[str, Any]]:
    """(img_id, record in the store's region layout) from the ten fields of one TSV line."""
    if len(row) != len(FIELDNAMES):
        raise TsvFormatError(f"{where}: {len(row)} fields, LXMERT TSV rows have {len(FIELDNAMES)}")
    fields = dict(zip(FIELDNAMES, row, strict=True))
    try:
        image_h, image_w, n = int(fields["img_h"]), int(fields["img_w"]), int(fields["num_boxes"])
    except ValueError:
        raise TsvFormatError(f"{where}: img_h, img_w and num_boxes must be integers") from None
    record: dict[str, Any] = {}
    for tsv_field, (store_field, dtype) in ARRAYS.items():
        values = _decode_array(fields[tsv_field], dtype, where, tsv_field)
        if tsv_field == "boxes":
            shape: tuple[int, ...] = (n, 4)
        elif tsv_field == "features":
            dim = len(values) // n if n else (feature_dim or DEFAULT_FEATURE_DIM)
            shape = (n, dim)
        else:
            shape = (n,)
        if values.size != int(np.prod(shape)):
            raise TsvFormatError(
                f"{where}: {tsv_field} holds {values.size} values, num_boxes={n} needs {shape}"
            )
        record[store_field] = values.reshape(shape)
    record["image_h"] = image_h
    record["image_w"] = image_w
    record["num_boxes"] = n
    check_record(record, where)
    return fields["img_id"], record


def check_record(record: dict[str, Any], where: str) -> None:
    """Refuses what no detector produces: a non-positive or absurd image size, non-finite values, boxes
    inverted or outside the image (beyond a pixel of slack: some exporters clip to W, others to W-1)."""
    image_h, image_w, n = record["image_h"], record["image_w"], record["num_boxes"]
    if n < 0:
        raise TsvFormatError(f"{where}: num_boxes is {n}")
    for name, side in (("img_h", image_h), ("img_w", image_w)):
        if not 1 <= side <= MAX_IMAGE_SIDE:
            raise TsvFormatError(f"{where}: {name} is {side}; an image side is 1..{MAX_IMAGE_SIDE:,} pixels")
    for store_field in ("boxes", "features", "object_scores", "attr_scores"):
        values = record[store_field]
        if values.size and not np.isfinite(values).all():
            raise TsvFormatError(f"{where}: {store_field} holds NaN or infinite values")
    boxes = record["boxes"]
    if n:
        x1, y1, x2, y2 = boxes.T
        if (x2 < x1).any() or (y2 < y1).any():
            raise TsvFormatError(f"{where}: a box has x2 < x1 or y2 < y1")
        if (boxes.min() < -1) or (x2.max() > image_w + 1) or (y2.max() > image_h + 1):
            raise TsvFormatError(f"{where}: boxes reach outside the {image_w}x{image_h} image")


def read_tsv(path: str | Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Streams (img_id, record) from an LXMERT TSV."""
    csv.field_size_limit(sys.maxsize)
    feature_dim = None
    with open(path, newline="", encoding="utf-8") as fh:
        rows = csv.reader(fh, delimiter="\t")
        n = 0
        while True:
            n += 1
            try:
                row = next(rows)
            except StopIteration:
                return
            except (UnicodeDecodeError, csv.Error) as exc:
                raise TsvFormatError(f"{path}:{n}: not an LXMERT TSV (not UTF-8 text: {exc})") from None
            if not row:
                continue
            item_id, record = parse_row(row, f"{path}:{n}", feature_dim)
            if record["num_boxes"]:
                feature_dim = record["features"].shape[1]
            yield item_id, record


def _encode(values: Any, dtype: type) -> str:
    return base64.b64encode(
        np.ascontiguousarray(values, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()
    ).decode("ascii")


def format_row(item_id: str, record: dict[str, Any]) -> list[str]:
    """The ten TSV fields of one store record. Missing object/attribute arrays are written as zeros."""
    features = np.asarray(record["features"])
    n = int(features.shape[0])
    if "num_boxes" in record and int(record["num_boxes"]) != n:
        raise ValueError(f"{item_id}: num_boxes {record['num_boxes']} but {n} feature rows")
    row = [item_id, str(int(record["image_h"])), str(int(record["image_w"]))]
    for tsv_field in ("objects_id", "objects_conf", "attrs_id", "attrs_conf"):
        store_field, dtype = ARRAYS[tsv_field]
        values = record.get(store_field)
        row.append(_encode(np.zeros(n) if values is None else np.asarray(values).reshape(n), dtype))
    row.append(str(n))
    row.append(_encode(np.asarray(record["boxes"]).reshape(n, 4), np.float32))
    row.append(_encode(features, np.float32))
    return row


def write_tsv(rows: Iterator[tuple[str, dict[str, Any]]], path: str | Path) -> int:
    """Writes (id, record) pairs as an LXMERT TSV; returns the number of lines."""
    count = 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        for item_id, record in rows:
            if "\t" in item_id or "\n" in item_id or "\r" in item_id:
                raise ValueError(f"id {item_id!r} cannot be written to a TSV (tab or newline)")
            writer.writerow(format_row(item_id, record))
            count += 1
    return count
