"""Opening a video: the backend by name, or `auto` with a fallback. Kept apart from video.py, which
the backends import for the shared interface, so that no module imports one that imports it back."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np

from vlprep.extractors.decode.errors import DecodeError
from vlprep.extractors.decode.video import DEFAULT_TIMEOUT, VideoReader, probe_video
from vlprep.extractors.decode.video_decord import DecordReader
from vlprep.extractors.decode.video_pyav import PyAVReader

BACKENDS = ("auto", "decord", "pyav")


class FallbackReader(VideoReader):
    """`auto`: decord while it works, PyAV from the first decord failure on (for the rest of the file)."""

    backend = "auto"

    def __init__(
        self, primary: VideoReader | None, make_fallback: Callable[[], VideoReader], reason: str = ""
    ) -> None:
        self._primary = primary
        self._make_fallback = make_fallback
        self._fallback: VideoReader | None = None
        self.fallback_reason = reason
        current = primary if primary is not None else self._switch(reason)
        super().__init__(current.path, current.meta, current.index, current.timeout)

    @property
    def active(self) -> VideoReader:
        if self._fallback is not None:
            return self._fallback
        assert self._primary is not None
        return self._primary

    def _switch(self, reason: str) -> VideoReader:
        self.fallback_reason = reason
        if self._primary is not None:
            self._primary.close()
            self._primary = None
        self._fallback = self._make_fallback()
        return self._fallback

    def get_frames(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        if self._fallback is None:
            try:
                return self.active.get_frames(indices)
            except DecodeError as exc:
                self._switch(str(exc))
        return self.active.get_frames(indices)

    def _read(self, indices: np.ndarray) -> np.ndarray:
        return self.active._read(indices)

    def close(self) -> None:
        for reader in (self._primary, self._fallback):
            if reader is not None:
                reader.close()


def open_video(
    path: str | os.PathLike, backend: str = "auto", timeout: float | None = DEFAULT_TIMEOUT
) -> VideoReader:
    """Open a video for frame-exact reading. `backend`: "decord", "pyav", or "auto" (decord, falling
    back to PyAV when decord cannot open or read the file). Broken files raise DecodeError with a reason."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown decoder {backend!r}; choose from {', '.join(BACKENDS)}")
    path = os.fspath(path)
    meta, index = probe_video(path, timeout)
    if backend == "pyav":
        return PyAVReader(path, meta, index, timeout)
    if backend == "decord":
        return DecordReader(path, meta, index, timeout)

    def make_pyav() -> VideoReader:
        return PyAVReader(path, meta, index, timeout)

    try:
        primary: VideoReader | None = DecordReader(path, meta, index, timeout)
        reason = ""
    except (DecodeError, ImportError) as exc:
        primary, reason = None, f"decord: {exc}"
    return FallbackReader(primary, make_pyav, reason)
