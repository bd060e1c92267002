"""`RegionConfig`: every parameter of the region extractor, once. The CLI's options, the YAML `--config`,
the pipeline, `RegionExtractor.from_config` and the store's producer all read this one object, and the
recipes (`recipes.py`) are named values of it. Importing this module imports neither torch nor cv2, so
the CLI can build its choices from the constants below."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from vlprep.extractors.runtime import PRECISIONS

POLICIES = ("caffe", "maxnms", "given")
# Named by what each reproduces (preprocessing.py); the old names stay accepted for one release.
RESIZE_MODES = ("caffe", "detectron2", "hf")
RESIZE_ALIASES = {"cv2": "caffe", "pil": "detectron2"}
# "bgr": what the weights were trained on (Caffe). "rgb": RGB pixels into the BGR weights, as the Hugging
# Face LXMERT demo does on its local-file path; only on request, to reproduce that demo's files.
CHANNEL_ORDERS = ("bgr", "rgb")
# Where the regions job decodes JPEG files: "cpu" (Ray CPU tasks, every format) or "gpu" (the model
# actor, with nvjpeg on its GPU, for nodes with few CPUs per GPU; other formats still decode on the CPU).
IMAGE_DECODES = ("cpu", "gpu")
WEIGHTS_FORMATS = ("auto", "d2", "hf", "milvlg", "random")
RPN_ORDERS = ("caffe", "d2")
# airsplay's `np.arange(0.3, 1.0, 0.1)`, value for value (0.30000000000000004, ...).
AIRSPLAY_NMS_THRESHOLDS = (
    0.3,
    0.4,
    0.5,
    0.6000000000000001,
    0.7000000000000002,
    0.8000000000000003,
    0.9000000000000001,
)
# The fields that decide where and how fast it runs, not the numbers (beyond float rounding): they are
# not part of a store's producer, so a store started on one machine resumes on another.
RUNTIME_FIELDS = frozenset(
    {
        "device",
        "roi_chunk",
        "channels_last",
        "preprocess_on_device",
        "fold_bn",
        "batched_rpn",
        "fused_convs",
        # recorded by the regions job itself, and only when "gpu" (pipelines/regions.py: describe)
        "image_decode",
    }
)


class ConfigValueError(ValueError):
    """A parameter with a value it cannot take; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


def parse_boxes(spec: Any) -> tuple[int, int]:
    """`36` / `"36"` -> (36, 36); `"10-100"`, `"10,100"`, `(10, 100)` -> (10, 100)."""
    values: list[int] = []
    if isinstance(spec, bool):
        values = []
    elif isinstance(spec, int):
        values = [spec]
    elif isinstance(spec, str):
        parts = spec.replace(",", "-").split("-")
        if all(p.strip().isdigit() for p in parts):
            values = [int(p) for p in parts]
    elif isinstance(spec, Sequence):
        try:
            values = [int(v) for v in spec]
        except (TypeError, ValueError):
            values = []
    if len(values) not in (1, 2):
        raise ConfigValueError("boxes", f"a count (36) or a range (10-100), not {spec!r}")
    low, high = values[0], values[-1]
    if low < 1 or high < low:
        raise ConfigValueError("boxes", f"need 1 <= min <= max, got {low}-{high}")
    return low, high


def parse_thresholds(spec: Any) -> tuple[float, ...]:
    """`"0.5,0.6,0.7"` or `[0.5, 0.6, 0.7]` -> (0.5, 0.6, 0.7): non-empty, each in (0, 1], rising."""
    items = spec.strip().strip("[]()").split(",") if isinstance(spec, str) else spec
    try:
        values = tuple(float(v) for v in (items if isinstance(items, Sequence) else [items]))
    except (TypeError, ValueError):
        raise ConfigValueError(
            "nms_thresholds", f"a list of numbers like 0.5,0.6,0.7, not {spec!r}"
        ) from None
    if not values or not all(math.isfinite(v) and 0 < v <= 1 for v in values):
        raise ConfigValueError("nms_thresholds", f"each threshold must be in (0, 1], got {spec!r}")
    if any(b <= a for a, b in zip(values, values[1:])):
        raise ConfigValueError("nms_thresholds", f"thresholds are tried in order and must rise, got {spec!r}")
    return values


