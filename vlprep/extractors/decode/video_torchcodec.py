"""torchcodec backend: PyTorch's decoder, on the CPU or on the GPU's NVDEC, reading the frames of the
container index (handed to torchcodec as its frame mapping, so both agree on what frame i is).

torchcodec needs the system FFmpeg shared libraries (4 to 9); without them `import torchcodec` works but
no video can be opened, which `torchcodec_problem` reports in one line with what to install.
"""

from __future__ import annotations

import json

import numpy as np

from vlprep.extractors.decode.errors import DecodeError, DecoderUnavailableError
from vlprep.extractors.decode.video import VideoIndex, VideoMeta, VideoReader

INSTALL_HINT = (
    "pip install 'vlprep[torchcodec]' (torchcodec==0.17.0) and the FFmpeg shared libraries "
    "(Debian/Ubuntu: apt-get install libavcodec59 libavformat59 libavutil57 libswscale6 "
    "libswresample4 libavdevice59 libavfilter8; any FFmpeg 4-9)"
)


def torchcodec_problem() -> str | None:
    """None when torchcodec can decode video here; otherwise why not, in one line."""
    try:
        import torchcodec  # noqa: F401
    except ImportError as exc:
        return f"torchcodec is not installed ({exc})"
    except Exception as exc:  # a torchcodec built for another torch fails while importing
        return f"torchcodec does not import ({type(exc).__name__}: {str(exc).splitlines()[0]})"
    try:
        # set at import: the FFmpeg major version whose libraries loaded, None when none did
        from torchcodec._core import ffmpeg_major_version
    except ImportError:  # a layout other than the pinned version's: let opening a video decide
        return None
    if ffmpeg_major_version is None:
        return "torchcodec cannot load the FFmpeg shared libraries (libavcodec, libavformat, ...)"
    return None


def require_torchcodec() -> None:
    """Raise DecoderUnavailableError naming what to install when torchcodec cannot decode here."""
    problem = torchcodec_problem()
    if problem is not None:
        raise DecoderUnavailableError(f"{problem}; install: {INSTALL_HINT}")


def decode_device(device: str | None) -> str:
    """Where torchcodec decodes for a model on `device`: that CUDA device (NVDEC) when one is asked for
    and visible, else the CPU. torchcodec itself falls back to the CPU for streams NVDEC cannot decode."""
    if device is None or not str(device).startswith("cuda"):
        return "cpu"
    import torch

    return str(device) if torch.cuda.is_available() else "cpu"


def frame_mapping(index: VideoIndex) -> str:
    """The container index as torchcodec's custom frame mapping (ffprobe's JSON layout): stream pts,
    duration (the gap to the next frame; the last repeats the previous gap) and keyframe flags."""
    raw = index.raw_pts
    gaps = np.diff(raw)
    last = int(gaps[-1]) if gaps.size else 1
    durations = np.append(gaps, last)
    frames = [
        {"pts": int(p), "duration": int(d), "key_frame": int(k)}
        for p, d, k in zip(raw, durations, index.keyframe, strict=True)
    ]
    return json.dumps({"frames": frames})


class TorchCodecReader(VideoReader):
    backend = "torchcodec"

    def __init__(
        self,
        path: str,
        meta: VideoMeta,
        index: VideoIndex,
        timeout: float | None,
        device: str | None = None,
    ) -> None:
        super().__init__(path, meta, index, timeout)
        require_torchcodec()
        from torchcodec.decoders import VideoDecoder

        self.device = decode_device(device)
        self.device_fallback_reason = ""
        mapping = frame_mapping(index)

        def open_on(where: str):
            return VideoDecoder(
                path,
                dimension_order="NHWC",
                # 0: FFmpeg picks the thread count, as PyAV's thread_type="AUTO" does
                num_ffmpeg_threads=0,
                device=where,
                custom_frame_mappings=mapping,
            )

        def open_decoder():
            try:
                if self.device != "cpu":
                    try:
                        return open_on(self.device)
                    except (RuntimeError, ValueError) as exc:
                        # no NVDEC here (or no libnvcuvid in this container): the CPU decodes the file
                        self.device_fallback_reason = str(exc).splitlines()[0]
                        self.device = "cpu"
                return open_on("cpu")
            except (RuntimeError, ValueError) as exc:
                raise DecodeError(f"torchcodec cannot open the file: {str(exc).splitlines()[0]}") from exc

        self._decoder = self._calls.call(open_decoder, timeout, f"torchcodec opening {path}")
        if self._decoder.metadata.num_frames != meta.num_frames:
            raise DecodeError(
                f"torchcodec counts {self._decoder.metadata.num_frames} frames, "
                f"the container index has {meta.num_frames}"
            )

    def _read(self, indices: np.ndarray) -> np.ndarray:
        try:
            batch = self._decoder.get_frames_at(indices.tolist())
        except (RuntimeError, ValueError, IndexError) as exc:
            raise DecodeError(f"torchcodec failed decoding: {str(exc).splitlines()[0]}") from exc
        # NHWC uint8; torchcodec applies the rotation tag itself (display orientation)
        frames = batch.data.cpu().numpy()
        if frames.shape[1:3] != (self.meta.height, self.meta.width):
            raise DecodeError(
                f"torchcodec frames are {frames.shape[2]}x{frames.shape[1]}, "
                f"expected {self.meta.width}x{self.meta.height}"
            )
        return frames

    def close(self) -> None:
        self._settle()
        self._decoder = None
        super().close()
