"""Box geometry encodings used by vision-language models, computed on read from raw boxes.

Boxes are `[n, 4]` (x1, y1, x2, y2) in original-image pixels; W and H are the image width and height.

| dims      | encoding                                                  | used by |
|-----------|-----------------------------------------------------------|---------|
| 4         | x1/W, y1/H, x2/W, y2/H                                    | LXMERT  |
| 5         | the 4 + (w·h)/(W·H)                                       | ViLBERT |
| 6         | the 4 + w/W, h/H                                          | VinVL / Oscar+ |
| 7         | the 6 + (w/W)·(h/H)                                       | UNITER  |
| "vlbert"  | sin/cos of (x_c/W, y_c/H, w/W, h/H)·100 at 256 frequencies 1000^(i/256) -> 2048 | VL-BERT |
"""

from __future__ import annotations

import numpy as np

GEOMETRY_CHOICES = ("4", "5", "6", "7", "vlbert")


def parse_dims(dims: int | str) -> int | str:
    text = str(dims).lower()
    if text not in GEOMETRY_CHOICES:
        raise ValueError(f"unknown geometry {dims!r}; choose one of {', '.join(GEOMETRY_CHOICES)}")
    return text if text == "vlbert" else int(text)


def normalized_boxes(boxes: np.ndarray, image_h: float, image_w: float) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return b / np.array([image_w, image_h, image_w, image_h], dtype=np.float64)


def box_geometry(boxes: np.ndarray, image_h: float, image_w: float, dims: int | str = 4) -> np.ndarray:
    """The `dims`-wide geometry of each box, float32 `[n, dims]` (`[n, 2048]` for "vlbert")."""
    dims = parse_dims(dims)
    if dims == "vlbert":
        return vlbert_position_embedding(boxes, image_h, image_w)
    nb = normalized_boxes(boxes, image_h, image_w)
    w = nb[:, 2] - nb[:, 0]
    h = nb[:, 3] - nb[:, 1]
    columns = {4: [], 5: [w * h], 6: [w, h], 7: [w, h, w * h]}[dims]
    return np.column_stack([nb, *columns]).astype(np.float32) if columns else nb.astype(np.float32)


def vlbert_position_embedding(
    boxes: np.ndarray, image_h: float, image_w: float, num_freqs: int = 256, wave_length: float = 1000.0
) -> np.ndarray:
    """VL-BERT's coordinate embedding: for each of (x_c, y_c, w, h) scaled to [0, 100], `num_freqs`
    sines followed by `num_freqs` cosines, the four blocks concatenated -> `[n, 4 * 2 * num_freqs]`."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    pos = (
        np.stack(
            [
                (b[:, 0] + b[:, 2]) / 2 / image_w,
                (b[:, 1] + b[:, 3]) / 2 / image_h,
                (b[:, 2] - b[:, 0]) / image_w,
                (b[:, 3] - b[:, 1]) / image_h,
            ],
            axis=1,
        )
        * 100.0
    )
    freqs = wave_length ** (np.arange(num_freqs, dtype=np.float64) / num_freqs)
    angles = pos[:, :, None] / freqs[None, None, :]  # [n, 4, num_freqs]
    emb = np.concatenate([np.sin(angles), np.cos(angles)], axis=-1)  # [n, 4, 2*num_freqs]
    return emb.reshape(len(b), 8 * num_freqs).astype(np.float32)
