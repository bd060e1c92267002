"""Video recipes: how each published feature set sampled, sized and normalised its input, as data.

`StreamRecipe` is one network's input (rate, clip length, size, crop, normalisation); `VideoRecipe` is a
named, published feature set: a model, its streams' recipes and the frame-sampling rule of its
reference code. `vlprep video --recipe NAME` (or `--model M`, which takes M's recipe) starts from one;
the store records the recipe's name and every value. Sources are the reference code read for
reference/video.md: antoine77340/video_feature_extractor @4e6c728 (HowTo100M), ArrowLuo/
VideoFeatureExtractor (UniVL), the VideoBERT paper (Sun et al. 2019), torchvision and kylemin/S3D.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from vlprep.extractors.decode.sampling import SAMPLING_RULES

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# antoine77340/video_feature_extractor preprocessing.py: the mean its 3D stream subtracts (kenshohara's
# Kinetics mean rounded to one decimal; the unrounded 110.63666788, 103.16065604, 96.29023126 is not what
# the HowTo100M features were made with).
KINETICS_MEAN_255 = (110.6, 103.2, 96.3)
TORCHVISION_VIDEO_MEAN = (0.43216, 0.394666, 0.37645)
TORCHVISION_VIDEO_STD = (0.22803, 0.22145, 0.216989)


@dataclass(frozen=True)
class StreamRecipe:
    """One network's input. Frames sampled at `fps` (which frame a sample shows: the `VideoRecipe`'s
    sampling rule), grouped in clips of `clip_len` frames every `stride` frames (1 and 1 for a per-frame
    2D model); shorter side resized to `size` (bilinear, antialiased, long side truncated as ffmpeg's
    scale did), centre-cropped to `crop` (None: no crop); pixel values x * `scale` then (x - mean) / std,
    RGB. A partial last clip is padded with black frames before normalisation (`tail="pad"`) or dropped
    (`tail="drop"`)."""

    fps: float
    clip_len: int
    size: int
    crop: int | None
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    stride: int | None = None
    tail: str = "pad"
    reference: str = ""

    @property
    def clip_stride(self) -> int:
        return self.clip_len if self.stride is None else self.stride

    @property
    def is_2d(self) -> bool:
        return self.clip_len == 1

    def with_normalisation(self, scale: float, mean, std) -> StreamRecipe:
        return replace(self, scale=scale, mean=tuple(mean), std=tuple(std))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stride"] = self.clip_stride
        return d


# VideoBERT: 20 fps, 30-frame (1.5 s) non-overlapping clips, 224 centre crop. Normalisation depends on
# the checkpoint (see S3D_NORMALISATION).
S3D_VIDEOBERT = StreamRecipe(
    fps=20.0,
    clip_len=30,
    size=224,
    crop=224,
    scale=1 / 255,
    mean=TORCHVISION_VIDEO_MEAN,
    std=TORCHVISION_VIDEO_STD,
    reference="VideoBERT (Sun et al. 2019): S3D, 20 fps, 30-frame clips, 1024-d",
)

S3D_NORMALISATION = {
    # torchvision's KINETICS400_V1 weights: [0, 1] then the Kinetics mean/std of its transform preset
    "torchvision": (1 / 255, TORCHVISION_VIDEO_MEAN, TORCHVISION_VIDEO_STD),
    # kylemin/S3D: [-1, 1] (I3D convention), i.e. x/255 with mean 0.5, std 0.5
    "kylemin": (1 / 255, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}

# HowTo100M 2D stream (antoine77340/video_feature_extractor): 1 frame/s, shorter side 224, no crop.
RESNET152_2D = StreamRecipe(
    fps=1.0,
    clip_len=1,
    size=224,
    crop=None,
    scale=1 / 255,
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    reference="HowTo100M 2D (Miech et al. 2019): ResNet-152 ImageNet, 1 frame/s, 2048-d",
)

# HowTo100M 3D stream: 24 fps, 16-frame non-overlapping clips (1.5 clips/s), 112 crop, 0-255 minus mean.
RESNEXT101_3D = StreamRecipe(
    fps=24.0,
    clip_len=16,
    size=112,
    crop=112,
    scale=1.0,
    mean=KINETICS_MEAN_255,
    std=(1.0, 1.0, 1.0),
    reference="HowTo100M 3D (Miech et al. 2019): 3D ResNeXt-101 Kinetics, 24 fps, 16-frame clips, 2048-d",
)

# UniVL (ArrowLuo/VideoFeatureExtractor): 16 fps, 16-frame clips (1 s), 224 centre crop, [0, 1].
S3DG_UNIVL = StreamRecipe(
    fps=16.0,
    clip_len=16,
    size=224,
    crop=224,
    scale=1 / 255,
    mean=(0.0, 0.0, 0.0),
    std=(1.0, 1.0, 1.0),
    reference="UniVL (Luo et al. 2020): S3D-G MIL-NCE HowTo100M, 16 fps, 16-frame clips, mixed_5c 1024-d",
)


@dataclass(frozen=True)
class VideoRecipe:
    """A published feature set: `model` (extractor.MODELS) with these stream recipes, sampled by
    `sampling` (decode/sampling.py)."""

    name: str
    model: str
    sampling: str
    streams: dict[str, StreamRecipe]
    reference: str  # repository and file of the code it reproduces
    reproduces: str
    checkpoint: str

    def __post_init__(self) -> None:
        if self.sampling not in SAMPLING_RULES:
            raise ValueError(f"unknown sampling {self.sampling!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "reference": self.reference,
            "reproduces": self.reproduces,
            "checkpoint": self.checkpoint,
            "parameters": {
                "model": self.model,
                "sampling": self.sampling,
                "streams": {name: r.to_dict() for name, r in self.streams.items()},
            },
        }


RECIPES: dict[str, VideoRecipe] = {
    r.name: r
    for r in (
        VideoRecipe(
            name="videobert",
            model="s3d",
            # No reference code was published; the paper gives the rate and clip length only, so the
            # rule is vlprep's stated one.
            sampling="floor",
            streams={"s3d": S3D_VIDEOBERT},
            reference="VideoBERT paper (Sun et al. 2019, arXiv 1904.01766): S3D, 20 fps, 30-frame clips",
            reproduces="VideoBERT's S3D clip features (1024-d per 1.5 s), the input of its visual tokens",
            checkpoint="torchvision s3d-d76dad2f.pth or kylemin S3D_kinetics400.pt (VideoBERT's own S3D "
            "was never released); normalisation follows the checkpoint",
        ),
        VideoRecipe(
            name="howto100m-2d",
            model="resnet152",
            sampling="ffmpeg-fps",  # extract.py / video_loader.py: ffmpeg -filter fps=1, then scale
            streams={"2d": RESNET152_2D},
            reference="antoine77340/video_feature_extractor extract.py --type 2d",
            reproduces="HowTo100M's 2D features (1 per second, 2048-d)",
            checkpoint="torchvision resnet152-394f9c45.pth (IMAGENET1K_V1, the old pretrained=True)",
        ),
        VideoRecipe(
            name="howto100m-3d",
            model="resnext101-3d",
            sampling="ffmpeg-fps",  # extract.py --type 3d: ffmpeg fps=24, scale, crop
            streams={"3d": RESNEXT101_3D},
            reference="antoine77340/video_feature_extractor extract.py --type 3d",
            reproduces="HowTo100M's 3D features (1.5 per second, 2048-d)",
            checkpoint="resnext101.pth (HowTo100M) or resnext-101-kinetics.pth (Hara et al.)",
        ),
        VideoRecipe(
            name="howto100m-2d3d",
            model="2d3d",
            sampling="ffmpeg-fps",
            streams={"2d": RESNET152_2D, "3d": RESNEXT101_3D},
            reference="antoine77340/video_feature_extractor (both streams) + howto100m youtube_dataloader.py "
            "(max-pool, concatenate)",
            reproduces="the 4096-d 2D+3D HowTo100M features of UniViLM v1, one row per second",
            checkpoint="resnet152-394f9c45.pth,resnext101.pth",
        ),
        VideoRecipe(
            name="milnce",
            model="s3dg-howto100m",
            sampling="ffmpeg-fps",  # ArrowLuo/VideoFeatureExtractor extract.py: ffmpeg fps=16
            streams={"s3dg": S3DG_UNIVL},
            reference="ArrowLuo/VideoFeatureExtractor extract.py --type s3dg (the fork UniVL links to)",
            reproduces="UniVL's released S3D-G features (1024-d per second, mixed_5c)",
            checkpoint="s3d_howto100m.pth (antoine77340/S3D_HowTo100M)",
        ),
    )
}
# UniVL's released code and features are the S3D-G ones (microsoft/UniVL README, dataloaders/README.md).
ALIASES = {"univl": "milnce"}
# The recipe `--model M` means when no recipe is named.
MODEL_DEFAULTS = {r.model: r.name for r in RECIPES.values()}


def get_recipe(name: str) -> VideoRecipe:
    name = ALIASES.get(name, name)
    if name not in RECIPES:
        choices = ", ".join([*RECIPES, *ALIASES])
        raise ValueError(f"unknown video recipe {name!r} (expected one of {choices})")
    return RECIPES[name]
