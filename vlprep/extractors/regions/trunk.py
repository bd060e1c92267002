"""ResNet-101 C4 trunk of the bottom-up-attention detector, with detectron2's parameter names.

Differences from torchvision's resnet101, all inherited from the Caffe model the weights come from:
the stride of a downsampling block sits in its 1x1 conv (not the 3x3), the stem max-pool has no padding
and rounds up (Caffe pooling), and every batch norm is frozen (the checkpoints hold running statistics,
never batch statistics).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

# (blocks, bottleneck width) per stage of ResNet-101; output channels are 4x the width.
RESNET101_STAGES = {"res2": (3, 64), "res3": (4, 128), "res4": (23, 256), "res5": (3, 512)}


class ConvNorm(nn.Conv2d):
    """Bias-free conv followed by a frozen batch norm held as child `norm`, as detectron2's Conv2d
    wrapper names it (`conv1.weight`, `conv1.norm.running_var`)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, dilation: int = 1):
        padding = dilation * (kernel_size - 1) // 2
        super().__init__(
            in_ch, out_ch, kernel_size, stride=stride, padding=padding, dilation=dilation, bias=False
        )
        self.norm = FrozenBatchNorm2d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(super().forward(x))


class Bottleneck(nn.Module):
    def __init__(self, in_ch: int, width: int, out_ch: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        if in_ch != out_ch or stride != 1:
            self.shortcut = ConvNorm(in_ch, out_ch, 1, stride=stride)
        else:
            self.shortcut = None
        self.conv1 = ConvNorm(in_ch, width, 1, stride=stride)
        self.conv2 = ConvNorm(width, width, 3, dilation=dilation)
        self.conv3 = ConvNorm(width, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu_(self.conv1(x))
        out = F.relu_(self.conv2(out))
        out = self.conv3(out)
        identity = x if self.shortcut is None else self.shortcut(x)
        return F.relu_(out + identity)


def make_stage(blocks: int, in_ch: int, width: int, first_stride: int, dilation: int = 1) -> nn.Sequential:
    out_ch = width * 4
    layers = []
    for i in range(blocks):
        layers.append(
            Bottleneck(
                in_ch if i == 0 else out_ch,
                width,
                out_ch,
                stride=first_stride if i == 0 else 1,
                dilation=dilation,
            )
        )
    return nn.Sequential(*layers)


class Stem(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = ConvNorm(3, 64, 7, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu_(self.conv1(x))
        # Caffe pooling: no padding, ceil mode. detectron2's default (pad 1, floor) shifts every
        # later feature by a pixel at some sizes.
        return F.max_pool2d(x, kernel_size=3, stride=2, padding=0, ceil_mode=True)


class ResNetC4(nn.Module):
    """Stem + res2..res4 (stride 16, 1024 channels). res5 is the RoI head's, as in every C4 detector."""

    out_channels = 1024
    stride = 16

    def __init__(self) -> None:
        super().__init__()
        self.stem = Stem()
        in_ch = 64
        for name, first_stride in (("res2", 1), ("res3", 2), ("res4", 2)):
            blocks, width = RESNET101_STAGES[name]
            self.add_module(name, make_stage(blocks, in_ch, width, first_stride))
            in_ch = width * 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.res2(x)
        x = self.res3(x)
        return self.res4(x)


def make_res5_head() -> nn.Sequential:
    """res5 as the bottom-up-attention model has it: stride 1 and dilation 2 in every 3x3, so a 14x14
    pooled region stays 14x14 (detectron2's RES5HALVE False / Caffe res5a stride 1)."""
    blocks, width = RESNET101_STAGES["res5"]
    return make_stage(blocks, 1024, width, first_stride=1, dilation=2)


@torch.no_grad()
def fold_frozen_batchnorm(module: nn.Module) -> nn.Module:
    """Fold every ConvNorm's frozen batch norm into its conv (in float32), in place. For inference
    copies only: it renames parameters (conv gains a bias, `norm` disappears). It saves a pass over
    every activation, and keeps half-precision models from computing (running_var + eps) ** -0.5 in
    half precision, where large Caffe variances overflow."""
    for m in module.modules():
        if isinstance(m, ConvNorm) and isinstance(m.norm, FrozenBatchNorm2d):
            norm = m.norm
            scale = norm.weight.float() * (norm.running_var.float() + norm.eps).rsqrt()
            shift = norm.bias.float() - norm.running_mean.float() * scale
            m.weight.copy_((m.weight.float() * scale.reshape(-1, 1, 1, 1)).to(m.weight.dtype))
            m.bias = nn.Parameter(shift.to(m.weight.dtype), requires_grad=False)
            m.norm = nn.Identity()
    return module
