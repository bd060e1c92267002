"""One video reader interface over the decoders (decord, PyAV, torchcodec), with one frame index and one
time rule. Backends live in video_<name>.py; `open_video` (decode/open.py) chooses one.

Every reader shares the index built by `probe_video` (PyAV demuxing, no decoding): the presentation
times of all frames in presentation order. Every backend is asked for frames by that index, so "the
frame at t" is the same frame whichever decoder reads it. Frames come back as uint8 RGB [N, H, W, 3] in
display orientation (rotation metadata applied).

Each decoder call runs on the reader's helper thread, bounded by a timeout: decord can spin forever on
files whose container over-reports the frame count. decord's, PyAV's and torchcodec's native calls
release the GIL, so the caller gets its DecodeError; the stuck native thread itself cannot be killed and
is left as a daemon.
"""

from __future__ import annotations

import os
import queue
import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any, TypeVar

import numpy as np

from vlprep.extractors.decode.errors import DecodeError
from vlprep.extractors.decode.sampling import frame_indices_at

DEFAULT_TIMEOUT = 120.0

T = TypeVar("T")


@dataclass(frozen=True)
class VideoMeta:
    """What a video is, as read from its container. `fps` is frames per second of presentation time
    (num_frames / duration), which is the true mean rate for variable-frame-rate video too;
    `stream_fps` is what the container declares. `width`/`height` are after rotation."""

    path: str
    num_frames: int
    duration: float
    fps: float
    stream_fps: float
    width: int
    height: int
    rotation: int
    codec: str
    variable_frame_rate: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class VideoIndex:
    """Presentation times (seconds from the first frame, ascending) and keyframe flags of every frame,
    plus the raw stream pts that the PyAV backend matches decoded frames against."""

    pts: np.ndarray
    raw_pts: np.ndarray
    keyframe: np.ndarray
    time_base: Fraction


def call_with_timeout(fn: Callable[[], T], timeout: float | None, what: str) -> T:
    """Run `fn` on a decode thread; raise DecodeError if it has not returned after `timeout` seconds."""
    calls = DecodeThread()
    try:
        return calls.call(fn, timeout, what)
    finally:
        calls.release()


class _Worker:
    """A daemon thread running the jobs put in its queue, one at a time, for the life of the process.
    It never exits: a thread ending while Python shuts down can abort the process (torch's per-thread
    state is torn down through Python, which no longer lets threads in), so idle workers are pooled."""

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="vlprep-decode", daemon=True).start()

    def _serve(self) -> None:
        while True:
            fn, box, done = self.jobs.get()
            try:
                box["value"] = fn()
            except BaseException as exc:  # re-raised in the caller's thread
                box["error"] = exc
            finally:
                done.set()


_idle: list[_Worker] = []
_idle_lock = threading.Lock()


@dataclass
class Pending:
    """A call queued on a decode worker."""

    worker: _Worker
    box: dict[str, Any] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)


class DecodeThread:
    """Where a reader's decoder calls run: one worker thread for all of them, each call bounded by a
    timeout.

    One thread per reader rather than one per call: torch gives each new calling thread its own OpenMP
    team, which torchcodec's output copies start, and a new thread per call made torchcodec reads
    1.3-1.5x slower. Readers return their worker to a pool when closed. A call that times out leaves
    its worker stuck in native code: it is abandoned and the next call takes another."""

    def __init__(self) -> None:
        self._worker: _Worker | None = None

    def call(self, fn: Callable[[], T], timeout: float | None, what: str) -> T:
        if timeout is None:
            return fn()
        return self.result(self.submit(fn), timeout, what)

    def submit(self, fn: Callable[[], T]) -> Pending:
        """Queues `fn` on the worker and returns at once; calls run one after another, in order."""
        if self._worker is None:
            with _idle_lock:
                self._worker = _idle.pop() if _idle else None
            if self._worker is None:
                self._worker = _Worker()
        job = Pending(self._worker)
        self._worker.jobs.put((fn, job.box, job.done))
        return job

    def result(self, job: Pending, timeout: float | None, what: str) -> Any:
        """The value of a submitted call, waiting at most `timeout` seconds from now."""
        if not job.done.wait(timeout):
            if self._worker is job.worker:
                self._worker = None  # stuck in a call; never handed out again
            raise DecodeError(f"{what} timed out after {timeout:g} s")
        if "error" in job.box:
            raise job.box["error"]
        return job.box["value"]

    def settle(self, job: Pending, timeout: float | None) -> None:
        """Lets a submitted call end (its value unused), unless its worker was abandoned as stuck."""
        if job.worker is self._worker:
            job.done.wait(timeout)

    def release(self) -> None:
        """Give the worker back to the pool (it is idle: calls wait for their result)."""
        worker, self._worker = self._worker, None
        if worker is not None:
            with _idle_lock:
                _idle.append(worker)


