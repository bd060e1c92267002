"""The `regions` job: images -> bottom-up-attention region features in a store."""

from __future__ import annotations

import csv
import functools
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vlprep.checksums import file_sha256
from vlprep.extractors.regions.config import RegionConfig
from vlprep.pipelines.config import ConfigError
from vlprep.pipelines.deadline import deadline
from vlprep.pipelines.inputs import IMAGE_EXTENSIONS, Item, check_regular_file, list_items
from vlprep.pipelines.runner import Failure, JobSpec, RunOptions, cpu_only, run_job
from vlprep.weights_files import check_weights


def load_given_boxes(path: str | Path) -> dict[str, np.ndarray]:
    """Boxes per image id from JSON ({id: [[x1, y1, x2, y2], ...]} or [{"id": .., "boxes": ..}]) or from
    CSV with a header id,x1,y1,x2,y2 (one row per box)."""
    path = Path(path)
    boxes: dict[str, list] = {}
    if path.suffix.lower() == ".csv":
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            need = {"id", "x1", "y1", "x2", "y2"}
            if not need <= set(reader.fieldnames or ()):
                raise ValueError(f"{path}: a CSV of given boxes needs the columns id,x1,y1,x2,y2")
            for row in reader:
                boxes.setdefault(row["id"], []).append([float(row[k]) for k in ("x1", "y1", "x2", "y2")])
    else:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        if isinstance(data, list):
            data = {str(entry["id"]): entry["boxes"] for entry in data}
        boxes = {str(k): v for k, v in data.items()}
    out = {}
    for item_id, value in boxes.items():
        array = np.asarray(value, dtype=np.float32).reshape(-1, 4)
        if len(array) == 0 or not np.isfinite(array).all():
            raise ValueError(f"{path}: id {item_id!r} has no valid boxes")
        out[item_id] = array
    return out


def check_region_options(config: RegionConfig) -> None:
    """What can be checked without a model: the weights file, and a box count the proposals can give
    (the selection keeps at most --rpn-post-nms boxes, so --boxes 1000 with 300 proposals would
    silently give 300)."""
    low, high = config.boxes
    if high > config.rpn_post_nms:
        raise ConfigError(
            f"--boxes {low}-{high} asks for up to {high} boxes but --rpn-post-nms {config.rpn_post_nms} "
            f"proposals can give at most {config.rpn_post_nms}; raise --rpn-post-nms to at least {high}"
        )
    check_weights(config.weights)


def check_image_decode(config: RegionConfig, local: bool) -> None:
    """`image_decode="gpu"` decodes on the model's GPU: the model must be on CUDA, and a job that starts
    its own Ray (`local`) must find CUDA on this machine. Checked before Ray starts; on a cluster the
    workers' devices are checked when they load the model."""
    if config.image_decode != "gpu":
        return
    if config.device is not None and not str(config.device).startswith("cuda"):
        raise ConfigError(
            f"--image-decode gpu decodes on the model's GPU, but the model runs on {config.device}; "
            "use --device cuda (or --gpus-per-worker 1), or --image-decode cpu"
        )
    if local:
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(
                "--image-decode gpu needs a CUDA GPU, and torch sees none on this machine; "
                "use --image-decode cpu"
            )


@dataclass
class _Model:
    extractor: Any
    given: dict[str, np.ndarray] | None
    given_sha256: str | None


def load_model(config: RegionConfig, given_boxes: str | None = None) -> _Model:
    from vlprep.extractors.regions import RegionExtractor

    extractor = RegionExtractor.from_config(config)
    if config.image_decode == "gpu" and extractor.device.type != "cuda":
        raise ValueError(
            f"--image-decode gpu needs the model on a CUDA device; this worker has {extractor.device}"
        )
    given = sha = None
    if given_boxes:
        given, sha = load_given_boxes(given_boxes), file_sha256(given_boxes)
    return _Model(extractor, given, sha)


def describe(model: _Model) -> dict:
    """The store's producer: the extractor's own description (every parameter that decides the numbers),
    the recipe it started from and what was changed from it, the given boxes and label names (which
    `vlprep inspect --render` uses when no --vocab is given there)."""
    from vlprep.extractors.regions.recipes import overrides_of

    producer = dict(model.extractor.producer)
    config = getattr(model.extractor, "config", None)
    if config is not None and config.recipe:
        producer["overrides"] = overrides_of(config)
    if model.given_sha256:
        producer["given_boxes_sha256"] = model.given_sha256
    if config is not None and config.image_decode != "cpu":
        # nvjpeg and libjpeg-turbo may differ by a grey level here and there: a store keeps one decoder.
        # Not recorded for "cpu", so that stores made before the option resume.
        producer["image_decode"] = f"{config.image_decode} (nvjpeg through torchvision.io.decode_jpeg)"
    for key in ("object_names", "attribute_names"):
        names = getattr(model.extractor, key, None)
        if names:
            producer.setdefault(key, list(names))
    return producer


DECODE_TIMEOUT_S = 60.0  # a photo decodes in well under a second; this only stops what never returns


@dataclass(frozen=True)
class EncodedJpeg:
    """A JPEG file's bytes, for the model actor to decode on its GPU (`image_decode="gpu"`)."""

    data: bytes


