"""A PyTorch dataset over a store: fixed-size padded tensors plus a validity mask.

Safe with DataLoader worker processes: the store pickles as its path and every worker opens its own
handles. Truncation to `max_items` keeps the first rows (region stores keep boxes in score order).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

from .errors import StoreError
from .geometry import box_geometry, parse_dims
from .schema import STRING


class FeatureDataset(torch.utils.data.Dataset):
    def __init__(
        self,
        store,
        fields: Sequence[str] | None = None,
        max_items: int | None = None,
        geometry: int | str | None = None,
        ids: Iterable[str] | None = None,
        float_dtype: torch.dtype = torch.float32,
    ):
        self.store = store
        self.fields = store._fields(fields)
        self.max_items = max_items
        self.geometry = parse_dims(geometry) if geometry is not None else None
        self.float_dtype = float_dtype
        self.ids = list(ids) if ids is not None else store.ids()
        self._read_fields = list(self.fields)
        if self.geometry is not None:
            for name in ("boxes", "image_h", "image_w"):
                if name not in store.schema:
                    raise StoreError(f"{store.path}: geometry needs the field {name!r} (a regions store)")
                if name not in self._read_fields:
                    self._read_fields.append(name)
        self._ragged = [f for f in self._read_fields if store.schema[f].ragged]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item_id = self.ids[index]
        rec = self.store.get(item_id, self._read_fields)
        length = len(rec[self._ragged[0]]) if self._ragged else 0
        if self.max_items is not None:
            length = min(length, self.max_items)
        out: dict[str, Any] = {"id": item_id}
        if self.geometry is not None:
            rec["geometry"] = box_geometry(
                rec["boxes"][:length], rec["image_h"], rec["image_w"], self.geometry
            )
        for name in [*self.fields, *(["geometry"] if self.geometry is not None else [])]:
            value = rec[name]
            if name != "geometry" and self.store.schema[name].dtype == STRING:
                out[name] = value
                continue
            arr = np.asarray(value)
            is_ragged = name == "geometry" or self.store.schema[name].ragged
            if is_ragged:
                arr = arr[:length]
                if self.max_items is not None:
                    arr = _pad(arr, self.max_items)
            out[name] = self._tensor(arr)
        if self._ragged:
            size = self.max_items if self.max_items is not None else length
            mask = torch.zeros(size, dtype=torch.bool)
            mask[:length] = True
            out["mask"] = mask
        return out

    def _tensor(self, arr: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(arr))
        return t.to(self.float_dtype) if t.is_floating_point() else t

    @staticmethod
    def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
        """Stack a batch; items of different lengths (max_items=None) are padded to the longest."""
        out: dict[str, Any] = {}
        for key in batch[0]:
            values = [b[key] for b in batch]
            if not isinstance(values[0], torch.Tensor):
                out[key] = values
            elif values[0].dim() > 0 and len({v.shape[0] for v in values}) > 1:
                out[key] = torch.nn.utils.rnn.pad_sequence(values, batch_first=True)
            else:
                out[key] = torch.stack(values)
        return out


def _pad(arr: np.ndarray, size: int) -> np.ndarray:
    if len(arr) >= size:
        return arr[:size]
    padded = np.zeros((size, *arr.shape[1:]), dtype=arr.dtype)
    padded[: len(arr)] = arr
    return padded
