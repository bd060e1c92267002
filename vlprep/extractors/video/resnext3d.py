"""Hara et al.'s 3D ResNeXt-101 (cardinality 32, shortcut B, layers 3/4/23/3), the 3D stream of the
HowTo100M features. Parameter names follow the released Kinetics checkpoint (`resnext-101-kinetics.pth`,
and its unwrapped copy `resnext101.pth`). The stem is 64 channels wide: the later 3D-ResNets `master`
definition (128-wide stem) does not match these checkpoints.
"""

from __future__ import annotations

import torch
from torch import nn

FEATURE_DIM = 2048
CARDINALITY = 32
EXPANSION = 2


class ResNeXtBottleneck3d(nn.Module):
    def __init__(
        self, in_channels: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        mid = CARDINALITY * (planes // 32)
        self.conv1 = nn.Conv3d(in_channels, mid, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm3d(mid)
        self.conv2 = nn.Conv3d(
            mid, mid, kernel_size=3, stride=stride, padding=1, groups=CARDINALITY, bias=False
        )
        self.bn2 = nn.BatchNorm3d(mid)
        self.conv3 = nn.Conv3d(mid, planes * EXPANSION, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm3d(planes * EXPANSION)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + shortcut)


class ResNeXt3d(nn.Module):
    def __init__(self, layers: tuple[int, ...] = (3, 4, 23, 3), num_classes: int = 400) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(3, 64, kernel_size=7, stride=(1, 2, 2), padding=3, bias=False)
        self.bn1 = nn.BatchNorm3d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d(kernel_size=3, stride=2, padding=1)
        in_channels = 64
        for i, (planes, blocks) in enumerate(zip((128, 256, 512, 1024), layers, strict=True)):
            stride = 1 if i == 0 else 2
            # shortcut B: a projection on the first block of every stage, identity elsewhere
            downsample = nn.Sequential(
                nn.Conv3d(in_channels, planes * EXPANSION, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm3d(planes * EXPANSION),
            )
            stage = [ResNeXtBottleneck3d(in_channels, planes, stride, downsample)]
            in_channels = planes * EXPANSION
            stage += [ResNeXtBottleneck3d(in_channels, planes) for _ in range(blocks - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
        self.fc = nn.Linear(in_channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """[N, 3, 16, 112, 112] -> [N, 2048]. A global average, which equals the reference's
        AvgPool3d((1, 4, 4)) at the recipe's input size."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=(2, 3, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x))


def resnext101_3d() -> ResNeXt3d:
    return ResNeXt3d((3, 4, 23, 3))
