"""The `video` job: videos -> clip features on a time grid in a store.

Decoding never stalls the model: in each model actor a prefetch thread decodes the clips of the videos
of a call, window by window, into a bounded queue that the model drains (`_Prefetch`). Decoded clips
stay in the actor's process (no trip through Ray's object store), and a long video is never whole in
memory: at most `PREFETCH_BATCHES` clip batches wait."""

from __future__ import annotations

import contextlib
import functools
import queue
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vlprep.extractors.video.config import VideoConfig
from vlprep.pipelines.inputs import VIDEO_EXTENSIONS, InputError, Item, check_regular_file, list_items
from vlprep.pipelines.runner import Failure, JobSpec, RunOptions, cpu_only, run_job
from vlprep.weights_files import check_weights


def load_model(config: VideoConfig) -> Any:
    from vlprep.extractors.video import VideoExtractor

    return VideoExtractor.from_config(config)


def describe(extractor: Any) -> dict:
    return dict(extractor.producer)


# Clip batches decoded ahead of the model, per actor: at most this many wait in memory.
PREFETCH_BATCHES = 4
# Videos per model call: the prefetch thread runs across them, so the model waits only for the first
# window of each call's first video.
VIDEOS_PER_CALL = 4


def run_batch(extractor: Any, batch: list[tuple[Item, Item]]) -> list[dict | Failure]:
    """Decoding runs on a prefetch thread beside the model: while the model embeds one clip batch, the
    thread decodes the next ones (decord, PyAV and the torch resize release the GIL), a bounded queue of
    `PREFETCH_BATCHES` between them. A long video streams through window by window, never whole; a
    broken file is a decode failure of that video only, and a model error fails that video only."""
    from vlprep.extractors.decode.errors import DecodeError

    results: list[dict | Failure] = []
    with _Prefetch(extractor, [item.path for item, _ in batch]) as videos:
        for video in videos:
            if isinstance(video, BaseException):
                stage = "decode" if isinstance(video, (DecodeError, InputError)) else "model"
                results.append(Failure(stage, _message(video, stage)))
                continue
            meta, plans, batches = video
            chunks: dict[str, dict[str, list]] = {name: {} for name in plans}
            try:
                for clip_batch in batches:
                    for key, value in extractor.embed(clip_batch).items():
                        chunks[clip_batch.stream].setdefault(key, []).append(value)
            except DecodeError as exc:  # the file broke halfway: the thread has moved to the next video
                results.append(Failure("decode", _message(exc, "decode")))
                continue
            except Exception as exc:  # noqa: BLE001 - the model failed on this video: its error record
                results.append(Failure("model", _message(exc, "model")))
                with contextlib.suppress(Exception):
                    for _ in batches:  # the video's remaining clip batches, so the next video lines up
                        pass
                continue
            outputs = {
                name: {key: np.concatenate(parts) for key, parts in by_key.items()}
                for name, by_key in chunks.items()
            }
            record = extractor.assemble(meta, plans, outputs)
            results.append({k: _numpy(v) for k, v in record.items()})
    return results


def _message(exc: BaseException, stage: str) -> str:
    """A decode error's own reason; other errors as `Type: first line`."""
    lines = str(exc).strip().splitlines()
    if stage == "decode" and lines:
        return str(exc).strip()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


_END = object()


class _Prefetch:
    """Yields, per path in order, (meta, plans, clip batches) or the exception that opening it raised;
    the clip batches of each come from the decode thread through the bounded queue, and iterating them
    raises a decode error met halfway through the file."""

    def __init__(self, extractor: Any, paths: list[str]) -> None:
        self.extractor, self.paths = extractor, paths
        self.queue: queue.Queue = queue.Queue(maxsize=PREFETCH_BATCHES)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._decode_all, name="vlprep-video-decode", daemon=True)

    def __enter__(self) -> Iterator:
        self.thread.start()
        return self._videos()

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        while self.thread.is_alive():  # unblock a thread waiting on a full queue
            with contextlib.suppress(queue.Empty):
                self.queue.get(timeout=0.1)
        self.thread.join()

    def _put(self, entry: Any) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(entry, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _decode_all(self) -> None:
        for path in self.paths:
            try:
                check_regular_file(path)  # a FIFO named x.mp4 would block the reader for ever
                video = self.extractor.decode_clips(path)
            except BaseException as exc:  # noqa: BLE001 - reported for this video, then the next one
                if not self._put(("video", exc)):
                    return
                continue
            if not self._put(("video", (video.meta, video.plans))):
                return
            try:
                for clip_batch in video.batches():
                    if not self._put(("batch", clip_batch)):
                        return
            except BaseException as exc:  # noqa: BLE001 - a file that breaks halfway
                if not self._put(("error", exc)):
                    return
                continue
            if not self._put(("end", None)):
                return

    def _videos(self) -> Iterator:
        for _ in self.paths:
            kind, value = self.queue.get()
            if kind == "video" and isinstance(value, BaseException):
                yield value
                continue
            meta, plans = value
            yield meta, plans, self._batches()

    def _batches(self) -> Iterator:
        while True:
            kind, value = self.queue.get()
            if kind == "batch":
                yield value
            elif kind == "error":
                raise value
            else:
                return


def _numpy(value: Any) -> Any:
    return value.detach().cpu().numpy() if hasattr(value, "detach") else value


def _duration(record: dict) -> float:
    return float(record.get("duration", 0.0))


def video_job(config: VideoConfig) -> JobSpec:
    return JobSpec(
        kind="video",
        producer=None,
        load_model=functools.partial(load_model, config),
        run_batch=run_batch,
        decode=None,
        describe=describe,
        items_per_call=VIDEOS_PER_CALL,
        unit="video",
        measure=_duration,
        measure_name="video_seconds",
    )


def run_video(
    inputs: Sequence[str], out: str | Path, config: VideoConfig | None = None, run: RunOptions | None = None
) -> dict:
    """Extracts clip features for every video named by `inputs` into the store at `out`; returns the run
    summary. Python form of `vlprep video` (`config`: see VideoConfig and the video recipes)."""
    config = config or VideoConfig()
    check_weights(config.weights)  # fails here, not after Ray has built a model
    items = list_items(inputs, VIDEO_EXTENSIONS, tar_members=False)
    return run_job(video_job(config), items, out, cpu_only(run, config.device))
