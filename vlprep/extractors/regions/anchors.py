"""RPN anchors: the 12 cell anchors of one feature-map position and their placement on the grid.

Two conventions exist for the same 64/128/256/512 px x ratio 0.5/1/2 anchors, and a checkpoint's RPN
channels follow one of them, so the anchors travel with the weights:

- Caffe (`generate_anchors.py`, what the bottom-up-attention model was trained with): integer boxes in
  the "+1" convention around the centre (7.5, 7.5) of a 16 px base window, **ratio-major** order.
  MILVLG's `.pth` relies on them being stored in the checkpoint (its config asks detectron2 for
  4-32 px anchors, which only the stored buffer overrides), so a MILVLG checkpoint without them gets
  this table.
- detectron2 (`DefaultAnchorGenerator`, offset 0): real-valued boxes centred on (0, 0), **size-major**
  order. A detectron2/Hugging Face checkpoint without the buffer gets these.

Height/width ratio is h/w in both.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

ANCHOR_SIZES = (64, 128, 256, 512)
ANCHOR_RATIOS = (0.5, 1.0, 2.0)
ANCHOR_STRIDE = 16
NUM_CELL_ANCHORS = len(ANCHOR_SIZES) * len(ANCHOR_RATIOS)


def caffe_cell_anchors(base_size: int = 16, ratios=ANCHOR_RATIOS, scales=(4, 8, 16, 32)) -> np.ndarray:
    """py-faster-rcnn's anchors, ratio-major: row i = ratio i // 4, scale i % 4. Uses numpy's
    round-half-to-even on purpose: that is how the table was made (23 * 0.5 -> 12)."""
    ctr = 0.5 * (base_size - 1)
    rows = []
    for ratio in ratios:
        w = np.round(np.sqrt(base_size * base_size / ratio))
        h = np.round(w * ratio)
        for scale in scales:
            ws, hs = w * scale, h * scale
            rows.append(
                [ctr - 0.5 * (ws - 1), ctr - 0.5 * (hs - 1), ctr + 0.5 * (ws - 1), ctr + 0.5 * (hs - 1)]
            )
    return np.asarray(rows, dtype=np.float32)


def d2_cell_anchors(sizes=ANCHOR_SIZES, ratios=ANCHOR_RATIOS) -> np.ndarray:
    """detectron2's DefaultAnchorGenerator cell anchors, size-major, centred on 0."""
    rows = []
    for size in sizes:
        for ratio in ratios:
            w = math.sqrt(size * size / ratio)
            h = ratio * w
            rows.append([-w / 2.0, -h / 2.0, w / 2.0, h / 2.0])
    return np.asarray(rows, dtype=np.float32)


def cell_anchors_for(convention: str) -> np.ndarray:
    if convention == "caffe":
        return caffe_cell_anchors()
    if convention == "d2":
        return d2_cell_anchors()
    raise ValueError(f"unknown anchor convention {convention!r} (expected 'caffe' or 'd2')")


def grid_anchors(cell: torch.Tensor, height: int, width: int, stride: int = ANCHOR_STRIDE) -> torch.Tensor:
    """All anchors of an height x width feature map, [H*W*A, 4], ordered (y, x, anchor) with the anchor
    fastest: the order the RPN's flattened outputs use. Shifts start at 0 (offset 0 in both conventions)."""
    ys = torch.arange(height, device=cell.device, dtype=torch.float32) * stride
    xs = torch.arange(width, device=cell.device, dtype=torch.float32) * stride
    sy, sx = torch.meshgrid(ys, xs, indexing="ij")
    shifts = torch.stack([sx, sy, sx, sy], dim=-1).reshape(-1, 1, 4)
    return (shifts + cell.float().reshape(1, -1, 4)).reshape(-1, 4)


class CellAnchors(nn.Module):
    """Holds the cell anchors as buffer `0`, so the state-dict key is detectron2's
    `proposal_generator.anchor_generator.cell_anchors.0`."""

    def __init__(self, anchors: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("0", torch.as_tensor(anchors, dtype=torch.float32))

    def get(self) -> torch.Tensor:
        return getattr(self, "0")


class AnchorGenerator(nn.Module):
    def __init__(self, convention: str = "d2") -> None:
        super().__init__()
        self.cell_anchors = CellAnchors(cell_anchors_for(convention))
        self._cache: dict[tuple, torch.Tensor] = {}

    def set_cell_anchors(self, anchors: torch.Tensor) -> None:
        if tuple(anchors.shape) != (NUM_CELL_ANCHORS, 4):
            raise ValueError(f"cell anchors must be [{NUM_CELL_ANCHORS}, 4], got {list(anchors.shape)}")
        self.cell_anchors.get().copy_(anchors)
        self._cache.clear()

    def forward(self, height: int, width: int) -> torch.Tensor:
        cell = self.cell_anchors.get()
        key = (height, width, cell.device, cell.data_ptr(), cell._version)
        anchors = self._cache.get(key)
        if anchors is None:
            if len(self._cache) > 64:
                self._cache.clear()
            anchors = grid_anchors(cell, height, width)
            self._cache[key] = anchors
        return anchors
