"""Frame preprocessing as pure tensor functions: resize, crop (uint8, on the decode side) and
normalisation (float, on the model's device)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from vlprep.extractors.video.recipes import StreamRecipe


def scaled_size(height: int, width: int, shorter: int) -> tuple[int, int]:
    """(h, w) with the shorter side `shorter` and the longer side scaled and truncated, as the
    HowTo100M extractor computed its ffmpeg scale."""
    if height <= width:
        return shorter, max(shorter, int(width * shorter / height))
    return max(shorter, int(height * shorter / width)), shorter


def resize_crop(frames: np.ndarray | torch.Tensor, size: int, crop: int | None) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> uint8 [N, h, w, 3]: shorter side to `size` (bilinear, antialiased), then a
    centre `crop` x `crop` (offsets truncated) when given. Output is uint8 like the rgb24 frames ffmpeg
    hands the reference extractors after scaling."""
    x = torch.as_tensor(frames)
    if x.ndim != 4 or x.shape[-1] != 3 or x.dtype != torch.uint8:
        raise ValueError(f"expected uint8 [N, H, W, 3] frames, got {x.dtype} {tuple(x.shape)}")
    n, h, w, _ = x.shape
    th, tw = scaled_size(h, w, size)
    if (th, tw) != (h, w) and n > 0:
        x = x.permute(0, 3, 1, 2)  # a channels-last view: the fast uint8 path of interpolate
        x = F.interpolate(x, size=(th, tw), mode="bilinear", antialias=True, align_corners=False)
        x = x.permute(0, 2, 3, 1)
    if crop is not None:
        if crop > min(th, tw):
            raise ValueError(f"crop {crop} is larger than the resized frame {tw}x{th}")
        y0, x0 = int((th - crop) / 2), int((tw - crop) / 2)
        x = x[:, y0 : y0 + crop, x0 : x0 + crop]
    return x.contiguous()


def normalise(clips: torch.Tensor, recipe: StreamRecipe, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 [B, L, h, w, 3] -> float [B, 3, L, h, w] (3D models) or [B, 3, h, w] when L == 1 and the
    recipe is per-frame; (x * scale - mean) / std per RGB channel."""
    x = clips.to(dtype) * recipe.scale
    mean = torch.tensor(recipe.mean, dtype=dtype, device=x.device)
    std = torch.tensor(recipe.std, dtype=dtype, device=x.device)
    x = (x - mean) / std
    x = x.permute(0, 4, 1, 2, 3)
    if recipe.is_2d:
        x = x[:, :, 0]
    return x.contiguous()
