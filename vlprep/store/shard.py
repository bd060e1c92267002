"""One shard file: an HDF5 file holding up to `shard_size` items.

Layout (readable without vlprep): `/ids` (UTF-8 strings), `/offsets` (int64, n+1; only when the store has
ragged fields), and one dataset per field at the root: ragged fields concatenated along axis 0 and cut
by `offsets`, fixed fields as `[n, ...]`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .layout import FORMAT_VERSION, fsync_dir, fsync_file
from .schema import STRING, Schema

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


def write_shard(
    final_path: Path, ids: Sequence[str], records: Sequence[dict[str, Any]], schema: Schema, compression: str
) -> None:
    """Write to `<final>.tmp`, fsync, then rename: a reader never sees a half-written shard."""
    tmp = final_path.with_name(final_path.name + ".tmp")
    with h5py.File(tmp, "w", libver="earliest") as f:
        f.attrs["vlprep_format"] = FORMAT_VERSION
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
        f.flush()
    fsync_file(tmp)
    os.replace(tmp, final_path)
    fsync_dir(final_path.parent)


class ShardReader:
    """Lazy, read-only access to one shard. Fixed fields are small and read whole once; ragged
    fields are sliced per item, so a random read touches only its own rows.

    Rows are read through h5py's low-level hyperslab API: the high-level slicing machinery costs more
    than the copy itself for a 100 x 2048 item, and random reads are the training-time hot path."""

    def __init__(self, path: Path, schema: Schema):
        self.path = path
        self.schema = schema
        self._file = h5py.File(path, "r")
        self._offsets: np.ndarray | None = None
        self._fixed: dict[str, np.ndarray] = {}
        self._datasets: dict[str, h5py.Dataset] = {}

    def close(self) -> None:
        self._file.close()

    def __len__(self) -> int:
        return len(self._file["ids"])

    @property
    def ids(self) -> list[str]:
        return [s.decode("utf-8") if isinstance(s, bytes) else s for s in self._file["ids"][()]]

    @property
    def offsets(self) -> np.ndarray:
        if self._offsets is None:
            self._offsets = self._file["offsets"][()]
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
