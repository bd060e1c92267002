"""One shard file: an HDF5 file holding up to `shard_size` items.

Layout (readable without vlprep): `/ids` (UTF-8 strings), `/offsets` (int64, n+1; only when the store has
ragged fields), and one dataset per field at the root: ragged fields concatenated along axis 0 and cut
by `offsets`, fixed fields as `[n, ...]`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .errors import StoreError
from .faults import step
from .layout import FORMAT_VERSION, fsync_dir, fsync_file, replace
from .schema import STRING, Schema, schema_to_json

COMPRESSIONS = ("none", "lzf", "gzip")
_CHUNK_BYTES = 256 * 1024
_STR = h5py.string_dtype("utf-8")


def _filters(compression: str, rows: int, row_shape: tuple[int, ...], itemsize: int) -> dict[str, Any]:
    if compression == "none" or rows == 0:
        return {}
    row_bytes = max(1, int(np.prod(row_shape, dtype=np.int64)) * itemsize)
    chunk_rows = int(min(rows, max(1, _CHUNK_BYTES // row_bytes)))
    opts: dict[str, Any] = {"chunks": (chunk_rows, *row_shape), "shuffle": True}
    if compression == "lzf":
        opts["compression"] = "lzf"
    elif compression == "gzip":
        opts.update(compression="gzip", compression_opts=4)
    else:
        raise ValueError(f"unknown compression {compression!r}; choose one of {', '.join(COMPRESSIONS)}")
    return opts


def identity(meta: Mapping[str, Any], shard: int, generation: int, schema: Schema) -> dict[str, Any]:
    """The attributes that make a shard self-describing: whose it is (the store uuid), where it belongs
    (shard number, generation) and what it holds (kind, schema, producer, storage settings), so that
    `index.sqlite` and `store.json` can be rebuilt from the shards alone."""
    return {
        "vlprep_format": FORMAT_VERSION,
        "store_uuid": meta["uuid"],
        "shard": shard,
        "generation": generation,
        "kind": meta["kind"],
        "schema": json.dumps(schema_to_json(schema)),
        "producer": json.dumps(meta["producer"]),
        "storage": json.dumps(
            {"shard_size": meta["shard_size"], "dtype": meta["dtype"], "compression": meta["compression"]}
        ),
    }


_IDENTITY = ("store_uuid", "shard", "generation", "kind", "schema", "producer", "storage")


def read_identity(path: Path) -> dict[str, Any] | None:
    """A shard file's identity attributes (JSON ones decoded), or None when it is not a readable vlprep
    shard that carries a store uuid."""
    try:
        with h5py.File(path, "r") as f:
            attrs = {k: f.attrs[k] for k in _IDENTITY if k in f.attrs}
    except Exception:  # not HDF5, truncated, unreadable: not provably ours
        return None
    if len(attrs) < 7:
        return None
    try:
        return {
            "store_uuid": _text(attrs["store_uuid"]),
            "shard": int(attrs["shard"]),
            "generation": int(attrs["generation"]),
            "kind": _text(attrs["kind"]),
            "schema": json.loads(_text(attrs["schema"])),
            "producer": json.loads(_text(attrs["producer"])),
            "storage": json.loads(_text(attrs["storage"])),
        }
    except (ValueError, TypeError):
        return None


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def write_shard(
    final_path: Path,
    ids: Sequence[str],
    records: Sequence[dict[str, Any]],
    schema: Schema,
    compression: str,
    attrs: Mapping[str, Any],
) -> None:
    """Write to `<final>.tmp`, fsync, then rename: a reader never sees a half-written shard. On failure
    the `.tmp` (ours, never published) is removed and the error propagates."""
    tmp = final_path.with_name(final_path.name + ".tmp")
    try:
        _write_file(tmp, ids, records, schema, compression, attrs)
        fsync_file(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    replace(tmp, final_path)
    fsync_dir(final_path.parent)


def _write_file(tmp, ids, records, schema, compression, attrs) -> None:
    step("shard_write")
    with h5py.File(tmp, "w", libver="earliest") as f:
        for key, value in attrs.items():
            f.attrs[key] = value
        f.create_dataset("ids", data=np.array(list(ids), dtype=object), dtype=_STR)
        ragged = [field for field in schema.values() if field.ragged]
        if ragged:
            lengths = np.array([len(r[ragged[0].name]) for r in records], dtype=np.int64)
            f.create_dataset("offsets", data=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))
        for name, field in schema.items():
            if field.dtype == STRING:
                f.create_dataset(name, data=np.array([r[name] for r in records], dtype=object), dtype=_STR)
                continue
            if field.ragged:
                data = np.concatenate([r[name] for r in records], axis=0)
            else:
                data = np.stack([r[name] for r in records]) if records else np.zeros((0, *field.shape))
            data = data.astype(field.dtype, copy=False)
            f.create_dataset(
                name, data=data, **_filters(compression, data.shape[0], data.shape[1:], data.dtype.itemsize)
            )
        step("shard_flush")
        f.flush()


_VLEN_BYTES = 16  # what HDF5 stores per variable-length string element (a global-heap reference)
_SMALL_BYTES = 64 * 1024 * 1024  # below this a dataset's claimed size is harmless to allocate
_MAX_RATIO = 1100  # gzip's best case is ~1030:1; a claim beyond it is not backed by the file


def dataset_faults(name: str, ds: h5py.Dataset) -> list[str]:
    """Why a dataset cannot be trusted before anything is allocated for it: storage outside the file
    (external or virtual), or a shape the bytes in the file cannot hold (a 2^40-row claim)."""
    faults = []
    plist = ds.id.get_create_plist()
    if ds.is_virtual or plist.get_external_count() > 0:
        return [f"dataset {name!r} uses external or virtual storage (data outside the shard file)"]
    n = int(np.prod(ds.shape, dtype=np.float64)) if ds.shape else 1
    itemsize = _VLEN_BYTES if ds.dtype.kind == "O" else ds.dtype.itemsize
    claimed = n * itemsize
    stored = ds.id.get_storage_size()
    unbacked = (
        stored < claimed
        if plist.get_nfilters() == 0
        else (claimed > _SMALL_BYTES and claimed > stored * _MAX_RATIO)
    )
    if unbacked:
        faults.append(f"dataset {name!r} claims {ds.shape} ({claimed:,} bytes); the file holds {stored:,}")
    return faults


def structure_faults(f: h5py.File, schema: Schema) -> tuple[list[str], int, np.ndarray | None]:
    """Every structural fault of an open shard against `schema`, checked against the file before any
    allocation; also the item count and the (checked) offsets when they could be read."""
    faults: list[str] = []
    for name, obj in f.items():
        if isinstance(obj, h5py.Dataset):
            faults += dataset_faults(name, obj)
    if faults:
        return faults, 0, None
    if "ids" not in f or len(f["ids"].shape) != 1:
        return ["no 1-D ids dataset"], 0, None
    n = f["ids"].shape[0]
    offsets = None
    ragged = [fl for fl in schema.values() if fl.ragged]
    if ragged:
        ds = f.get("offsets")
        if ds is None or ds.shape != (n + 1,) or ds.dtype.kind not in "iu":
            return [f"offsets missing or not {n + 1} integers for {n} ids"], n, None
        offsets = ds[()].astype(np.int64)
        if offsets[0] != 0 or np.any(np.diff(offsets) < 0):
            return ["offsets are inconsistent (start or order)"], n, None
    for fl in schema.values():
        ds = f.get(fl.name)
        if not isinstance(ds, h5py.Dataset):
            faults.append(f"field {fl.name!r} missing")
            continue
        rows = ds.shape[0] if ds.shape else None
        if fl.ragged:
            if rows != offsets[-1] or tuple(ds.shape[1:]) != tuple(fl.shape[1:]):
                faults.append(f"{fl.name!r} has shape {ds.shape}, offsets end at {offsets[-1]}")
        elif rows != n or tuple(ds.shape[1:]) != tuple(fl.shape):
            faults.append(f"{fl.name!r} has shape {ds.shape} for {n} items of shape {list(fl.shape)}")
    return faults, n, offsets


class ShardReader:
    """Lazy, read-only access to one shard. Fixed fields are small and read whole once; ragged
    fields are sliced per item, so a random read touches only its own rows.

    Rows are read through h5py's low-level hyperslab API: the high-level slicing machinery costs more
    than the copy itself for a 100 x 2048 item, and random reads are the training-time hot path."""

    def __init__(self, path: Path, schema: Schema):
        self.path = path
        self.schema = schema
        self._file = h5py.File(path, "r")
        try:
            faults, self._n, self._offsets = structure_faults(self._file, schema)
        except Exception as exc:
            faults = [f"unreadable ({type(exc).__name__}: {exc})"]
        if faults:
            self._file.close()
            raise StoreError(
                f"{path}: damaged shard: {faults[0]}; see `vlprep inspect {path.parent.parent} --verify`"
            )
        self._fixed: dict[str, np.ndarray] = {}
        self._datasets: dict[str, h5py.Dataset] = {}

    def close(self) -> None:
        self._file.close()

    def __len__(self) -> int:
        return self._n

    def _check_row(self, row: int) -> None:
        if not 0 <= row < self._n:
            raise StoreError(f"{self.path}: the index points at row {row} of a shard with {self._n} items")

    @property
    def ids(self) -> list[str]:
        return [s.decode("utf-8") if isinstance(s, bytes) else s for s in self._file["ids"][()]]

    @property
    def offsets(self) -> np.ndarray:
        return self._offsets

    def _fixed_values(self, name: str) -> np.ndarray:
        if name not in self._fixed:
            ds = self._file[name]
            self._fixed[name] = ds.asstr()[()] if self.schema[name].dtype == STRING else ds[()]
        return self._fixed[name]

    def _rows(self, name: str, start: int, end: int) -> np.ndarray:
        """Rows [start, end) of a ragged dataset."""
        ds = self._datasets.get(name)
        if ds is None:
            ds = self._datasets[name] = self._file[name]
        shape = (int(end - start), *ds.shape[1:])
        out = np.empty(shape, dtype=ds.dtype)
        if shape[0] and out.size:
            fspace = ds.id.get_space()
            fspace.select_hyperslab((int(start),) + (0,) * (len(shape) - 1), shape)
            ds.id.read(h5py.h5s.create_simple(shape), fspace, out)
        return out

    def _record(
        self, row: int, fields: Sequence[str], ragged: dict[str, np.ndarray], base: int
    ) -> dict[str, Any]:
        rec: dict[str, Any] = {}
        for name in fields:
            field = self.schema[name]
            if field.ragged:
                rec[name] = ragged[name][self.offsets[row] - base : self.offsets[row + 1] - base]
            else:
                value = self._fixed_values(name)[row]
                rec[name] = _scalar(value) if not field.shape else value
        return rec

    def read(self, row: int, fields: Sequence[str]) -> dict[str, Any]:
        self._check_row(row)
        if not any(self.schema[name].ragged for name in fields):
            return self._record(row, fields, {}, 0)
        start, end = self.offsets[row], self.offsets[row + 1]
        ragged = {name: self._rows(name, start, end) for name in fields if self.schema[name].ragged}
        return self._record(row, fields, ragged, start)

    def iter_all(self, fields: Sequence[str], block: int = 64) -> Iterator[dict[str, Any]]:
        """Every item of the shard in order, reading `block` items per dataset read (the sequential path)."""
        n = len(self)
        has_ragged = any(self.schema[name].ragged for name in fields)
        for first in range(0, n, block):
            last = min(first + block, n)
            base, end = (self.offsets[first], self.offsets[last]) if has_ragged else (0, 0)
            ragged = {name: self._rows(name, base, end) for name in fields if self.schema[name].ragged}
            for row in range(first, last):
                yield self._record(row, fields, ragged, base)

    def read_all(self, fields: Sequence[str]) -> list[dict[str, Any]]:
        return list(self.iter_all(fields))


def _scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
