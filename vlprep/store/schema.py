"""Field schemas: which fields a store holds, their dtypes and shapes, and how records are checked.

A field is *ragged* when its leading dimension varies per item (boxes, clips): its rows are stored
concatenated in a shard and cut with the shard's shared `offsets`. Every other field is *fixed*:
`[n_items, *shape]`. Strings are fixed UTF-8 scalars.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ItemError, StoreError
from .ids import escape_id

STRING = "str"


@dataclass(frozen=True)
class Field:
    name: str
    dtype: str  # numpy dtype name, or "str"
    shape: tuple[int | None, ...]  # None as the first dimension marks a ragged field

    @property
    def ragged(self) -> bool:
        return bool(self.shape) and self.shape[0] is None

    @property
    def is_float(self) -> bool:
        return self.dtype != STRING and np.dtype(self.dtype).kind == "f"

    def to_json(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "shape": list(self.shape)}

    def describe(self) -> str:
        dims = ",".join("n" if d is None else str(d) for d in self.shape)
        return f"{self.dtype}[{dims}]"


Schema = dict[str, Field]


def schema_from_json(data: Mapping[str, Any]) -> Schema:
    return {name: Field(name, spec["dtype"], tuple(spec["shape"])) for name, spec in data.items()}


def schema_to_json(schema: Schema) -> dict[str, Any]:
    return {name: field.to_json() for name, field in schema.items()}


def _check_name(name: str) -> None:
    if (
        not isinstance(name, str)
        or not name
        or "/" in name
        or name in ("ids", "offsets")
        or name.startswith(".")
    ):
        raise StoreError(
            f"invalid field name {name!r}: use a non-empty name without '/' other than ids/offsets"
        )


def normalize_schema(spec: Mapping[str, Any]) -> Schema:
    """Accept Field objects, `{"dtype":..., "shape":[...]}` dicts or `(dtype, shape)` pairs."""
    out: Schema = {}
    for name, value in spec.items():
        _check_name(name)
        if isinstance(value, Field):
            out[name] = value
        elif isinstance(value, Mapping):
            out[name] = Field(name, _dtype_name(value["dtype"]), tuple(value.get("shape", ())))
        else:
            dtype, shape = value
            out[name] = Field(name, _dtype_name(dtype), tuple(shape))
    return out


def _dtype_name(dtype: Any) -> str:
    if dtype in (str, STRING):
        return STRING
    return np.dtype(dtype).name


def infer_schema(record: Mapping[str, Any]) -> Schema:
    """Arrays are ragged along axis 0; scalars (python or numpy) are fixed; str values are strings."""
    schema: Schema = {}
    for name, value in record.items():
        _check_name(name)
        if isinstance(value, str):
            schema[name] = Field(name, STRING, ())
            continue
        arr = np.asarray(value)
        if arr.dtype.kind in "OUSV":
            raise StoreError(f"field {name!r}: unsupported value type {type(value).__name__}")
        if arr.ndim == 0:
            schema[name] = Field(name, arr.dtype.name, ())
        else:
            schema[name] = Field(name, arr.dtype.name, (None, *arr.shape[1:]))
    return schema


# Coordinates and times keep their precision whatever the storage dtype: float16 would move a box
# edge at x=1000 by up to half a pixel and a timestamp at one hour by seconds.
EXACT_FIELDS = ("boxes", "timestamps")


def with_storage_dtype(schema: Schema, float_dtype: str | None) -> Schema:
    """Store float array fields as `float_dtype` (e.g. float16), except EXACT_FIELDS."""
    if float_dtype is None:
        return schema
    float_dtype = np.dtype(float_dtype).name
    return {
        name: Field(name, float_dtype, f.shape) if f.is_float and f.shape and name not in EXACT_FIELDS else f
        for name, f in schema.items()
    }


def coerce_record(item_id: str, record: Mapping[str, Any], schema: Schema) -> dict[str, Any]:
    """Check a record against the schema and cast it to the stored dtypes."""
    missing = [name for name in schema if name not in record]
    extra = [name for name in record if name not in schema]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing field(s) {', '.join(map(repr, missing))}")
        if extra:
            parts.append(f"unexpected field(s) {', '.join(map(repr, extra))}")
        raise StoreError(f"item {item_id!r}: {'; '.join(parts)} (schema has {', '.join(schema)})")
    out: dict[str, Any] = {}
    ragged_len = None
    for name, field in schema.items():
        value = record[name]
        if field.dtype == STRING:
            if not isinstance(value, str):
                raise StoreError(
                    f"item {item_id!r}: field {name!r} must be a str, got {type(value).__name__}"
                )
            # HDF5 strings are UTF-8 without NUL: a path with undecodable bytes is kept escaped (\xff)
            out[name] = escape_id(value)
            continue
        arr = np.asarray(value)
        if arr.dtype.kind in "OUSV" or (arr.dtype.kind == "f" and np.dtype(field.dtype).kind in "iub"):
            raise StoreError(
                f"item {item_id!r}: field {name!r} has dtype {arr.dtype}, schema says {field.dtype}"
            )
        expected = field.shape[1:] if field.ragged else field.shape
        actual = arr.shape[1:] if field.ragged else arr.shape
        if field.ragged and arr.ndim == 0:
            raise StoreError(f"item {item_id!r}: field {name!r} must be an array, got a scalar")
        if tuple(actual) != tuple(expected):
            raise StoreError(
                f"item {item_id!r}: field {name!r} has shape {arr.shape}, schema says {field.describe()}"
            )
        if field.ragged:
            if ragged_len is None:
                ragged_len = (name, arr.shape[0])
            elif arr.shape[0] != ragged_len[1]:
                raise StoreError(
                    f"item {item_id!r}: ragged fields disagree in length: {ragged_len[0]!r} has "
                    f"{ragged_len[1]} rows, {name!r} has {arr.shape[0]}"
                )
        out[name] = _cast(item_id, name, arr, field.dtype)
    return out


def _cast(item_id: str, name: str, arr: np.ndarray, dtype: str) -> np.ndarray:
    target = np.dtype(dtype)
    if target.kind == "f" and arr.dtype.kind == "f" and target.itemsize < arr.dtype.itemsize and arr.size:
        # A narrowing cast turns a large finite value into inf without a word: refuse the item instead.
        limit = np.finfo(target).max
        finite = arr[np.isfinite(arr)]
        if finite.size and np.abs(finite).max() > limit:
            raise ItemError(
                f"item {item_id!r}: field {name!r}: value out of {target.name} range "
                f"(|x| up to {float(np.abs(finite).max()):.6g}, {target.name} holds ±{float(limit):g})"
            )
    return arr.astype(target, copy=False)


def check_same_schema(existing: Schema, new: Schema, where: str) -> None:
    if existing == new:
        return
    diffs = []
    for name in sorted(set(existing) | set(new)):
        a, b = existing.get(name), new.get(name)
        if a != b:
            diffs.append(
                f"{name}: store has {a.describe() if a else 'nothing'}, "
                f"writer has {b.describe() if b else 'nothing'}"
            )
    from .errors import StoreMismatchError

    raise StoreMismatchError(
        f"{where}: schema differs from the existing store ({'; '.join(diffs)}); "
        "write to a new store or pass overwrite=True (--overwrite) to replace it"
    )
