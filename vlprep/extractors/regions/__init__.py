"""Bottom-up-attention region features: the Visual-Genome Faster R-CNN (ResNet-101 C4, 1600 objects,
400 attributes) on torch and torchvision ops, loading the detectron2, MILVLG and Hugging Face
checkpoints. See docs/regions.md."""

from .checkpoints import CheckpointError
from .extractor import RegionExtractor

__all__ = ["CheckpointError", "RegionExtractor"]
