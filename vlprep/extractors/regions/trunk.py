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

    # Set on folded CUDA inference copies only (`use_fused_convs`).
    fused = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused:
            return self._forward_fused(x)
        out = F.relu_(self.conv1(x))
        out = F.relu_(self.conv2(out))
        out = self.conv3(out)
        identity = x if self.shortcut is None else self.shortcut(x)
        return F.relu_(out + identity)

    def _forward_fused(self, x: torch.Tensor) -> torch.Tensor:
        """cuDNN's fused conv + bias (+ residual) + ReLU: one pass over each activation instead of three
        memory-bound elementwise kernels after every conv. Needs folded batch norms."""
        out = _conv_relu(self.conv1, x)
        out = _conv_relu(self.conv2, out)
        identity = x if self.shortcut is None else self.shortcut(x)
        c = self.conv3
        return torch.cudnn_convolution_add_relu(
            out, c.weight, identity, 1.0, c.bias, c.stride, c.padding, c.dilation, c.groups
        )


def _conv_relu(conv: ConvNorm, x: torch.Tensor) -> torch.Tensor:
    return torch.cudnn_convolution_relu(
        x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups
    )


def use_fused_convs(module: nn.Module) -> bool:
    """Switch the bottlenecks of a batch-norm-folded CUDA model to cuDNN's fused conv + bias + ReLU,
    after checking on one block that the fused path runs and agrees with the plain one; returns
    whether it is on (off, with nothing changed, if cuDNN refuses it)."""
    blocks = [m for m in module.modules() if isinstance(m, Bottleneck)]
    if not blocks or any(not isinstance(b.conv1.norm, nn.Identity) for b in blocks):
        raise ValueError("fused convolutions need folded batch norms (fold_bn=True)")
    probe = blocks[0]
    param = probe.conv1.weight
    x = torch.randn(2, probe.conv1.in_channels, 9, 11, device=param.device).to(param.dtype)
    x = x.contiguous(memory_format=torch.channels_last)
    try:
        with torch.no_grad():
            plain = probe(x.clone())
            probe.fused = True
            fused = probe(x.clone())
        tol = 1e-2 if param.dtype == torch.float32 else 5e-2  # a sanity probe: TF32 may be on here
        ok = bool(torch.allclose(fused.float(), plain.float(), rtol=tol, atol=tol * plain.abs().max().item()))
    except (RuntimeError, NotImplementedError):
        ok = False
    for b in blocks:
        b.fused = ok
    return ok


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
