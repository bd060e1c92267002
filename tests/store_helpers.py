"""Record generators shared by the store tests."""

from __future__ import annotations

import numpy as np

ODD_IDS = [
    "plain",
    "dir/sub/file.jpg",
    "../../etc/passwd",
    "..",
    "with space and\ttab",
    "ünïcødé/图片/😀.png",
    "/absolute/path",
    "x" * 300,
    "quote'\"and;semicolon",
    "ids",
    "offsets",
]


def region_record(rng: np.random.Generator, n: int | None = None, dim: int = 16) -> dict:
    n = int(rng.integers(1, 12)) if n is None else n
    x1 = rng.uniform(0, 300, n)
    y1 = rng.uniform(0, 200, n)
    boxes = np.stack([x1, y1, x1 + rng.uniform(1, 100, n), y1 + rng.uniform(1, 100, n)], 1).astype(np.float32)
    return {
        "features": rng.standard_normal((n, dim)).astype(np.float32),
        "boxes": boxes,
        "object_ids": rng.integers(0, 1600, n),
        "object_scores": rng.random(n).astype(np.float32),
        "image_h": 480,
        "image_w": 640,
        "num_boxes": n,
    }
