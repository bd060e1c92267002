"""`VideoExtractor`: a video file in, one feature record out; free of Ray and of the store.

The work splits in three steps that a pipeline may place in different processes:
`decode_clips(path)` (CPU: decode, sample, resize, crop; yields uint8 clip batches, window by window),
`embed(batch)` (the model's device: normalise, forward), and `assemble(...)` (the record).
`extract_file` chains them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from vlprep.extractors.decode.errors import DecodeError
from vlprep.extractors.decode.open import open_video
from vlprep.extractors.decode.sampling import (
    SAMPLING_RULES,
    clip_timestamps,
    clip_windows,
    sample_frames,
    sample_times,
)
from vlprep.extractors.decode.video import DEFAULT_TIMEOUT, VideoMeta, VideoReader
from vlprep.extractors.runtime import PRECISIONS, torch_device, torch_dtype
from vlprep.extractors.video.combine import combine_2d3d
from vlprep.extractors.video.config import MODEL_STREAMS as MODELS
from vlprep.extractors.video.config import VideoConfig, video_config
from vlprep.extractors.video.models import Stream, build_stream
from vlprep.extractors.video.preprocess import normalise, resize_crop

FRAME_RULES = {
    "floor": "the last frame presented at or before each sample time k/fps (seconds from the first "
    "frame); ceil(duration * fps) samples",
    "ffmpeg-fps": "ffmpeg's fps filter: the last frame presented before (k + 0.5)/fps (seconds from the "
    "first frame); round(duration * fps) samples",
}
# Native frames decoded per call: bounds memory for high-resolution input before resizing.
DECODE_WINDOW = 32


class NonFiniteFeaturesError(RuntimeError):
    """A model returned NaN or inf: an overflow (fp16 holds at most 65504), never a property of a video."""


@dataclass(frozen=True)
class StreamPlan:
    """What one stream reads: sample times and their frame indices, clip windows over the samples
    ([C, 2] start/stop sample positions; stop may pass the last sample for a padded tail) and each
    clip's (start, end) seconds."""

    stream: str
    times: np.ndarray
    indices: np.ndarray
    windows: np.ndarray
    timestamps: np.ndarray

    @property
    def num_clips(self) -> int:
        return len(self.windows)


@dataclass
class ClipBatch:
    """uint8 clips [B, L, h, w, 3] (resized and cropped, not normalised) of one stream, clips
    `first`..`first + B - 1` of its plan."""

    stream: str
    first: int
    clips: torch.Tensor


@dataclass
class DecodedVideo:
    """An open video with its plans; `batches()` decodes it window by window (once) and closes it."""

    meta: VideoMeta
    plans: dict[str, StreamPlan]
    backend: str
    _batches: Iterator[ClipBatch] | None = field(default=None, repr=False)

    def batches(self) -> Iterator[ClipBatch]:
        if self._batches is None:
            raise RuntimeError("the batches of a decoded video can be iterated once")
        batches, self._batches = self._batches, None
        return batches


