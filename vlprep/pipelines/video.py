"""The `video` job: videos -> clip features on a time grid in a store."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlprep.pipelines.inputs import VIDEO_EXTENSIONS, Item, list_items
from vlprep.pipelines.runner import Failure, JobSpec, RunOptions, cpu_only, run_job


@dataclass
class VideoOptions:
    """The extractor's parameters (see VideoExtractor.from_weights)."""

    model: str = "s3d"
    weights: str = "random"
    device: str | None = None
    precision: str = "fp32"
    batch_size: int = 8  # clips per forward pass
    decoder: str = "auto"
    seed: int = 0
    keep_streams: bool = False
    with_embedding: bool = False
    decode_timeout: float | None = 120.0


def load_model(options: VideoOptions) -> Any:
    from vlprep.extractors.video import VideoExtractor

    return VideoExtractor.from_weights(
        model=options.model,
        weights=options.weights,
        device=options.device,
        precision=options.precision,
        batch_size=options.batch_size,
        decoder=options.decoder,
        seed=options.seed,
        keep_streams=options.keep_streams,
        with_embedding=options.with_embedding,
        timeout=options.decode_timeout,
    )


def describe(extractor: Any) -> dict:
    return dict(extractor.producer)


def run_batch(extractor: Any, batch: list[tuple[Item, Item]]) -> list[dict | Failure]:
    # The extractor reads the file itself (windowed decoding with a timeout), so there is no decode task:
    # an unreadable video surfaces here as DecodeError.
    from vlprep.extractors.decode.errors import DecodeError

    results: list[dict | Failure] = []
    for item, _ in batch:
        try:
            record = extractor.extract_file(item.path)
        except DecodeError as exc:
            results.append(Failure("decode", str(exc) or type(exc).__name__))
            continue
        results.append({k: _numpy(v) for k, v in record.items()})
    return results


def _numpy(value: Any) -> Any:
    return value.detach().cpu().numpy() if hasattr(value, "detach") else value


def _duration(record: dict) -> float:
    return float(record.get("duration", 0.0))


def video_job(options: VideoOptions) -> JobSpec:
    return JobSpec(
        kind="video",
        producer=None,
        load_model=functools.partial(load_model, options),
        run_batch=run_batch,
        decode=None,
        describe=describe,
        items_per_call=1,
        unit="video",
        measure=_duration,
        measure_name="video_seconds",
    )


def run_video(
    inputs: Sequence[str], out: str | Path, options: VideoOptions | None = None, run: RunOptions | None = None
) -> dict:
    """Extracts clip features for every video named by `inputs` into the store at `out`; returns the run
    summary. Python form of `vlprep video`."""
    options = options or VideoOptions()
    items = list_items(inputs, VIDEO_EXTENSIONS, tar_members=False)
    return run_job(video_job(options), items, out, cpu_only(run, options.device))
