"""Video feature models (S3D, ResNet-152 2D, 3D ResNeXt-101, S3D-G) and the extractor that runs them."""

from vlprep.extractors.video.checkpoints import CheckpointError
from vlprep.extractors.video.extractor import (
    MODELS,
    ClipBatch,
    DecodedVideo,
    NonFiniteFeaturesError,
    StreamPlan,
    VideoExtractor,
)
from vlprep.extractors.video.recipes import RECIPES, StreamRecipe, VideoRecipe

__all__ = [
    "MODELS",
    "CheckpointError",
    "ClipBatch",
    "DecodedVideo",
    "NonFiniteFeaturesError",
    "RECIPES",
    "StreamRecipe",
    "VideoRecipe",
    "StreamPlan",
    "VideoExtractor",
]
