"""Opening a video: the backend by name, or `auto` with a fallback. Kept apart from video.py, which
the backends import for the shared interface, so that no module imports one that imports it back."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from vlprep.extractors.decode.errors import DecodeError, DecoderUnavailableError
from vlprep.extractors.decode.video import DEFAULT_TIMEOUT, VideoIndex, VideoMeta, VideoReader, probe_video
from vlprep.extractors.decode.video_decord import DecordReader
from vlprep.extractors.decode.video_pyav import PyAVReader
from vlprep.extractors.decode.video_torchcodec import TorchCodecReader, require_torchcodec, torchcodec_problem

BACKENDS = ("auto", "pyav", "torchcodec", "decord")
# What `auto` tries, fastest first as measured by benchmarks/video_bench.py --decode-only (docs/video.md):
# our PyAV reader was as fast as torchcodec at 640x360 and 1.1-1.6x faster at 1280x720 (its FFmpeg's
# colour conversion is faster than the system FFmpeg 5.1 torchcodec loads); decord last (the slowest
# everywhere, and it can spin on damaged files). All three give identical pixels.
AUTO_ORDER = ("pyav", "torchcodec", "decord")

Factory = Callable[[], VideoReader]


def backend_problem(backend: str) -> str | None:
    """None when `backend` can run here, else why not (one line). PyAV is a dependency everywhere;
    decord only on Linux x86-64 (its only wheels); torchcodec is an extra with system libraries."""
    if backend == "torchcodec":
        return torchcodec_problem()
    if backend == "decord":
        try:
            import decord  # noqa: F401
        except ImportError as exc:
            return f"decord is not installed ({exc}); it has wheels for Linux x86-64 only"
    return None


def check_backend(backend: str) -> None:
    """Raise before any work when `backend` is unknown (ValueError) or cannot run here
    (DecoderUnavailableError, naming what to install)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown decoder {backend!r}; choose from {', '.join(BACKENDS)}")
    if backend == "torchcodec":
        require_torchcodec()
    elif backend != "auto" and (problem := backend_problem(backend)) is not None:
        raise DecoderUnavailableError(problem)


class FallbackReader(VideoReader):
    """`auto`: the first backend of AUTO_ORDER that opens the file, and from its first failure on the
    next one (for the rest of the file). `fallback_reason` says why the ones before were left."""

    backend = "auto"

    def __init__(self, factories: Sequence[tuple[str, Factory]]) -> None:
        self._pending = list(factories)
        self._reader: VideoReader | None = None
        self.fallback_reason = ""
        reader = self._next_reader()
        super().__init__(reader.path, reader.meta, reader.index, reader.timeout)

    @property
    def active(self) -> VideoReader:
        assert self._reader is not None
        return self._reader

    def _next_reader(self) -> VideoReader:
        reasons = [self.fallback_reason] if self.fallback_reason else []
        while self._pending:
            name, make = self._pending.pop(0)
            try:
                self._reader = make()
                self.fallback_reason = "; ".join(reasons)
                return self._reader
            except (DecodeError, DecoderUnavailableError, ImportError) as exc:
                reasons.append(f"{name}: {exc}")
        raise DecodeError("; ".join(reasons) or "no decoder available")

    def _switch(self, reason: str) -> VideoReader:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self.fallback_reason = "; ".join(r for r in (self.fallback_reason, reason) if r)
        return self._next_reader()

    def get_frames(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        while True:
            try:
                return self.active.get_frames(indices)
            except DecodeError as exc:
                if not self._pending:
                    raise
                self._switch(f"{self.active.backend}: {exc}")

    def iter_frames(self, indices: Sequence[int] | np.ndarray, window: int = 64) -> Iterator[np.ndarray]:
        """The active reader's windows (read ahead on its thread); after a failure the next backend
        goes on from the window that failed."""
        indices = self._checked(indices)
        done = 0
        while True:
            try:
                for frames in self.active.iter_frames(indices[done:], window):
                    done += len(frames)
                    yield frames
                return
            except DecodeError as exc:
                if not self._pending:
                    raise
                self._switch(f"{self.active.backend}: {exc}")

    def _read(self, indices: np.ndarray) -> np.ndarray:
        return self.active._read(indices)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
        super().close()


def _factory(
    backend: str, path: str, meta: VideoMeta, index: VideoIndex, timeout: float | None, device: str | None
) -> Factory:
    if backend == "torchcodec":
        return lambda: TorchCodecReader(path, meta, index, timeout, device=device)
    if backend == "pyav":
        return lambda: PyAVReader(path, meta, index, timeout)
    return lambda: DecordReader(path, meta, index, timeout)


def open_video(
    path: str | os.PathLike,
    backend: str = "auto",
    timeout: float | None = DEFAULT_TIMEOUT,
    device: str | None = None,
) -> VideoReader:
    """Open a video for frame-exact reading. `backend`: "pyav", "torchcodec", "decord", or "auto" (the
    first of AUTO_ORDER that can run here and read the file, falling back to the next on a failure).
    `device`: where the model runs; torchcodec decodes on that GPU's NVDEC when it is a CUDA device.
    Broken files raise DecodeError with a reason; a backend asked for by name that cannot run here
    raises DecoderUnavailableError."""
    check_backend(backend)
    path = os.fspath(path)
    meta, index = probe_video(path, timeout)
    if backend != "auto":
        return _factory(backend, path, meta, index, timeout, device)()
    usable = [b for b in AUTO_ORDER if backend_problem(b) is None]
    return FallbackReader([(b, _factory(b, path, meta, index, timeout, device)) for b in usable])
