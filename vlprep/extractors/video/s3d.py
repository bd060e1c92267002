"""S3D (Xie et al.) in torchvision's topology, as a clip feature extractor (VideoBERT's 1024-d features).

The module is torchvision's, so torchvision's state dict loads as is; kylemin/S3D's
`S3D_kinetics400.pt` loads after the renaming in `checkpoints.kylemin_to_torchvision`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.models.video import S3D as TorchvisionS3D

FEATURE_DIM = 1024


class S3D(TorchvisionS3D):
    """torchvision S3D plus `forward_features`: the 1024-d input of the classifier."""

    def __init__(self, num_classes: int = 400) -> None:
        super().__init__(num_classes=num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """[N, 3, T, H, W] -> [N, 1024]. The (2, H', W') average pool then the mean over time is what
        both torchvision (fixed 7x7, equal at 224x224) and kylemin (whole map) apply before the linear
        classifier; pooling the whole map keeps smaller inputs valid."""
        y = self.features(x)
        y = F.avg_pool3d(y, kernel_size=(min(2, y.shape[2]), y.shape[3], y.shape[4]), stride=1)
        return y.mean(dim=(2, 3, 4))
