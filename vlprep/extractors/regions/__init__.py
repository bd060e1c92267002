"""Bottom-up-attention region features: the Visual-Genome Faster R-CNN (ResNet-101 C4, 1600 objects,
400 attributes) on torch and torchvision ops, loading the detectron2, MILVLG and Hugging Face
checkpoints. See docs/regions.md."""


def __getattr__(name: str):
    # Imported on first use: they pull in torch (seconds), which reading label names (vocab.py) for
    # `vlprep inspect --render --vocab` does not need.
    if name == "CheckpointError":
        from .checkpoints import CheckpointError

        return CheckpointError
    if name == "RegionExtractor":
        from .extractor import RegionExtractor

        return RegionExtractor
    raise AttributeError(name)


__all__ = ["CheckpointError", "RegionExtractor"]