def _check_file(path: str) -> None:
    if not os.path.exists(path):
        raise DecodeError(f"no such file: {path}")
    if os.path.isdir(path):
        raise DecodeError(f"is a directory, not a video: {path}")
    if os.path.getsize(path) == 0:
        raise DecodeError(f"empty file: {path}")


def _probe(path: str) -> tuple[VideoMeta, VideoIndex]:
    import av

    _check_file(path)
    try:
        container = av.open(path)
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise DecodeError(f"not a readable media file: {exc}") from exc
    try:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["none"]
            raise DecodeError(f"no video stream (streams: {', '.join(kinds)})")
        stream = container.streams.video[0]
        time_base = stream.time_base or Fraction(1, 1_000_000)
        raw, keys, durations = [], [], []
        try:
            for packet in container.demux(stream):
                stamp = packet.pts if packet.pts is not None else packet.dts
                if stamp is None or packet.size == 0:
                    continue  # flush packets and packets without any time carry no frame we can address
                raw.append(stamp)
                keys.append(bool(packet.is_keyframe))
                durations.append(packet.duration or 0)
        except av.error.FFmpegError as exc:
            # frames before the damage may reference frames after it: no partial records
            raise DecodeError(f"video data truncated or corrupt after {len(raw)} packets: {exc}") from exc
        if not raw:
            raise DecodeError("video stream has no frames")
        if stream.frames and stream.frames > len(raw):
            # the header's count is what makes decord spin (dmlc/decord#373); the data ends early
            raise DecodeError(
                f"video data truncated: the container declares {stream.frames} frames, {len(raw)} present"
            )
        raw_pts = np.asarray(raw, dtype=np.int64)
        order = np.argsort(raw_pts, kind="stable")
        raw_pts = raw_pts[order]
        if np.any(np.diff(raw_pts) == 0):
            raise DecodeError("video stream has duplicate presentation times")
        keyframe = np.asarray(keys, dtype=bool)[order]
        pts = (raw_pts - raw_pts[0]).astype(np.float64) * float(time_base)
        intervals = np.diff(pts)
        last = durations[order[-1]] * float(time_base)
        if last <= 0:
            if intervals.size:
                last = float(np.median(intervals))
            elif stream.average_rate:
                last = 1.0 / float(stream.average_rate)
        duration = float(pts[-1] + last)
        # decoding one frame proves the codec works and is the only place rotation is exposed; one
        # thread: starting the codec's thread pool for one frame took 3-5x the decode itself
        stream.codec_context.thread_count = 1
        container.seek(0)
        try:
            first = next(container.decode(stream))
        except (StopIteration, av.error.FFmpegError) as exc:
            raise DecodeError(f"cannot decode the first frame: {exc or 'no frame decoded'}") from exc
        rotation = int(round(first.rotation or 0)) % 360
        width, height = first.width, first.height
        if rotation in (90, 270):
            width, height = height, width
        vfr = bool(
            intervals.size > 1 and intervals.max() - intervals.min() > 0.01 * max(intervals.mean(), 1e-9)
        )
        stream_fps = float(stream.average_rate or stream.guessed_rate or 0.0)
        meta = VideoMeta(
            path=str(path),
            num_frames=int(raw_pts.size),
            duration=duration,
            fps=raw_pts.size / duration if duration > 0 else stream_fps,
            stream_fps=stream_fps,
            width=int(width),
            height=int(height),
            rotation=rotation,
            codec=stream.codec_context.name,
            variable_frame_rate=vfr,
        )
        return meta, VideoIndex(pts=pts, raw_pts=raw_pts, keyframe=keyframe, time_base=Fraction(time_base))
    finally:
        container.close()


def probe_video(
    path: str | os.PathLike, timeout: float | None = DEFAULT_TIMEOUT
) -> tuple[VideoMeta, VideoIndex]:
    """Metadata and frame index of a video, from its container (demuxing only, plus one decoded frame)."""
    path = os.fspath(path)
    return call_with_timeout(lambda: _probe(path), timeout, f"probing {path}")


