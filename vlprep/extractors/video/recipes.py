"""Extraction recipes: how each published feature set sampled, sized and normalised its input.

A recipe is data; `preprocess` applies it and the extractor records it in the producer, so a store
says exactly how its features were made.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
KINETICS_MEAN_255 = (110.63666788, 103.16065604, 96.29023126)
TORCHVISION_VIDEO_MEAN = (0.43216, 0.394666, 0.37645)
TORCHVISION_VIDEO_STD = (0.22803, 0.22145, 0.216989)


@dataclass(frozen=True)
class Recipe:
    """Frames sampled at `fps` (the frame at t is the last shown at or before t), grouped in clips of
    `clip_len` frames every `stride` frames (1 and 1 for a per-frame 2D model); shorter side resized to
    `size` (bilinear, antialiased, long side truncated as ffmpeg's scale did), centre-cropped to `crop`
    (None: no crop); pixel values x * `scale` then (x - mean) / std, RGB. A partial last clip is padded
    with black frames before normalisation (`tail="pad"`) or dropped (`tail="drop"`)."""

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

    def with_normalisation(self, scale: float, mean, std) -> Recipe:
        return replace(self, scale=scale, mean=tuple(mean), std=tuple(std))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stride"] = self.clip_stride
        return d


# VideoBERT: 20 fps, 30-frame (1.5 s) non-overlapping clips, 224 centre crop. Normalisation depends on
# the checkpoint (see S3D_NORMALISATION).
S3D_VIDEOBERT = Recipe(
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
RESNET152_2D = Recipe(
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
RESNEXT101_3D = Recipe(
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
S3DG_UNIVL = Recipe(
    fps=16.0,
    clip_len=16,
    size=224,
    crop=224,
    scale=1 / 255,
    mean=(0.0, 0.0, 0.0),
    std=(1.0, 1.0, 1.0),
    reference="UniVL (Luo et al. 2020): S3D-G MIL-NCE HowTo100M, 16 fps, 16-frame clips, mixed_5c 1024-d",
)
