"""Drawing video records: a strip of frames sampled over time with the feature norm, or the token id when
the record has `tokens`, and the time span under each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from vlprep.render.regions import load_font

FRAME_HEIGHT = 180  # readable frames: a strip of 96-px thumbnails was too small to see anything
CAPTION_HEIGHT = 44
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
    strip = draw_video(record, video_path, max_frames=max_frames)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    strip.save(out_png, format="PNG")
    return out_png


def draw_video(
    record: dict[str, Any], video_path: str | Path | None, max_frames: int = 8, caption: str | None = None
) -> Image.Image:
    """The strip render_video writes, as a PIL image; `caption` adds a title line above it."""
    timestamps = np.asarray(record["timestamps"], dtype=np.float64).reshape(-1, 2)
    rows = sample_rows(len(timestamps), max_frames)
    times = timestamps[rows].mean(axis=1) if len(rows) else np.zeros(0)
    frames = _read_frames(video_path, times) if video_path is not None and len(rows) else None
    if frames is not None and len(frames):
        h, w = frames.shape[1:3]
        tile_w = max(1, round(w * FRAME_HEIGHT / h))
    else:
        tile_w = round(FRAME_HEIGHT * 4 / 3)
    font = load_font(16)
    top = 0 if caption is None else 26
    size = (max(1, len(rows)) * tile_w, top + FRAME_HEIGHT + CAPTION_HEIGHT)
    strip = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(strip)
    if caption is not None:
        draw.text((4, 4), caption, fill=(235, 235, 235), font=load_font(16))
    for n, text in enumerate(captions(record, rows)):
        if frames is not None:
            tile = Image.fromarray(frames[n]).convert("RGB").resize((tile_w, FRAME_HEIGHT), Image.BILINEAR)
        else:
            tile = Image.new("RGB", (tile_w, FRAME_HEIGHT), (96, 96, 96))
        strip.paste(tile, (n * tile_w, top))
        draw.multiline_text((n * tile_w + 3, top + FRAME_HEIGHT + 2), text, fill=(235, 235, 235), font=font)
    return strip


def _read_frames(video_path: str | Path, times: np.ndarray) -> np.ndarray:
    from vlprep.extractors.decode.open import open_video

    with open_video(video_path) as reader:
        return reader.frames_at(np.clip(times, 0.0, None))


def render_video_item(
    store: Any, item_id: str, out_png: str | Path, video: str | Path | None = None, max_frames: int = 8
) -> Path:
    """Renders one item of a video store; the video is `video`, else the `path` recorded at extraction."""
    from .media import recorded_media

    record = store[item_id]
    return render_video(record, recorded_media(record, item_id, video), out_png, max_frames=max_frames)