class VideoExtractor:
    def __init__(
        self,
        model: str,
        streams: list[Stream],
        device: torch.device,
        precision: str = "fp32",
        batch_size: int = 8,
        decoder: str = "auto",
        timeout: float | None = DEFAULT_TIMEOUT,
        keep_streams: bool = False,
        with_embedding: bool = False,
        sampling: str = "floor",
        config: VideoConfig | None = None,
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
        if sampling not in SAMPLING_RULES:
            raise ValueError(f"unknown sampling {sampling!r}; choose from {', '.join(SAMPLING_RULES)}")
        if precision == "fp16" and device.type == "cpu":
            raise ValueError("fp16 needs a GPU; use fp32 or bf16 on CPU")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model_name = model
        self.streams = {s.name: s for s in streams}
        self.device = device
        self.precision = precision
        self.batch_size = batch_size
        self.decoder = decoder
        self.timeout = timeout
        self.keep_streams = keep_streams
        self.with_embedding = with_embedding
        self.sampling = sampling
        self.config = config  # when built from one: its recipe goes into the producer
        for s in streams:
            s.model.to(device)

    @classmethod
    def from_config(cls, config: VideoConfig) -> VideoExtractor:
        """Build the model of `config` (see VideoConfig, recipes.py). `weights`: "random", a checkpoint
        path, or for `2d3d` "path2d,path3d" (either may be "random")."""
        parts = MODELS[config.model]
        specs = [config.weights] if len(parts) == 1 else config.weights.split(",")
        if len(parts) > 1 and specs == ["random"]:
            specs = ["random"] * len(parts)
        if len(specs) != len(parts):
            names = ",".join(f"PATH_{name.upper()}" for name, _ in parts)
            raise ValueError(
                f"model {config.model!r} takes {len(parts)} weights, {names} (or 'random'); "
                f"got {config.weights!r}"
            )
        streams = [
            build_stream(name, arch, spec.strip(), config.seed)
            for (name, arch), spec in zip(parts, specs, strict=True)
        ]
        return cls(
            config.model,
            streams,
            torch_device(config.device),
            config.precision,
            config.batch_size,
            config.decoder,
            config.decode_timeout,
            config.keep_streams,
            config.with_embedding,
            config.sampling,
            config,
        )

    @classmethod
    def from_weights(
        cls, model: str = "s3d", weights: str | os.PathLike = "random", recipe: str | None = None, **fields
    ) -> VideoExtractor:
        """`from_config(video_config(recipe, model, weights=weights, **fields))`: `model` alone takes
        its recipe (`resnet152` -> `howto100m-2d`). `timeout` is accepted for `decode_timeout`."""
        if "timeout" in fields:
            fields["decode_timeout"] = fields.pop("timeout")
        if model not in MODELS:
            raise ValueError(f"unknown video model {model!r}; choose from {', '.join(MODELS)}")
        return cls.from_config(video_config(recipe, model, weights=os.fspath(weights), **fields))

    @property
    def feature_dim(self) -> int:
        return sum(s.dim for s in self.streams.values())

    @property
    def producer(self) -> dict[str, Any]:
        """Everything that determines the features: model, weights (sha256 or "random"), recipes, decoding."""
        out: dict[str, Any] = {
            "model": self.model_name,
            "feature_dim": self.feature_dim,
            "streams": {
                name: {
                    "architecture": s.architecture,
                    "feature_dim": s.dim,
                    "weights": s.weights["source"],
                    "weights_sha256": s.weights["sha256"],
                    "weights_format": s.weights["format"],
                    **({"seed": s.weights["seed"]} if "seed" in s.weights else {}),
                    "recipe": s.recipe.to_dict(),
                }
                for name, s in self.streams.items()
            },
            "decoder": self.decoder,
            "sampling": self.sampling,
            "frame_rule": FRAME_RULES[self.sampling],
            "pixel_format": "rgb24, display orientation (rotation metadata applied)",
            "resize": "shorter side, bilinear with antialias on uint8 (torch), long side truncated",
            "precision": self.precision,
        }
        if self.model_name == "2d3d":
            out["combine"] = (
                "per second: 2D feature ++ element-wise max over the 3D clips overlapping that second"
            )
            out["keep_streams"] = self.keep_streams
        if self.with_embedding:
            out["embedding"] = "fc(mixed_5c), 512-d joint video-text space"
        if self.config is not None:
            out["recipe"] = self.config.recipe
            out["overrides"] = self.config.overrides()
        return out

    # -- planning -------------------------------------------------------------------------------------

    def plan(self, meta: VideoMeta, pts: np.ndarray) -> dict[str, StreamPlan]:
        """Sampling plans for a video with this duration and these frame presentation times."""
        plans = {}
        for name, s in self.streams.items():
            r = s.recipe
            times = sample_times(meta.duration, r.fps, self.sampling)
            windows = clip_windows(len(times), r.clip_len, r.clip_stride, r.tail)
            plans[name] = StreamPlan(
                stream=name,
                times=times,
                indices=sample_frames(pts, times, r.fps, self.sampling),
                windows=windows,
                timestamps=clip_timestamps(windows, r.fps, meta.duration).astype(np.float32),
            )
        return plans

    # -- decoding (CPU) -------------------------------------------------------------------------------

    def open(self, path: str | os.PathLike) -> VideoReader:
        # torchcodec decodes on this GPU's NVDEC when the model runs on CUDA; the others on the CPU
        return open_video(path, backend=self.decoder, timeout=self.timeout, device=str(self.device))

    def decode_clips(self, path: str | os.PathLike) -> DecodedVideo:
        """Open and plan a video; its `batches()` yield uint8 clip batches of at most `batch_size` clips,
        reading the file window by window. Broken or stuck files raise DecodeError."""
        reader = self.open(path)
        try:
            plans = self.plan(reader.meta, reader.pts)
        except Exception:
            reader.close()
            raise
        return DecodedVideo(reader.meta, plans, reader.backend, self._iter_batches(reader, plans))

    def _iter_batches(self, reader: VideoReader, plans: dict[str, StreamPlan]) -> Iterator[ClipBatch]:
        with reader:
            for name, plan in plans.items():
                recipe = self.streams[name].recipe
                for first in range(0, plan.num_clips, self.batch_size):
                    windows = plan.windows[first : first + self.batch_size]
                    yield ClipBatch(name, first, self._read_clips(reader, plan, windows, recipe))

    def _read_clips(self, reader: VideoReader, plan: StreamPlan, windows: np.ndarray, recipe) -> torch.Tensor:
        lo, hi = int(windows[:, 0].min()), int(windows[:, 1].max())
        real = min(hi, len(plan.indices))
        pieces = [
            resize_crop(frames, recipe.size, recipe.crop)
            for frames in reader.iter_frames(plan.indices[lo:real], window=DECODE_WINDOW)
        ]
        samples = torch.cat(pieces) if pieces else None
        if samples is None:
            raise DecodeError(f"no frames decoded for samples {lo}..{hi}")
        if real < hi:  # the padded tail clip: black frames, normalised like any other
            pad = torch.zeros((hi - real, *samples.shape[1:]), dtype=samples.dtype)
            samples = torch.cat([samples, pad])
        positions = torch.as_tensor(windows[:, :1] + np.arange(recipe.clip_len)[None, :] - lo)
        return samples[positions]

    # -- model (device) -------------------------------------------------------------------------------

    @torch.inference_mode()
    def embed(self, batch: ClipBatch) -> dict[str, np.ndarray]:
        """Features of one clip batch: {"features": float32 [B, D]} (+ "embedding" for s3dg). Raises
        NonFiniteFeaturesError rather than return NaN or inf."""
        stream = self.streams[batch.stream]
        x = normalise(batch.clips.to(self.device, non_blocking=True), stream.recipe)
        amp = self.precision != "fp32"
        with torch.autocast(self.device.type, dtype=torch_dtype(self.precision), enabled=amp):
            features = stream.model.forward_features(x)
            out = {"features": features}
            if self.with_embedding:
                out["embedding"] = stream.model.embed(features)
        arrays = {k: v.float().cpu().numpy() for k, v in out.items()}
        for key, value in arrays.items():
            finite = np.isfinite(value).reshape(len(value), -1).all(axis=1)
            if not finite.all():
                raise NonFiniteFeaturesError(self._non_finite_message(batch, key, np.flatnonzero(~finite)))
        return arrays

    def _non_finite_message(self, batch: ClipBatch, key: str, bad: np.ndarray) -> str:
        stream = self.streams[batch.stream]
        clips = ", ".join(str(batch.first + int(i)) for i in bad[:8]) + (", ..." if len(bad) > 8 else "")
        where = f"{stream.architecture} (stream {batch.stream!r}, weights {stream.weights['source']})"
        advice = (
            "fp16 overflows above 65504; run with precision 'bf16' (fp32's range) or 'fp32'"
            if self.precision == "fp16"
            else "the weights or the input are broken"
        )
        return f"{where} returned NaN/inf {key} for clips {clips} at {self.precision}: {advice}"

    # -- record ---------------------------------------------------------------------------------------

    def assemble(
        self, meta: VideoMeta, plans: dict[str, StreamPlan], outputs: dict[str, dict[str, np.ndarray]]
    ) -> dict[str, Any]:
        """The record from each stream's concatenated outputs (keyed by stream name)."""
        record: dict[str, Any] = {}
        if self.model_name == "2d3d":
            features, pooled = combine_2d3d(
                outputs["2d"]["features"],
                plans["2d"].timestamps,
                outputs["3d"]["features"],
                plans["3d"].timestamps,
            )
            record["features"] = features
            record["timestamps"] = plans["2d"].timestamps
            if self.keep_streams:
                record["features_2d"] = outputs["2d"]["features"]
                record["features_3d"] = pooled
        else:
            (name,) = self.streams
            record["features"] = outputs[name]["features"]
            record["timestamps"] = plans[name].timestamps
            if self.with_embedding:
                record["embedding"] = outputs[name]["embedding"]
        for key, value in record.items():
            record[key] = np.ascontiguousarray(value, dtype=np.float32)
        record["fps"] = float(meta.fps)
        record["duration"] = float(meta.duration)
        record["num_frames"] = int(meta.num_frames)
        return record

    def extract_file(self, path: str | os.PathLike) -> dict[str, Any]:
        """Record for one video: features float32 [T, D], timestamps float32 [T, 2] (start, end s),
        fps, duration, num_frames. Raises DecodeError (with a reason) for broken or stuck files."""
        video = self.decode_clips(path)
        chunks: dict[str, dict[str, list[np.ndarray]]] = {name: {} for name in video.plans}
        for batch in video.batches():
            for key, value in self.embed(batch).items():
                chunks[batch.stream].setdefault(key, []).append(value)
        outputs = {
            name: {key: np.concatenate(parts) for key, parts in by_key.items()}
            for name, by_key in chunks.items()
        }
        return self.assemble(video.meta, video.plans, outputs)
