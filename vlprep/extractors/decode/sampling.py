"""Sampling plans: pure functions from a video's timing to the frames and clips to read.

Times are seconds from the first presented frame. Resampling at a fixed rate R repeats frames of a slow
video and skips frames of a fast one; two rules say which frame sample k shows:

- ``floor``: the last frame whose presentation time is <= k/R; ceil(duration * R) samples.
- ``ffmpeg-fps``: what ffmpeg's `fps` filter outputs (and so what the HowTo100M / UniVL extractors fed
  their networks): each frame's time is rounded to the nearest output tick, so sample k is the last frame
  with presentation time < (k + 0.5)/R, and there are round(duration * R) samples (at least one).
  Checked against libavfilter's own `fps` filter in tests/test_video_sampling.py.
"""

from __future__ import annotations

import math

import numpy as np

# Presentation times and sample times are both computed in float64 from different rationals
# (k/rate vs pts*time_base); a frame exactly at t must not lose to rounding.
TIME_TOLERANCE = 1e-6
SAMPLING_RULES = ("ffmpeg-fps", "floor")


def _check_rule(rule: str) -> None:
    if rule not in SAMPLING_RULES:
        raise ValueError(f"unknown sampling rule {rule!r} (expected one of {', '.join(SAMPLING_RULES)})")


def sample_times(duration: float, rate: float, rule: str = "floor") -> np.ndarray:
    """The sample times k/rate, k = 0 .. n - 1: n = ceil(duration * rate) for `floor` (every k/rate inside
    [0, duration)), round(duration * rate) for `ffmpeg-fps` (halves up, as the filter rounds). At least
    one (0.0) for any video with a frame, so a video shorter than one sampling period still yields one."""
    _check_rule(rule)
    if rate <= 0:
        raise ValueError(f"sampling rate must be positive, got {rate}")
    if rule == "floor":
        n = math.ceil(duration * rate - TIME_TOLERANCE)
    else:
        n = math.floor(duration * rate + 0.5 + TIME_TOLERANCE)
    return np.arange(max(1, n), dtype=np.float64) / rate


def sample_frames(pts: np.ndarray, times: np.ndarray, rate: float, rule: str = "floor") -> np.ndarray:
    """The frame index each sample time shows under `rule` (see the module docstring); `pts` are the
    frames' presentation times, ascending."""
    _check_rule(rule)
    if rule == "floor":
        return frame_indices_at(pts, times)
    return frame_indices_before(pts, np.asarray(times, dtype=np.float64) + 0.5 / rate)


def frame_indices_at(pts: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Index of the last frame presented at or before each time. `pts` are the frames' presentation
    times in presentation order (ascending). Times before the first frame map to frame 0."""
    pts = np.asarray(pts, dtype=np.float64)
    if pts.size == 0:
        raise ValueError("a video without frames has no frame at any time")
    idx = np.searchsorted(pts, np.asarray(times, dtype=np.float64) + TIME_TOLERANCE, side="right") - 1
    return np.clip(idx, 0, pts.size - 1).astype(np.int64)


def frame_indices_before(pts: np.ndarray, limits: np.ndarray) -> np.ndarray:
    """Index of the last frame presented strictly before each limit (frame 0 when none is)."""
    pts = np.asarray(pts, dtype=np.float64)
    if pts.size == 0:
        raise ValueError("a video without frames has no frame at any time")
    limits = np.asarray(limits, dtype=np.float64)
    idx = np.searchsorted(pts, limits - TIME_TOLERANCE, side="left") - 1
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
