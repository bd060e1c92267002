"""The `2d3d` combination (UniViLM / HowTo100M): one row per second of video, the 2D feature of that
second followed by the max over the 3D clips that overlap it. HowTo100M itself pooled both streams per
caption window; a per-second sequence needs the 1.5 clips/s 3D stream put on the 1 Hz grid, and the
max over overlapping clips is the same pooling HowTo100M applied, over the smallest window."""

from __future__ import annotations

import numpy as np

from vlprep.extractors.decode.sampling import max_over_overlaps


def combine_2d3d(
    features_2d: np.ndarray, timestamps_2d: np.ndarray, features_3d: np.ndarray, timestamps_3d: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """([T, D2 + D3] features, [T, D3] 3D features on the 2D grid)."""
    pooled = max_over_overlaps(timestamps_2d, timestamps_3d, features_3d)
    return np.concatenate([features_2d, pooled], axis=1), pooled
