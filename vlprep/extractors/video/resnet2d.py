"""ResNet-152 (torchvision) as a per-frame 2D feature extractor: global average of layer4, 2048-d.

HowTo100M's 2D features used torchvision's ImageNet weights (`IMAGENET1K_V1`, the old `pretrained=True`)
on uncropped frames, so the pooled map is not square; the classifier `fc` stays in the module only so
that torchvision's state dict loads strictly.
"""

from __future__ import annotations

import torch
from torchvision.models.resnet import Bottleneck, ResNet

FEATURE_DIM = 2048


class ResNet152(ResNet):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__(Bottleneck, [3, 8, 36, 3], num_classes=num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """[N, 3, H, W] -> [N, 2048]."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=(2, 3))
