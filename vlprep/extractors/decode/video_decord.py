"""decord backend: batched random access (`get_batch`), checked against the container index at open."""

from __future__ import annotations

import numpy as np

from vlprep.extractors.decode.errors import DecodeError
from vlprep.extractors.decode.video import VideoIndex, VideoMeta, VideoReader

# decord's and the index's presentation times come from the same container, in seconds.
PTS_TOLERANCE = 1e-3


class DecordReader(VideoReader):
    backend = "decord"

    def __init__(self, path: str, meta: VideoMeta, index: VideoIndex, timeout: float | None) -> None:
        super().__init__(path, meta, index, timeout)
        import decord

        def open_and_check():
            try:
                vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=0)
            except decord.DECORDError as exc:
                raise DecodeError(f"decord cannot open the file: {str(exc).splitlines()[0]}") from exc
            # A count taken from container headers that exceeds the decodable frames makes get_batch
            # spin forever (dmlc/decord#373); a different frame order would break frame-exactness.
            if len(vr) != meta.num_frames:
                raise DecodeError(
                    f"decord counts {len(vr)} frames, the container index has {meta.num_frames}"
                )
            stamps = vr.get_frame_timestamp(list(range(len(vr))))[:, 0].astype(np.float64)
            if np.abs((stamps - stamps[0]) - index.pts).max() > PTS_TOLERANCE:
                raise DecodeError("decord's frame order differs from the container's presentation order")
            return vr

        self._decord = decord
        self._vr = self._calls.call(open_and_check, timeout, f"decord opening {path}")

    def _read(self, indices: np.ndarray) -> np.ndarray:
        try:
            frames = self._vr.get_batch(indices.tolist()).asnumpy()
        except Exception as exc:  # decord surfaces native failures as assorted exception types
            raise DecodeError(f"decord failed decoding: {str(exc).splitlines()[0]}") from exc
        if frames.shape[1:3] != (self.meta.height, self.meta.width):
            raise DecodeError(
                f"decord frames are {frames.shape[2]}x{frames.shape[1]}, "
                f"expected {self.meta.width}x{self.meta.height}"
            )
        return frames

    def close(self) -> None:
        self._settle()
        self._vr = None
        super().close()
