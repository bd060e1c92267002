"""S3D-G of the MIL-NCE HowTo100M release (Miech et al.), as used for UniVL's 1024-d features.

Parameter names follow `s3d_howto100m.pth`. Differences from S3D that change results: the input is
packed 2x2x2 space-to-depth into 24 channels, the first conv's output is cropped by one step on T, H
and W (emulating TensorFlow's SAME padding), max-pools pad zeros at the end of each axis, and every
Inception branch is self-gated. BatchNorm uses PyTorch's default eps (1e-5).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FEATURE_DIM = 1024
EMBEDDING_DIM = 512

# (in, b0, b1a, b1b, b2a, b2b, b3b), the S3D channel table
INCEPTION = {
    "mixed_3b": (192, 64, 96, 128, 16, 32, 32),
    "mixed_3c": (256, 128, 128, 192, 32, 96, 64),
    "mixed_4b": (480, 192, 96, 208, 16, 48, 64),
    "mixed_4c": (512, 160, 112, 224, 24, 64, 64),
    "mixed_4d": (512, 128, 128, 256, 24, 64, 64),
    "mixed_4e": (512, 112, 144, 288, 32, 64, 64),
    "mixed_4f": (528, 256, 160, 320, 32, 128, 128),
    "mixed_5b": (832, 256, 160, 320, 32, 128, 128),
    "mixed_5c": (832, 384, 192, 384, 48, 128, 128),
}


class STConv3d(nn.Module):
    """Conv + BN + ReLU; `separable` splits a k x k x k conv into (1, k, k) then (k, 1, 1)."""

    def __init__(self, cin: int, cout: int, kernel, stride=1, padding=0, separable: bool = False) -> None:
        super().__init__()
        kernel, stride, padding = (_triple(v) for v in (kernel, stride, padding))
        self.separable = separable and kernel[0] > 1
        if self.separable:
            self.conv1 = nn.Conv3d(
                cin, cout, (1, *kernel[1:]), (1, *stride[1:]), (0, *padding[1:]), bias=False
            )
            self.bn1 = nn.BatchNorm3d(cout)
            self.conv2 = nn.Conv3d(
                cout, cout, (kernel[0], 1, 1), (stride[0], 1, 1), (padding[0], 0, 0), bias=False
            )
            self.bn2 = nn.BatchNorm3d(cout)
        else:
            self.conv1 = nn.Conv3d(cin, cout, kernel, stride, padding, bias=False)
            self.bn1 = nn.BatchNorm3d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        if self.separable:
            x = F.relu(self.bn2(self.conv2(x)))
        return x


class SelfGating(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.sigmoid(self.fc(x.mean(dim=(2, 3, 4))))
        return x * weights[:, :, None, None, None]


class MaxPool3dSame(nn.Module):
    """Max-pool with TensorFlow SAME padding as the release computes it: a static zero pad of
    max(k - s, 0) per axis, the larger half at the end, then ceil-mode pooling."""

    def __init__(self, kernel, stride) -> None:
        super().__init__()
        self.kernel, self.stride = _triple(kernel), _triple(stride)
        pads = [max(k - s, 0) for k, s in zip(self.kernel, self.stride, strict=True)]
        # F.pad takes (W_begin, W_end, H_begin, H_end, T_begin, T_end)
        self.pad = tuple(v for p in reversed(pads) for v in (p // 2, p - p // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pad):
            x = F.pad(x, self.pad)
        return F.max_pool3d(x, self.kernel, self.stride, ceil_mode=True)


class InceptionBlock(nn.Module):
    def __init__(self, cin: int, b0: int, b1a: int, b1b: int, b2a: int, b2b: int, b3b: int) -> None:
        super().__init__()
        self.conv_b0 = STConv3d(cin, b0, 1)
        self.conv_b1_a = STConv3d(cin, b1a, 1)
        self.conv_b1_b = STConv3d(b1a, b1b, 3, padding=1, separable=True)
        self.conv_b2_a = STConv3d(cin, b2a, 1)
        self.conv_b2_b = STConv3d(b2a, b2b, 3, padding=1, separable=True)
        self.maxpool_b3 = nn.MaxPool3d(3, stride=1, padding=1)
        self.conv_b3_b = STConv3d(cin, b3b, 1)
        self.gating_b0 = SelfGating(b0)
        self.gating_b1 = SelfGating(b1b)
        self.gating_b2 = SelfGating(b2b)
        self.gating_b3 = SelfGating(b3b)
        self.out_channels = b0 + b1b + b2b + b3b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b0 = self.gating_b0(self.conv_b0(x))
        b1 = self.gating_b1(self.conv_b1_b(self.conv_b1_a(x)))
        b2 = self.gating_b2(self.conv_b2_b(self.conv_b2_a(x)))
        b3 = self.gating_b3(self.conv_b3_b(self.maxpool_b3(x)))
        return torch.cat([b0, b1, b2, b3], dim=1)


def space_to_depth(x: torch.Tensor) -> torch.Tensor:
    """[B, C, T, H, W] -> [B, 8C, T/2, H/2, W/2], channel ((dt*2 + dh)*2 + dw)*C + c. T, H, W must be even."""
    b, c, t, h, w = x.shape
    if t % 2 or h % 2 or w % 2:
        raise ValueError(f"S3D-G needs even T, H and W, got {t}x{h}x{w}")
    x = x.view(b, c, t // 2, 2, h // 2, 2, w // 2, 2)
    x = x.permute(0, 3, 5, 7, 1, 2, 4, 6)
    return x.reshape(b, 8 * c, t // 2, h // 2, w // 2)


class S3DG(nn.Module):
    def __init__(self, embedding_dim: int = EMBEDDING_DIM) -> None:
        super().__init__()
        self.conv1 = STConv3d(24, 64, (2, 4, 4), stride=1, padding=(1, 2, 2))
        self.maxpool_2a = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.conv_2b = STConv3d(64, 64, 1)
        self.conv_2c = STConv3d(64, 192, 3, padding=1, separable=True)
        self.gating = SelfGating(192)
        self.maxpool_3a = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.maxpool_4a = MaxPool3dSame((3, 3, 3), (2, 2, 2))
        self.maxpool_5a = MaxPool3dSame((2, 2, 2), (2, 2, 2))
        for name, channels in INCEPTION.items():
            setattr(self, name, InceptionBlock(*channels))
        self.fc = nn.Linear(FEATURE_DIM, embedding_dim)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """[N, 3, T, H, W] RGB in [0, 1] -> [N, 1024] (`mixed_5c`, averaged over T, H, W)."""
        x = self.conv1(space_to_depth(x))[:, :, 1:, 1:, 1:]
        x = self.maxpool_2a(x)
        x = self.gating(self.conv_2c(self.conv_2b(x)))
        x = self.maxpool_3a(x)
        x = self.mixed_3c(self.mixed_3b(x))
        x = self.maxpool_4a(x)
        for name in ("mixed_4b", "mixed_4c", "mixed_4d", "mixed_4e", "mixed_4f"):
            x = getattr(self, name)(x)
        x = self.maxpool_5a(x)
        x = self.mixed_5c(self.mixed_5b(x))
        return x.mean(dim=(2, 3, 4))

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        """[N, 1024] mixed_5c -> [N, 512] video embedding in the joint video-text space."""
        return self.fc(features)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.forward_features(x)
        return {"video_embedding": self.embed(features), "mixed_5c": features}


def _triple(v) -> tuple[int, int, int]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v, v)
