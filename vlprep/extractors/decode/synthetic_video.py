"""Videos whose frames encode their own index, for tests, benchmarks and the demo.

Each frame is a 3x4 grid of black or white blocks: block b is white when bit b of the frame index is
set (12 bits, indices up to 4095). Large flat blocks survive lossy compression and resizing, so the
index can be read back from any decoded, rotated-back or downscaled frame.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

GRID_ROWS, GRID_COLS = 3, 4
BITS = GRID_ROWS * GRID_COLS


def index_frame(index: int, width: int, height: int) -> np.ndarray:
    """uint8 [height, width, 3] frame encoding `index`."""
    if not 0 <= index < 2**BITS:
        raise ValueError(f"index {index} does not fit in {BITS} bits")
    img = np.zeros((height, width, 3), dtype=np.uint8)
    for b in range(BITS):
        if (index >> b) & 1:
            r, c = divmod(b, GRID_COLS)
            img[
                r * height // GRID_ROWS : (r + 1) * height // GRID_ROWS,
                c * width // GRID_COLS : (c + 1) * width // GRID_COLS,
            ] = 255
    return img


def read_frame_index(frame: np.ndarray) -> int:
    """The index encoded in a frame (upright, any size): the mean of each block's centre half."""
    frame = np.asarray(frame)
    if frame.ndim == 3:
        frame = frame.mean(axis=-1)
    h, w = frame.shape
    index = 0
    for b in range(BITS):
        r, c = divmod(b, GRID_COLS)
        y0, y1 = r * h / GRID_ROWS, (r + 1) * h / GRID_ROWS
        x0, x1 = c * w / GRID_COLS, (c + 1) * w / GRID_COLS
        qy, qx = (y1 - y0) / 4, (x1 - x0) / 4
        block = frame[
            int(y0 + qy) : max(int(y1 - qy), int(y0 + qy) + 1),
            int(x0 + qx) : max(int(x1 - qx), int(x0 + qx) + 1),
        ]
        if block.mean() > 127.5:
            index |= 1 << b
    return index


def write_index_video(
    path: str | os.PathLike,
    num_frames: int | None = None,
    fps: float = 25.0,
    width: int = 96,
    height: int = 64,
    times: Sequence[float] | None = None,
    rotation: int = 0,
    codec: str = "libx264",
    gop: int = 12,
    bframes: bool = True,
    audio: bool = False,
    faststart: bool = False,
) -> list[float]:
    """Encode a video whose frame i shows index i; returns the presentation times written.

    Constant rate: `num_frames` at `fps`. Variable rate: `times` (seconds, increasing). `rotation` is the
    display rotation tag in degrees counter-clockwise (what ffmpeg and PyAV report). `faststart` puts
    the index (moov) first, so a truncated copy still opens. Odd sizes use 4:4:4
    chroma, which H.264 allows at any size. Times are stored with millisecond precision.
    """
    import av

    if times is None:
        if num_frames is None:
            raise ValueError("give num_frames (constant rate) or times (variable rate)")
        times = [i / fps for i in range(num_frames)]
    stamps = [int(round(t * 1000)) for t in times]
    if any(b <= a for a, b in zip(stamps, stamps[1:], strict=False)):
        raise ValueError("frame times must increase by at least 1 ms")
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(os.fspath(path), "w", options=options) as out:
        stream = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height = width, height
        odd = width % 2 or height % 2
        stream.pix_fmt = "yuv444p" if odd and codec == "libx264" else "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        if codec == "libx264":
            stream.options = {"crf": "12", "g": str(gop), "bf": "2" if bframes else "0", "preset": "veryfast"}
        if rotation:
            stream.set_display_rotation(rotation)
        astream = out.add_stream("aac", rate=16000) if audio else None
        for i, pts in enumerate(stamps):
            frame = av.VideoFrame.from_ndarray(index_frame(i, width, height), format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
        if astream is not None:
            _write_tone(out, astream, seconds=stamps[-1] / 1000 + 1 / fps)
    return [s / 1000 for s in stamps]


def _write_tone(container, stream, seconds: float) -> None:
    import av

    rate, n = stream.rate, 1024
    for start in range(0, int(seconds * rate), n):
        t = (np.arange(n) + start) / rate
        samples = (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate, frame.pts = rate, start
        container.mux(stream.encode(frame))
    container.mux(stream.encode())


def write_audio_only(path: str | os.PathLike, seconds: float = 1.0) -> None:
    """An audio file with no video stream (a broken input for video extraction)."""
    import av

    with av.open(os.fspath(path), "w", format="mp4") as out:
        _write_tone(out, out.add_stream("aac", rate=16000), seconds)
