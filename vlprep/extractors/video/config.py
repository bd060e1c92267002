"""`VideoConfig`: every parameter of the video extractor, once. The CLI's options, the YAML `--config`,
the pipeline, `VideoExtractor.from_config` and the store's producer read this one object; the named
recipes (`recipes.py`) fix the model, the stream recipes and the sampling rule."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from vlprep.extractors.decode.errors import DecoderUnavailableError
from vlprep.extractors.decode.open import BACKENDS as DECODERS
from vlprep.extractors.decode.open import check_backend
from vlprep.extractors.decode.sampling import SAMPLING_RULES
from vlprep.extractors.runtime import PRECISIONS

from .recipes import ALIASES, MODEL_DEFAULTS, RECIPES, get_recipe

# model name -> its streams as (stream name, architecture key of models.ARCHITECTURES)
MODEL_STREAMS: dict[str, tuple[tuple[str, str], ...]] = {
    "s3d": (("s3d", "s3d"),),
    "resnet152": (("2d", "resnet152"),),
    "resnext101-3d": (("3d", "resnext101-3d"),),
    "2d3d": (("2d", "resnet152"), ("3d", "resnext101-3d")),
    "s3dg-howto100m": (("s3dg", "s3dg-howto100m"),),
}
MODELS = tuple(MODEL_STREAMS)
RUNTIME_FIELDS = frozenset({"device", "batch_size", "decoder", "decode_timeout"})


class ConfigValueError(ValueError):
    """A parameter with a value it cannot take; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


@dataclass(frozen=True)
class VideoConfig:
    """Build with `video_config(recipe=..., model=..., **fields)`, which resolves the recipe; the
    defaults are the `videobert` recipe."""

    recipe: str = "videobert"
    model: str = "s3d"
    sampling: str = "floor"
    weights: str = "random"  # a path, "p2d,p3d" for 2d3d, or "random"
    seed: int = 0
    keep_streams: bool = False
    with_embedding: bool = False
    device: str | None = None
    precision: str = "fp32"
    batch_size: int = 8  # clips per forward pass
    decoder: str = "auto"
    decode_timeout: float | None = 120.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "recipe", ALIASES.get(self.recipe, self.recipe))
        object.__setattr__(self, "weights", str(self.weights))
        for name, allowed in (
            ("recipe", tuple(RECIPES)),
            ("model", MODELS),
            ("sampling", SAMPLING_RULES),
            ("precision", PRECISIONS),
            ("decoder", DECODERS),
        ):
            if getattr(self, name) not in allowed:
                raise ConfigValueError(name, f"{getattr(self, name)!r} is not one of {', '.join(allowed)}")
        try:
            check_backend(self.decoder)  # a decoder asked for by name must load before any work starts
        except DecoderUnavailableError as exc:
            raise ConfigValueError("decoder", str(exc)) from None
        if RECIPES[self.recipe].model != self.model:
            raise ConfigValueError(
                "model", f"recipe {self.recipe} is for model {RECIPES[self.recipe].model}, not {self.model}"
            )
        if int(self.batch_size) < 1:
            raise ConfigValueError("batch_size", f"must be >= 1, got {self.batch_size}")
        if self.decode_timeout is not None and float(self.decode_timeout) <= 0:
            raise ConfigValueError("decode_timeout", f"must be positive, got {self.decode_timeout}")
        if self.keep_streams and self.model != "2d3d":
            raise ConfigValueError("keep_streams", "applies to the 2d3d model only")
        if self.with_embedding and self.model != "s3dg-howto100m":
            raise ConfigValueError("with_embedding", "applies to the s3dg-howto100m model only")

    def replace(self, **changes: Any) -> VideoConfig:
        _check_names(changes)
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VideoConfig:
        values = {str(k).replace("-", "_"): v for k, v in data.items()}
        _check_names(values)
        return cls(**values)

    def numbers(self) -> dict[str, Any]:
        """The fields that decide the numbers (all but RUNTIME_FIELDS): what a store records."""
        return {k: v for k, v in self.to_dict().items() if k not in RUNTIME_FIELDS}

    def overrides(self) -> dict[str, Any]:
        """What differs from the recipe's own values, {field: [recipe value, value]}."""
        base = RECIPES[self.recipe]
        return {} if self.sampling == base.sampling else {"sampling": [base.sampling, self.sampling]}


FIELD_NAMES = tuple(f.name for f in fields(VideoConfig))


def _check_names(values: Mapping[str, Any]) -> None:
    unknown = sorted(set(values) - set(FIELD_NAMES))
    if unknown:
        raise ConfigValueError(unknown[0], f"unknown video parameter(s) {', '.join(unknown)}")


def video_config(recipe: str | None = None, model: str | None = None, **fields: Any) -> VideoConfig:
    """The config of `recipe` (or of `model`'s recipe: `--model resnet152` means `howto100m-2d`) with
    `fields` over it; None values are ignored, so unset CLI options pass through. A recipe and a model
    that do not belong together raise."""
    if recipe is None and model is None:
        raise ConfigValueError("recipe", "name a recipe or a model")
    if recipe is None:
        if model not in MODEL_DEFAULTS:
            raise ConfigValueError("model", f"{model!r} is not one of {', '.join(MODELS)}")
        recipe = MODEL_DEFAULTS[model]
    try:
        base = get_recipe(recipe)
    except ValueError as exc:
        raise ConfigValueError("recipe", str(exc)) from None
    given = {k: v for k, v in fields.items() if v is not None}
    _check_names(given)
    return VideoConfig(recipe=base.name, model=model or base.model, sampling=base.sampling).replace(**given)