def decode(item: Item, on_gpu: bool = False) -> np.ndarray | EncodedJpeg:
    """The item's pixels (RGB uint8), or with `on_gpu` its bytes when they are a JPEG the GPU decodes as
    the CPU would (`jpeg_for_device`); any other file is decoded here, per item."""
    from vlprep.corpora.webdataset import media_source
    from vlprep.extractors.decode.errors import DecodeError
    from vlprep.extractors.decode.image import decode_image, jpeg_for_device

    source = media_source(item.path)  # a tar member's bytes, read in place
    if not isinstance(source, bytes):
        check_regular_file(source)
    if on_gpu:
        if not isinstance(source, bytes):
            with open(source, "rb") as fh:
                source = fh.read()
        if jpeg_for_device(source):
            return EncodedJpeg(source)
    try:
        with deadline(DECODE_TIMEOUT_S, f"decoding {item.path}"):
            return decode_image(source)
    except DecodeError as exc:
        if isinstance(source, bytes):  # name the member, not "<bytes>"
            raise DecodeError(str(exc).replace("<bytes>", item.path, 1)) from None
        raise


def _as_record(record: dict) -> dict:
    out = {}
    for key, value in record.items():
        if hasattr(value, "detach"):  # a torch tensor
            value = value.detach().cpu().numpy()
        out[key] = value
    return out


def _decode_on_device(model: _Model, batch: list[tuple[Item, Any]]) -> list[tuple[Item, Any]]:
    """The batch with its EncodedJpeg payloads decoded on the model's device, all at once; a file that
    does not decode there is decoded on the CPU, and one that fails both is a Failure("decode")."""
    from vlprep.extractors.decode.errors import DecodeError
    from vlprep.extractors.decode.image import decode_image, decode_jpegs

    encoded = [n for n, (_, payload) in enumerate(batch) if isinstance(payload, EncodedJpeg)]
    if not encoded:
        return batch
    out = list(batch)
    decoded = decode_jpegs([batch[n][1].data for n in encoded], str(model.extractor.device))
    for n, pixels in zip(encoded, decoded, strict=True):
        item, payload = batch[n]
        if isinstance(pixels, DecodeError):
            try:
                pixels = decode_image(payload.data)
            except DecodeError as exc:
                pixels = Failure("decode", f"DecodeError: {str(exc).replace('<bytes>', item.path, 1)}")
        out[n] = (item, pixels)
    return out


def run_batch(model: _Model, batch: list[tuple[Item, Any]]) -> list[dict | Failure]:
    batch = _decode_on_device(model, batch)
    results: list[dict | Failure | None] = [None] * len(batch)
    for n, (_, pixels) in enumerate(batch):
        if isinstance(pixels, Failure):
            results[n] = pixels
    todo = [n for n in range(len(batch)) if results[n] is None]
    given = None
    if model.given is not None:
        for n in todo:
            if batch[n][0].id not in model.given:
                results[n] = Failure("input", "no given boxes for this id")
        todo = [n for n in todo if batch[n][0].id in model.given]
        given = [model.given[batch[n][0].id] for n in todo]
    if todo:
        records = model.extractor.extract([batch[n][1] for n in todo], given_boxes=given)
        for n, record in zip(todo, records, strict=True):
            record = _as_record(record)
            results[n] = unusable(record, batch[n][1]) or record
    return results


def unusable(record: dict, pixels: Any) -> Failure | None:
    """A record that must not be stored as "ok": no box at all, or non-finite model outputs."""
    for key, value in record.items():
        array = np.asarray(value)
        if array.dtype.kind == "f" and array.size and not np.isfinite(array).all():
            return Failure("model", f"the model produced non-finite values in {key!r} (NaN/inf weights?)")
    if int(record.get("num_boxes", len(record.get("boxes", ())))) == 0:
        shape = getattr(pixels, "shape", None)
        size = f"{shape[1]}x{shape[0]} image" if shape is not None and len(shape) >= 2 else "image"
        return Failure(
            "select",
            f"no box survived selection on this {size}: no proposal above the minimum size, or every "
            "score below the threshold",
        )
    return None


def count_fewer_boxes(out: str | Path, minimum: int) -> int:
    """Items of the store at `out` that kept fewer than `minimum` boxes (the reference keeps fewer
    when an image yields fewer proposals; a count the user should see)."""
    from vlprep.store import FeatureStore

    store = FeatureStore(out)
    try:
        if "num_boxes" not in store.schema:
            return 0
        return sum(int(n) < minimum for _, n in store.iter_field("num_boxes"))
    finally:
        store.close()


DEFAULT_BATCH_SIZE = 8  # images per model call (`vlprep regions --batch-size`)


def regions_job(
    config: RegionConfig, batch_size: int = DEFAULT_BATCH_SIZE, given_boxes: str | None = None
) -> JobSpec:
    if (config.policy == "given") != bool(given_boxes):
        raise ValueError("policy 'given' and given_boxes go together")
    return JobSpec(
        kind="regions",
        producer=None,
        load_model=functools.partial(load_model, config, given_boxes),
        run_batch=run_batch,
        decode=functools.partial(decode, on_gpu=config.image_decode == "gpu"),
        describe=describe,
        items_per_call=batch_size,
        unit="img",
    )


def run_regions(
    inputs: Sequence[str],
    out: str | Path,
    config: RegionConfig | None = None,
    run: RunOptions | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    given_boxes: str | None = None,
) -> dict:
    """Extracts region features for every image named by `inputs` into the store at `out`; returns the
    run summary. Python form of `vlprep regions` (`config`: see RegionConfig and recipes.py)."""
    config = config or RegionConfig()
    check_region_options(config)  # bad options fail here, not after Ray has built a model
    check_image_decode(config, local=not ((run and run.address) or os.environ.get("RAY_ADDRESS")))
    job = regions_job(config, batch_size, given_boxes)
    items = list_items(inputs, IMAGE_EXTENSIONS)
    summary = run_job(job, items, out, cpu_only(run, config.device))
    summary["fewer_boxes"] = count_fewer_boxes(out, config.boxes[0])
    summary["min_boxes"] = config.boxes[0]
    return summary
