"""Sampling plans: pure functions from a video's timing to the frames and clips to read.

Times are seconds from the first presented frame. A frame "at t" is the last frame whose presentation
time is <= t, so a fixed-rate resampling repeats frames of a slow video and skips frames of a fast one,
like ffmpeg's `fps` filter, but with the rule stated rather than implied by rounding.
"""

from __future__ import annotations

import math

import numpy as np

# Presentation times and sample times are both computed in float64 from different rationals
# (k/rate vs pts*time_base); a frame exactly at t must not lose to rounding.
TIME_TOLERANCE = 1e-6


def sample_times(duration: float, rate: float) -> np.ndarray:
    """Times k/rate for k = 0, 1, ... that fall inside [0, duration). At least one time (0.0) for any
    video with a frame, so a video shorter than one sampling period still yields a sample."""
    if rate <= 0:
        raise ValueError(f"sampling rate must be positive, got {rate}")
    n = max(1, math.ceil(duration * rate - TIME_TOLERANCE))
    return np.arange(n, dtype=np.float64) / rate


def frame_indices_at(pts: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Index of the last frame presented at or before each time. `pts` are the frames' presentation
    times in presentation order (ascending). Times before the first frame map to frame 0."""
    pts = np.asarray(pts, dtype=np.float64)
    if pts.size == 0:
        raise ValueError("a video without frames has no frame at any time")
    idx = np.searchsorted(pts, np.asarray(times, dtype=np.float64) + TIME_TOLERANCE, side="right") - 1
    return np.clip(idx, 0, pts.size - 1).astype(np.int64)


def clip_windows(num_samples: int, clip_len: int, stride: int | None = None, tail: str = "pad") -> np.ndarray:
    """Clip windows over a sequence of `num_samples` samples, as [C, 2] (start, stop) sample positions.

    `stride` defaults to `clip_len` (non-overlapping clips). `tail` decides the last, partial window:
    "pad" keeps it (stop may exceed num_samples; the reader fills the missing frames), "drop" drops it.
    With "pad", a sequence shorter than one clip gives one padded clip.
    """
    if clip_len < 1:
        raise ValueError(f"clip_len must be >= 1, got {clip_len}")
    stride = clip_len if stride is None else stride
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if tail not in ("pad", "drop"):
        raise ValueError(f"tail must be 'pad' or 'drop', got {tail!r}")
    if num_samples <= 0:
        return np.zeros((0, 2), dtype=np.int64)
    if tail == "drop":
        count = 0 if num_samples < clip_len else (num_samples - clip_len) // stride + 1
    else:
        # up to the first window that reaches the end, and never a window starting past the end
        count = min(
            max(1, math.ceil(max(num_samples - clip_len, 0) / stride) + 1), math.ceil(num_samples / stride)
        )
    starts = np.arange(count, dtype=np.int64) * stride
    return np.stack([starts, starts + clip_len], axis=1)


def clip_timestamps(windows: np.ndarray, rate: float, duration: float) -> np.ndarray:
    """[C, 2] float (start, end) seconds of each clip window sampled at `rate`; ends clipped to the
    video's duration so a padded tail clip does not claim time the video does not have."""
    windows = np.asarray(windows, dtype=np.float64).reshape(-1, 2)
    stamps = windows / rate
    stamps[:, 1] = np.minimum(stamps[:, 1], duration)
    return stamps


def overlapping(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Boolean [len(a), len(b)]: whether interval a[i] = (start, end) overlaps b[j] by a positive length."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 2)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 2)
    return (a[:, None, 0] < b[None, :, 1] - TIME_TOLERANCE) & (b[None, :, 0] < a[:, None, 1] - TIME_TOLERANCE)


def max_over_overlaps(rows: np.ndarray, clips: np.ndarray, clip_features: np.ndarray) -> np.ndarray:
    """For each row interval, the element-wise max of the features of the clips that overlap it.
    A row that no clip overlaps (cannot happen when clips tile the video) takes the nearest clip."""
    clip_features = np.asarray(clip_features)
    if len(clips) == 0:
        raise ValueError("no clips to pool from")
    mask = overlapping(rows, clips)
    out = np.empty((len(rows), clip_features.shape[1]), dtype=clip_features.dtype)
    clip_centres = np.asarray(clips, dtype=np.float64).mean(axis=1)
    for i, row in enumerate(np.asarray(rows, dtype=np.float64).reshape(-1, 2)):
        hits = np.flatnonzero(mask[i])
        if hits.size == 0:
            hits = np.array([np.argmin(np.abs(clip_centres - row.mean()))])
        out[i] = clip_features[hits].max(axis=0)
    return out
