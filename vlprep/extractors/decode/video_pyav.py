"""PyAV backend: decodes forward from the nearest keyframe and matches frames to the index by pts."""

from __future__ import annotations

import numpy as np

from vlprep.extractors.decode.errors import DecodeError
from vlprep.extractors.decode.video import VideoIndex, VideoMeta, VideoReader

# Seeking flushes the decoder and restarts at a keyframe; below this many frames of gap, decoding
# straight through is cheaper.
SEEK_MIN_GAP = 16
# Colour conversion on one thread: PyAV's default (swscale threads=0, automatic) splits each frame
# over threads that compete with the decoder's own frame threads; one thread converted 2.3-2.5x faster
# (640x360 and 1280x720, 2 cores, benchmarks/video_bench.py), with identical pixels. One reformatter per
# reader: `frame.to_ndarray(format=...)` makes a new one, and a new swscale context, for every frame
# (64 against 71 us a 640x360 frame here).
_RGB = {"format": "rgb24", "threads": 1}


class PyAVReader(VideoReader):
    backend = "pyav"

    def __init__(self, path: str, meta: VideoMeta, index: VideoIndex, timeout: float | None) -> None:
        super().__init__(path, meta, index, timeout)
        import av

        self._av = av
        try:
            self._container = av.open(path)
        except av.error.FFmpegError as exc:
            raise DecodeError(f"pyav cannot open the file: {exc}") from exc
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self._frames = None
        self._next = 0  # index the decoder will produce next (a lower bound after a seek)
        self._keyframes = np.flatnonzero(index.keyframe)
        if self._keyframes.size == 0 or self._keyframes[0] != 0:
            self._keyframes = np.concatenate([[0], self._keyframes])
        # every decoded frame is matched to the index; a dict finds the usual exact pts in O(1)
        self._position = {int(p): i for i, p in enumerate(index.raw_pts)}
        self._reformatter = av.video.reformatter.VideoReformatter()

    def _seek_to(self, target: int, from_start: bool = False) -> None:
        k = (
            0
            if from_start
            else int(self._keyframes[np.searchsorted(self._keyframes, target, side="right") - 1])
        )
        if k == 0:
            self._container.seek(0)
        else:
            self._container.seek(
                int(self.index.raw_pts[k]), stream=self._stream, backward=True, any_frame=False
            )
        self._frames = self._container.decode(self._stream)
        self._next = 0 if k == 0 else k

    def _wants_seek(self, target: int) -> bool:
        if self._frames is None or target < self._next:
            return True
        if target - self._next <= SEEK_MIN_GAP:
            return False  # no keyframe can be further than that ahead
        k = int(self._keyframes[np.searchsorted(self._keyframes, target, side="right") - 1])
        return k - self._next > SEEK_MIN_GAP

    def _index_of(self, frame) -> int:
        if frame.pts is None:
            return self._next
        position = self._position.get(frame.pts)
        if position is not None:
            return position
        raw = self.index.raw_pts
        i = int(np.searchsorted(raw, frame.pts, side="right") - 1)
        return max(i, 0)

    def _convert(self, frame) -> np.ndarray:
        try:
            rgb = self._reformatter.reformat(frame, **_RGB).to_ndarray()
        except TypeError:  # an older PyAV without `threads`
            rgb = self._reformatter.reformat(frame, format="rgb24").to_ndarray()
        if self.meta.rotation:
            rgb = np.rot90(rgb, self.meta.rotation // 90)
        return rgb

    def _decode_one(self, target: int) -> np.ndarray:
        for attempt in range(2):
            if attempt == 1 or self._wants_seek(target):
                self._seek_to(target, from_start=attempt == 1)
            try:
                for frame in self._frames:
                    i = self._index_of(frame)
                    self._next = i + 1
                    if i == target:
                        return self._convert(frame)
                    if i > target:
                        break  # the seek landed past the target; retry from the start
                else:
                    self._frames = None
            except self._av.error.FFmpegError as exc:
                self._frames = None
                raise DecodeError(f"pyav failed decoding frame {target}: {exc}") from exc
        raise DecodeError(f"pyav could not decode frame {target} of {self.meta.num_frames}")

    def _read(self, indices: np.ndarray) -> np.ndarray:
        out = np.empty((len(indices), self.meta.height, self.meta.width, 3), dtype=np.uint8)
        for j, target in enumerate(indices):
            frame = self._decode_one(int(target))
            if frame.shape != out.shape[1:]:
                raise DecodeError(
                    f"frame {target} is {frame.shape[1]}x{frame.shape[0]}, the stream says "
                    f"{self.meta.width}x{self.meta.height} (size changes mid-stream)"
                )
            out[j] = frame
        return out

    def close(self) -> None:
        self._settle()
        self._frames = None
        self._container.close()
        super().close()