@dataclass(frozen=True)
class RegionConfig:
    """The region extractor's parameters. Defaults are the `butd-caffe` recipe (the Caffe reference)."""

    # the weights
    weights: str = "random"
    weights_format: str = "auto"
    seed: int = 0  # of weights="random"
    vocab: str | None = None  # "objects.txt,attributes.txt"
    # selection
    policy: str = "caffe"
    boxes: tuple[int, int] = (10, 100)
    score_threshold: float = 0.2  # caffe: keep max_conf >= this
    class_nms: float = 0.3  # caffe: the per-class NMS threshold
    nms_thresholds: tuple[float, ...] = AIRSPLAY_NMS_THRESHOLDS  # maxnms: tried in order
    # model input
    min_size: int = 600
    max_size: int = 1000
    resize: str = "caffe"
    channel_order: str = "bgr"
    # proposals
    rpn_pre_nms: int = 6000
    rpn_post_nms: int = 300
    rpn_nms: float = 0.7
    rpn_min_size: float | None = None  # None: 16 for the caffe order, 0 for d2's
    rpn_order: str | None = None  # None: caffe for the caffe and given policies, d2 for maxnms
    plus_one: bool | None = None  # box convention; None: the weights format's
    # how it runs
    device: str | None = None
    precision: str = "fp32"
    roi_chunk: int | None = None
    channels_last: bool | None = None
    preprocess_on_device: bool | None = None
    fold_bn: bool | None = None
    batched_rpn: bool | None = None
    tf32: bool = False
    fused_convs: bool = False
    image_decode: str = "cpu"  # the regions job's JPEG decoding: IMAGE_DECODES
    # provenance: the recipe these values started from (None: built by hand)
    recipe: str | None = None

    def __post_init__(self) -> None:
        def choice(name: str, allowed: Sequence[str]) -> None:
            if getattr(self, name) not in allowed:
                raise ConfigValueError(name, f"{getattr(self, name)!r} is not one of {', '.join(allowed)}")

        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        put("resize", RESIZE_ALIASES.get(self.resize, self.resize))
        put("boxes", parse_boxes(self.boxes))
        put("nms_thresholds", parse_thresholds(self.nms_thresholds))
        put("weights", str(self.weights))
        choice("policy", POLICIES)
        choice("resize", RESIZE_MODES)
        choice("channel_order", CHANNEL_ORDERS)
        choice("weights_format", WEIGHTS_FORMATS)
        choice("precision", PRECISIONS)
        choice("image_decode", IMAGE_DECODES)
        if self.rpn_order is not None:
            choice("rpn_order", RPN_ORDERS)
        if (self.weights == "random") != (self.weights_format == "random") and self.weights_format != "auto":
            raise ConfigValueError("weights_format", "random goes with weights 'random' (and only there)")
        for name in ("min_size", "max_size", "rpn_pre_nms", "rpn_post_nms"):
            if int(getattr(self, name)) < 1:
                raise ConfigValueError(name, f"must be >= 1, got {getattr(self, name)}")
            put(name, int(getattr(self, name)))
        if self.max_size < self.min_size:
            raise ConfigValueError("max_size", f"must be >= min_size ({self.min_size}), got {self.max_size}")
        for name in ("score_threshold", "class_nms", "rpn_nms"):
            value = float(getattr(self, name))
            if not 0 <= value <= 1:
                raise ConfigValueError(name, f"must be in [0, 1], got {value}")
            put(name, value)
        if self.rpn_min_size is not None and float(self.rpn_min_size) < 0:
            raise ConfigValueError("rpn_min_size", f"must be >= 0, got {self.rpn_min_size}")
        if self.roi_chunk is not None and int(self.roi_chunk) < 0:
            raise ConfigValueError("roi_chunk", f"must be >= 0 (0: all at once), got {self.roi_chunk}")
        if self.preprocess_on_device and (self.resize != "caffe"):
            raise ConfigValueError("preprocess_on_device", "implements the caffe resize only")

    # -- the rule each None field stands for ---------------------------------------------------------

    @property
    def effective_rpn_order(self) -> str:
        return self.rpn_order or ("d2" if self.policy == "maxnms" else "caffe")

    @property
    def effective_rpn_min_size(self) -> float:
        if self.rpn_min_size is not None:
            return float(self.rpn_min_size)
        return 16.0 if self.effective_rpn_order == "caffe" else 0.0

    # -- conversions ----------------------------------------------------------------------------------

    def replace(self, **changes: Any) -> RegionConfig:
        """A copy with `changes` (field names; unknown names raise)."""
        _check_names(changes)
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON/YAML-ready (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RegionConfig:
        """The inverse of `to_dict`; keys may use dashes (`min-size`); unknown keys raise."""
        values = {str(k).replace("-", "_"): v for k, v in data.items()}
        _check_names(values)
        return cls(**values)

    def numbers(self) -> dict[str, Any]:
        """The fields that decide the numbers (all but RUNTIME_FIELDS): what a store records."""
        return {k: v for k, v in self.to_dict().items() if k not in RUNTIME_FIELDS}


FIELD_NAMES = tuple(f.name for f in fields(RegionConfig))


def _check_names(values: Mapping[str, Any]) -> None:
    unknown = sorted(set(values) - set(FIELD_NAMES))
    if unknown:
        raise ConfigValueError(unknown[0], f"unknown region parameter(s) {', '.join(unknown)}")
