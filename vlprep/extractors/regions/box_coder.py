"""Box arithmetic in the two conventions the published checkpoints use.

`plus_one=True` is Caffe's (and MILVLG's): a box (x1, x2) is x2 - x1 + 1 pixels wide, boxes are clipped
to [0, W-1], and NMS areas count the +1. `plus_one=False` is detectron2's (airsplay, Hugging Face):
widths are x2 - x1 and boxes are clipped to [0, W]. Pure tensor functions, no model state.
"""

from __future__ import annotations

import math

import torch
from torchvision.ops import nms as _tv_nms

# detectron2 and MILVLG clamp dw/dh so exp() cannot overflow on a wild prediction; Caffe does not, which
# only matters for boxes larger than ~60x their anchor.
SCALE_CLAMP = math.log(1000.0 / 16)

RPN_WEIGHTS = (1.0, 1.0, 1.0, 1.0)
ROI_WEIGHTS = (10.0, 10.0, 5.0, 5.0)


def decode(
    deltas: torch.Tensor,
    boxes: torch.Tensor,
    weights=ROI_WEIGHTS,
    plus_one: bool = False,
    scale_clamp: float = SCALE_CLAMP,
) -> torch.Tensor:
    """Apply (dx, dy, dw, dh) deltas [N, 4] to boxes [N, 4]; returns [N, 4] in the input's dtype."""
    deltas = deltas.float()
    boxes = boxes.float()
    offset = 1.0 if plus_one else 0.0
    widths = boxes[:, 2] - boxes[:, 0] + offset
    heights = boxes[:, 3] - boxes[:, 1] + offset
    ctr_x = boxes[:, 0] + 0.5 * widths
    ctr_y = boxes[:, 1] + 0.5 * heights
    wx, wy, ww, wh = weights
    dx = deltas[:, 0] / wx
    dy = deltas[:, 1] / wy
    dw = (deltas[:, 2] / ww).clamp(max=scale_clamp)
    dh = (deltas[:, 3] / wh).clamp(max=scale_clamp)
    pred_ctr_x = dx * widths + ctr_x
    pred_ctr_y = dy * heights + ctr_y
    pred_w = torch.exp(dw) * widths
    pred_h = torch.exp(dh) * heights
    # No -1 on x2 even in the Caffe convention: py-faster-rcnn's bbox_transform_inv does the same.
    return torch.stack(
        [
            pred_ctr_x - 0.5 * pred_w,
            pred_ctr_y - 0.5 * pred_h,
            pred_ctr_x + 0.5 * pred_w,
            pred_ctr_y + 0.5 * pred_h,
        ],
        dim=1,
    )


def clip(boxes: torch.Tensor, height: float, width: float, plus_one: bool = False) -> torch.Tensor:
    offset = 1.0 if plus_one else 0.0
    x = boxes[:, 0::2].clamp(0, width - offset)
    y = boxes[:, 1::2].clamp(0, height - offset)
    return torch.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], dim=1)


def sides(boxes: torch.Tensor, plus_one: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    offset = 1.0 if plus_one else 0.0
    return boxes[:, 2] - boxes[:, 0] + offset, boxes[:, 3] - boxes[:, 1] + offset


def pairwise_iou(a: torch.Tensor, b: torch.Tensor, plus_one: bool = False) -> torch.Tensor:
    """IoU matrix [..., len(a), len(b)] of boxes [..., N, 4] and [..., M, 4] (leading dims broadcast)."""
    offset = 1.0 if plus_one else 0.0
    area_a = (a[..., 2] - a[..., 0] + offset) * (a[..., 3] - a[..., 1] + offset)
    area_b = (b[..., 2] - b[..., 0] + offset) * (b[..., 3] - b[..., 1] + offset)
    lt = torch.maximum(a[..., :, None, :2], b[..., None, :, :2])
    rb = torch.minimum(a[..., :, None, 2:], b[..., None, :, 2:])
    wh = (rb - lt + offset).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area_a[..., :, None] + area_b[..., None, :] - inter)


def nms(boxes: torch.Tensor, scores: torch.Tensor, threshold: float, plus_one: bool = False) -> torch.Tensor:
    """Greedy NMS, indices of kept boxes by decreasing score. The +1 convention is exactly torchvision's
    NMS on boxes whose x2, y2 are moved out by one pixel (areas and intersections both gain the +1)."""
    boxes = boxes.float()
    if plus_one:
        boxes = boxes + boxes.new_tensor([0.0, 0.0, 1.0, 1.0])
    return _tv_nms(boxes, scores.float(), threshold)


def nms_mask_batched(
    boxes: torch.Tensor,
    valid: torch.Tensor,
    threshold: float,
    plus_one: bool = False,
    check_every: int = 8,
    max_iterations: int = 256,
) -> torch.Tensor:
    """Greedy NMS for a batch of score-sorted box lists at once: boxes [B, K, 4] (each row sorted by
    decreasing score), valid [B, K]; returns kept [B, K] (bool), exactly `nms`'s kept set.

    Greedy NMS keeps box i iff it is valid and no kept box before it overlaps it by more than the
    threshold. That rule has exactly one solution, so it is found as a fixed point (as Cluster-NMS
    does): start from all valid boxes and recompute "not suppressed by a kept earlier box" with one
    batched matrix product per step until nothing changes; chains of suppression are short in
    practice. Converged means exact; rows that have not converged after `max_iterations` fall back to
    `nms`. A few large kernels and one host sync every `check_every` steps, instead of one sync and
    mask copy per image."""
    batch, k = valid.shape
    if k == 0:
        return valid.clone()
    dtype = torch.bfloat16 if boxes.device.type == "cuda" else torch.float32
    # later[b, i, j]: i comes before j and overlaps it. 0/1 in bf16, sums accumulate in float32.
    later = torch.empty(batch, k, k, dtype=dtype, device=boxes.device)
    upper = torch.ones(k, k, dtype=torch.bool, device=boxes.device).triu_(1)
    shifted = boxes.float() + boxes.new_tensor([0.0, 0.0, 1.0, 1.0] if plus_one else [0.0, 0.0, 0.0, 0.0])
    group = max(1, (1 << 25) // (k * k))  # images per IoU computation: bounds the temporaries
    for b in range(0, batch, group):
        part, ok = shifted[b : b + group], valid[b : b + group]
        iou = pairwise_iou(part, part, plus_one=False)
        later[b : b + group] = (iou > threshold) & upper & ok[:, :, None] & ok[:, None, :]
        del iou
    kept = valid.clone()
    done = 0
    while done < max_iterations:
        for _ in range(check_every):
            previous = kept
            suppressed = torch.bmm(kept.to(dtype).unsqueeze(1), later).squeeze(1) > 0
            kept = valid & ~suppressed
        done += check_every
        if torch.equal(kept, previous):
            return kept
    stuck = (kept != previous).any(dim=1).nonzero().flatten().tolist()
    for b in stuck:
        index = valid[b].nonzero().flatten()
        row = torch.zeros(k, dtype=torch.bool, device=boxes.device)
        row[index[nms(boxes[b, index], -index.float(), threshold, plus_one)]] = True
        kept[b] = row
    return kept