class VideoReader(ABC):
    """Random access to a video's frames by index or time, in display orientation.

    Readers keep decoder state between calls, so reading a long video window by window in ascending
    order decodes it once. Use as a context manager or call `close()`.
    """

    backend: str = ""

    def __init__(self, path: str, meta: VideoMeta, index: VideoIndex, timeout: float | None) -> None:
        self.path = path
        self.meta = meta
        self.index = index
        self.timeout = timeout
        # every decoder call of this reader runs on this one thread (opening included)
        self._calls = DecodeThread()
        self._ahead: Pending | None = None  # a window read ahead that nobody collected
        weakref.finalize(self, self._calls.release)

    @property
    def pts(self) -> np.ndarray:
        return self.index.pts

    def __len__(self) -> int:
        return self.meta.num_frames

    def indices_at(self, times: Sequence[float] | np.ndarray) -> np.ndarray:
        return frame_indices_at(self.index.pts, np.asarray(times, dtype=np.float64))

    def get_frames(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """uint8 [N, H, W, 3] RGB frames for the given indices, in the order asked (repeats allowed)."""
        indices = self._checked(indices)
        if indices.size == 0:
            return np.zeros((0, self.meta.height, self.meta.width, 3), dtype=np.uint8)
        if self.timeout is None:
            return self._in_order(indices, self._read(np.unique(indices)))
        return self._collect(indices, self._submit(indices))

    def _checked(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if indices.size and (indices.min() < 0 or indices.max() >= self.meta.num_frames):
            raise IndexError(
                f"frame index out of range [0, {self.meta.num_frames}): {indices.min()}..{indices.max()}"
            )
        return indices

    def _submit(self, indices: np.ndarray) -> Pending:
        unique = np.unique(indices)
        return self._calls.submit(lambda: self._read(unique))

    def _collect(self, indices: np.ndarray, job: Pending) -> np.ndarray:
        what = f"{self.backend} decoding {indices.size} frames of {self.path}"
        return self._in_order(indices, self._calls.result(job, self.timeout, what))

    def _in_order(self, indices: np.ndarray, frames: np.ndarray) -> np.ndarray:
        unique, inverse = np.unique(indices, return_inverse=True)
        if frames.shape[0] != unique.size:
            raise DecodeError(f"{self.backend} returned {frames.shape[0]} frames, expected {unique.size}")
        return frames if np.array_equal(unique, indices) else frames[inverse]

    def frames_at(self, times: Sequence[float] | np.ndarray) -> np.ndarray:
        """Frames at the given times (seconds from the first frame), each the last shown at or before t."""
        return self.get_frames(self.indices_at(times))

    def iter_frames(self, indices: Sequence[int] | np.ndarray, window: int = 64) -> Iterator[np.ndarray]:
        """The frames for `indices`, `window` at a time, so a long video never sits in memory whole. The
        decode thread reads one window ahead: it decodes the next window while the caller works on this
        one (the video extractor resizes it), and never waits between windows (2 windows in memory)."""
        indices = self._checked(indices)
        windows = [indices[start : start + window] for start in range(0, indices.size, window)]
        if self.timeout is None:
            for part in windows:
                yield self.get_frames(part)
            return
        job = self._submit(windows[0]) if windows else None
        for n, part in enumerate(windows):
            # kept on the reader, not only here: a caller that stops early leaves this read running, and
            # close() must let it end before it frees the decoder
            self._ahead = self._submit(windows[n + 1]) if n + 1 < len(windows) else None
            yield self._collect(part, job)
            job = self._ahead

    def _settle(self) -> None:
        """Waits for a window still being read ahead (the caller stopped early), before the decoder is
        freed under it."""
        job, self._ahead = self._ahead, None
        if job is not None:
            self._calls.settle(job, self.timeout)

    @abstractmethod
    def _read(self, indices: np.ndarray) -> np.ndarray:
        """Frames for sorted unique indices, uint8 [N, H, W, 3], display orientation."""

    def close(self) -> None:
        """Backends that hold a decoder call `_settle()`, release the decoder, then call this."""
        self._settle()
        self._calls.release()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        m = self.meta
        return (
            f"{type(self).__name__}({self.path!r}, frames={m.num_frames}, duration={m.duration:.3f}, "
            f"size={m.width}x{m.height}, rotation={m.rotation})"
        )
