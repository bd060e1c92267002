"""Image -> network input, as the reference extractors prepare it.

The weights come from Caffe, so the network sees BGR pixels minus the Caffe means (no std division);
`channel_order="rgb"` feeds RGB pixels instead (minus the same means, channel by channel), as the Hugging
Face LXMERT demo does on its local-file path. Three resize modes, each named for what it reproduces:

- ``caffe`` (Caffe `_get_image_blob`, MILVLG `get_image_blob`): one scale s = min_size / shorter side,
  reduced to max_size / longer side if round(s * longer) > max_size; the mean-subtracted float image is
  resized by `cv2.resize(fx=s, fy=s, INTER_LINEAR)` (so both axes get s, each size rounded by OpenCV);
  boxes map back by dividing by s.
- ``detectron2`` (airsplay / detectron2 `ResizeShortestEdge`): target sizes per axis rounded with
  int(x + 0.5), PIL bilinear on the uint8 image, means subtracted after; boxes map back per axis.
- ``hf`` (Hugging Face `processing_image.py`, which converts to float before `ResizeShortestEdge` and so
  always takes its torch branch): the same int(x + 0.5) sizes, `F.interpolate(bilinear,
  align_corners=False)` without antialiasing on the float image; boxes map back per axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .config import CHANNEL_ORDERS, RESIZE_ALIASES, RESIZE_MODES

PIXEL_MEANS_BGR = (102.9801, 115.9465, 122.7717)


@dataclass(frozen=True)
class PreparedImage:
    pixels: np.ndarray | None  # [3, h, w] float32, BGR minus means; None until made on the device
    scale_y: float  # network pixels per original pixel
    scale_x: float
    image_h: int
    image_w: int
    net_h: int
    net_w: int

    @property
    def size(self) -> tuple[int, int]:
        return self.net_h, self.net_w

    @property
    def scale(self) -> float:
        """The single scale the Caffe reference uses for min-size filtering."""
        return min(self.scale_y, self.scale_x)


def caffe_scale(height: int, width: int, min_size: int, max_size: int) -> float:
    short, long = min(height, width), max(height, width)
    scale = min_size / short
    if np.round(scale * long) > max_size:
        scale = max_size / long
    return float(scale)


def d2_resized_size(height: int, width: int, min_size: int, max_size: int) -> tuple[int, int]:
    scale = min_size / min(height, width)
    new_h, new_w = (min_size, scale * width) if height < width else (scale * height, min_size)
    if max(new_h, new_w) > max_size:
        shrink = max_size / max(new_h, new_w)
        new_h, new_w = new_h * shrink, new_w * shrink
    return int(new_h + 0.5), int(new_w + 0.5)


def check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = f"{type(image).__name__} {getattr(image, 'dtype', '')} {getattr(image, 'shape', '')}"
        raise ValueError(f"expected an RGB uint8 array [H, W, 3] (use vlprep.extractors.decode), got {got}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"empty image of shape {image.shape}")


def _ordered(image: np.ndarray, channel_order: str) -> np.ndarray:
    if channel_order not in CHANNEL_ORDERS:
        raise ValueError(f"unknown channel_order {channel_order!r} (expected one of {CHANNEL_ORDERS})")
    return image[:, :, ::-1] if channel_order == "bgr" else image


def prepare(
    image: np.ndarray,
    min_size: int = 600,
    max_size: int = 1000,
    resize: str = "caffe",
    channel_order: str = "bgr",
) -> PreparedImage:
    """RGB uint8 [H, W, 3] -> network input and the scale back to original pixels."""
    check_image(image)
    height, width = image.shape[:2]
    means = np.asarray(PIXEL_MEANS_BGR, dtype=np.float32)
    resize = RESIZE_ALIASES.get(resize, resize)
    if resize == "caffe":
        scale = caffe_scale(height, width, min_size, max_size)
        shifted = _ordered(image, channel_order).astype(np.float32) - means
        resized = cv2.resize(shifted, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        scale_y = scale_x = scale
    elif resize == "detectron2":
        new_h, new_w = d2_resized_size(height, width, min_size, max_size)
        pil = Image.fromarray(np.ascontiguousarray(image)).resize((new_w, new_h), Image.Resampling.BILINEAR)
        resized = _ordered(np.asarray(pil), channel_order).astype(np.float32) - means
        scale_y, scale_x = new_h / height, new_w / width
    elif resize == "hf":
        new_h, new_w = d2_resized_size(height, width, min_size, max_size)
        x = torch.from_numpy(np.ascontiguousarray(_ordered(image, channel_order))).float()
        x = F.interpolate(x.permute(2, 0, 1)[None], size=(new_h, new_w), mode="bilinear", align_corners=False)
        resized = x[0].permute(1, 2, 0).numpy() - means
        scale_y, scale_x = new_h / height, new_w / width
    else:
        raise ValueError(f"unknown resize {resize!r} (expected one of {RESIZE_MODES})")
    pixels = np.ascontiguousarray(resized.transpose(2, 0, 1), dtype=np.float32)
    return PreparedImage(pixels, scale_y, scale_x, height, width, pixels.shape[1], pixels.shape[2])


def cv2_output_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """The size `cv2.resize(fx=scale, fy=scale)` produces (cvRound: half to even, as Python's round)."""
    return max(1, round(height * scale)), max(1, round(width * scale))


def plan_cv2(image: np.ndarray, min_size: int = 600, max_size: int = 1000) -> PreparedImage:
    """The caffe path's scale and size without computing pixels (they are made on the device)."""
    check_image(image)
    height, width = image.shape[:2]
    scale = caffe_scale(height, width, min_size, max_size)
    net_h, net_w = cv2_output_size(height, width, scale)
    return PreparedImage(None, scale, scale, height, width, net_h, net_w)


def _cv2_linear_taps(out_size: int, in_size: int, scale: float, device: torch.device):
    """Source indices and weights of OpenCV's INTER_LINEAR along one axis, computed as OpenCV does:
    f = float((d + 0.5) / scale - 0.5) in double then float, border taps clamped with weight 0."""
    d = torch.arange(out_size, dtype=torch.float64, device=device)
    f = ((d + 0.5) * (1.0 / scale) - 0.5).float()
    s = torch.floor(f)
    f = f - s
    s = s.long()
    below, above = s < 0, s >= in_size - 1
    f = torch.where(below | above, torch.zeros_like(f), f)
    s = torch.where(below, torch.zeros_like(s), torch.where(above, torch.full_like(s, in_size - 1), s))
    return s, (s + 1).clamp(max=in_size - 1), f


def cv2_linear_resize(x: torch.Tensor, scale: float, out_h: int, out_w: int) -> torch.Tensor:
    """`cv2.resize(x, None, fx=scale, fy=scale, interpolation=INTER_LINEAR)` for a float32 [C, H, W]
    tensor, on its device. Equal to OpenCV up to float32 rounding (tested against it)."""
    _, h, w = x.shape
    x0, x1, fx = _cv2_linear_taps(out_w, w, scale, x.device)
    y0, y1, fy = _cv2_linear_taps(out_h, h, scale, x.device)
    rows = x[:, :, x0] * (1 - fx) + x[:, :, x1] * fx
    return rows[:, y0, :] * (1 - fy)[:, None] + rows[:, y1, :] * fy[:, None]


def pixels_on_device(
    image: np.ndarray, plan: PreparedImage, device: torch.device, channel_order: str = "bgr"
) -> torch.Tensor:
    """The caffe path's network input [3, h, w] float32, made on `device` from the uint8 image (a quarter
    of the bytes to transfer, and no CPU time per pixel)."""
    rgb = torch.from_numpy(np.ascontiguousarray(image)).to(device, non_blocking=True)
    means = torch.tensor(PIXEL_MEANS_BGR, dtype=torch.float32, device=device)
    chw = rgb.permute(2, 0, 1)
    bgr = (chw.flip(0) if channel_order == "bgr" else chw).float() - means[:, None, None]
    if (plan.net_h, plan.net_w) == (plan.image_h, plan.image_w) and plan.scale_x == 1.0:
        return bgr
    return cv2_linear_resize(bgr, plan.scale_x, plan.net_h, plan.net_w)
