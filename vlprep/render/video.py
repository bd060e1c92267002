"""Drawing video records: a strip of frames sampled over time with the feature norm, or the token id when
the record has `tokens`, and the time span under each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from vlprep.render.regions import load_font

FRAME_HEIGHT = 96
CAPTION_HEIGHT = 34
BACKGROUND = (24, 24, 24)


def sample_rows(num_rows: int, max_frames: int) -> np.ndarray:
    """Up to `max_frames` row indices spread evenly over [0, num_rows)."""
    if num_rows <= 0:
        return np.zeros(0, dtype=np.int64)
    count = min(num_rows, max_frames)
    return np.unique(np.round(np.linspace(0, num_rows - 1, count)).astype(np.int64))


def captions(record: dict[str, Any], rows: np.ndarray) -> list[str]:
    timestamps = np.asarray(record["timestamps"], dtype=np.float64).reshape(-1, 2)
    if "tokens" in record:
        values = [f"tok {int(np.asarray(record['tokens']).reshape(-1)[r])}" for r in rows]
    else:
        norms = np.linalg.norm(np.asarray(record["features"], dtype=np.float64), axis=1)
        values = [f"|f| {norms[r]:.3g}" for r in rows]
    return [f"{timestamps[r, 0]:.1f}-{timestamps[r, 1]:.1f}s\n{v}" for r, v in zip(rows, values, strict=True)]


def render_video(
    record: dict[str, Any], video_path: str | Path | None, out_png: str | Path, max_frames: int = 8
) -> Path:
    """A strip of up to `max_frames` frames, each read at the middle of its row's time span, captioned
    with the span and the feature norm (or token id). Without a video the frames are gray tiles."""
    timestamps = np.asarray(record["timestamps"], dtype=np.float64).reshape(-1, 2)
    rows = sample_rows(len(timestamps), max_frames)
    times = timestamps[rows].mean(axis=1) if len(rows) else np.zeros(0)
    frames = _read_frames(video_path, times) if video_path is not None and len(rows) else None
    if frames is not None and len(frames):
        h, w = frames.shape[1:3]
        tile_w = max(1, round(w * FRAME_HEIGHT / h))
    else:
        tile_w = round(FRAME_HEIGHT * 4 / 3)
    font = load_font(12)
    strip = Image.new("RGB", (max(1, len(rows)) * tile_w, FRAME_HEIGHT + CAPTION_HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(strip)
    for n, caption in enumerate(captions(record, rows)):
        if frames is not None:
            tile = Image.fromarray(frames[n]).convert("RGB").resize((tile_w, FRAME_HEIGHT), Image.BILINEAR)
        else:
            tile = Image.new("RGB", (tile_w, FRAME_HEIGHT), (96, 96, 96))
        strip.paste(tile, (n * tile_w, 0))
        draw.multiline_text((n * tile_w + 3, FRAME_HEIGHT + 2), caption, fill=(235, 235, 235), font=font)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    strip.save(out_png, format="PNG")
    return out_png


def _read_frames(video_path: str | Path, times: np.ndarray) -> np.ndarray:
    from vlprep.extractors.decode.open import open_video

    with open_video(video_path) as reader:
        return reader.frames_at(np.clip(times, 0.0, None))


def render_video_item(
    store: Any, item_id: str, out_png: str | Path, video: str | Path | None = None, max_frames: int = 8
) -> Path:
    """Renders one item of a video store; the video is `video`, else the `path` recorded at extraction."""
    record = store[item_id]
    source = video if video is not None else record.get("path")
    return render_video(record, source or None, out_png, max_frames=max_frames)
