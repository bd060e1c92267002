"""Region proposal network on res4: the head (detectron2 names) and the two proposal orderings.

`order="caffe"` is py-faster-rcnn's proposal layer (and MILVLG's): decode every anchor, clip, drop
boxes with a side below min_size x image scale, sort, keep pre_nms, NMS, keep post_nms.
`order="d2"` is detectron2's (airsplay, Hugging Face): keep the pre_nms best anchors first, then decode,
clip, drop empty boxes (min_size 0 there), NMS, keep post_nms. They keep different proposals near the
image border and at small scales; each reproduces the reference it is named for.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import box_coder
from .anchors import NUM_CELL_ANCHORS, AnchorGenerator


@dataclass(frozen=True)
class ProposalParams:
    pre_nms: int = 6000
    post_nms: int = 300
    nms_threshold: float = 0.7
    min_size: float = 16.0
    order: str = "caffe"
    plus_one: bool = True

    def __post_init__(self) -> None:
        if self.order not in ("caffe", "d2"):
            raise ValueError(f"unknown RPN order {self.order!r} (expected 'caffe' or 'd2')")
        if self.pre_nms < 1 or self.post_nms < 1:
            raise ValueError("pre_nms and post_nms must be >= 1")


class RPNHead(nn.Module):
    """3x3 conv 1024->512 + ReLU, then one sigmoid logit and 4 deltas per anchor."""

    def __init__(self, in_channels: int = 1024, hidden: int = 512, num_anchors: int = NUM_CELL_ANCHORS):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, hidden, 3, padding=1)
        self.objectness_logits = nn.Conv2d(hidden, num_anchors, 1)
        self.anchor_deltas = nn.Conv2d(hidden, num_anchors * 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns logits [B, H*W*A] and deltas [B, H*W*A, 4], anchor index fastest."""
        t = F.relu(self.conv(x))
        logits = self.objectness_logits(t)
        deltas = self.anchor_deltas(t)
        b, a, h, w = logits.shape
        logits = logits.permute(0, 2, 3, 1).reshape(b, -1)
        # Channel 4a + k is delta k of anchor a (Caffe and detectron2 agree).
        deltas = deltas.view(b, a, 4, h, w).permute(0, 3, 4, 1, 2).reshape(b, -1, 4)
        return logits, deltas


class ProposalGenerator(nn.Module):
    def __init__(self, anchor_convention: str = "d2") -> None:
        super().__init__()
        self.anchor_generator = AnchorGenerator(anchor_convention)
        self.rpn_head = RPNHead()

    def forward(
        self,
        features: torch.Tensor,
        image_size: tuple[int, int],
        scales: list[float],
        params: ProposalParams,
        batched: bool = False,
    ) -> list[torch.Tensor]:
        """Proposals [R, 4] (float32, network-input pixels) for each image of a same-size batch.
        `scales` (network pixels per original pixel, one per image) set the Caffe minimum box size.
        `batched` selects for all images at once (`select_batched`; for GPUs, where per-image steps
        wait on the device)."""
        logits, deltas = self.rpn_head(features)
        anchors = self.anchor_generator(features.shape[2], features.shape[3])
        if batched:
            return select_batched(logits.float(), deltas.float(), anchors, image_size, scales, params)
        select = select_caffe if params.order == "caffe" else select_d2
        return [
            select(logits[i].float(), deltas[i].float(), anchors, image_size, scales[i], params)
            for i in range(features.shape[0])
        ]


def select_caffe(
    logits: torch.Tensor,
    deltas: torch.Tensor,
    anchors: torch.Tensor,
    image_size: tuple[int, int],
    scale: float,
    params: ProposalParams,
) -> torch.Tensor:
    h, w = image_size
    boxes = box_coder.decode(deltas, anchors, box_coder.RPN_WEIGHTS, plus_one=params.plus_one)
    boxes = box_coder.clip(boxes, h, w, plus_one=params.plus_one)
    ws, hs = box_coder.sides(boxes, plus_one=params.plus_one)
    min_side = params.min_size * scale
    keep = (ws >= min_side) & (hs >= min_side) & (ws > 0) & (hs > 0)
    boxes, logits = boxes[keep], logits[keep]
    k = min(params.pre_nms, logits.numel())
    logits, order = logits.topk(k, sorted=True)
    boxes = boxes[order]
    keep = box_coder.nms(boxes, logits, params.nms_threshold, plus_one=params.plus_one)
    return boxes[keep[: params.post_nms]]


def select_d2(
    logits: torch.Tensor,
    deltas: torch.Tensor,
    anchors: torch.Tensor,
    image_size: tuple[int, int],
    scale: float,
    params: ProposalParams,
) -> torch.Tensor:
    h, w = image_size
    k = min(params.pre_nms, logits.numel())
    logits, order = logits.topk(k, sorted=True)
    boxes = box_coder.decode(deltas[order], anchors[order], box_coder.RPN_WEIGHTS, plus_one=params.plus_one)
    boxes = box_coder.clip(boxes, h, w, plus_one=params.plus_one)
    ws, hs = box_coder.sides(boxes, plus_one=params.plus_one)
    min_side = params.min_size * scale
    keep = (ws > min_side) & (hs > min_side)
    boxes, logits = boxes[keep], logits[keep]
    keep = box_coder.nms(boxes, logits, params.nms_threshold, plus_one=params.plus_one)
    return boxes[keep[: params.post_nms]]


def select_batched(
    logits: torch.Tensor,
    deltas: torch.Tensor,
    anchors: torch.Tensor,
    image_size: tuple[int, int],
    scales: list[float],
    params: ProposalParams,
) -> list[torch.Tensor]:
    """`select_caffe` / `select_d2` for a batch (logits [B, N], deltas [B, N, 4]) with two host syncs in
    all: dropped boxes are masked instead of removed, and NMS is `box_coder.nms_mask_batched`. The
    same proposals as the per-image functions, except that the order of exactly tied scores is the
    top-k kernel's."""
    batch, n = logits.shape
    h, w = image_size
    k = min(params.pre_nms, n)
    min_side = params.min_size * torch.tensor(scales, dtype=torch.float32, device=logits.device)[:, None]

    def decode_clip(d: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        m = d.shape[1]
        boxes = box_coder.decode(
            d.reshape(-1, 4), a.reshape(-1, 4), box_coder.RPN_WEIGHTS, plus_one=params.plus_one
        )
        return box_coder.clip(boxes, h, w, plus_one=params.plus_one).view(batch, m, 4)

    def sides(boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ws, hs = box_coder.sides(boxes.reshape(-1, 4), plus_one=params.plus_one)
        return ws.view(batch, -1), hs.view(batch, -1)

    if params.order == "caffe":
        boxes = decode_clip(deltas, anchors.expand(batch, n, 4))
        ws, hs = sides(boxes)
        keep = (ws >= min_side) & (hs >= min_side) & (ws > 0) & (hs > 0)
        scores, order = torch.where(keep, logits, float("-inf")).topk(k, dim=1, sorted=True)
        boxes = boxes.gather(1, order.unsqueeze(2).expand(batch, k, 4))
        valid = keep.gather(1, order)
    else:
        scores, order = logits.topk(k, dim=1, sorted=True)
        boxes = decode_clip(
            deltas.gather(1, order.unsqueeze(2).expand(batch, k, 4)), anchors[order].view(batch, k, 4)
        )
        ws, hs = sides(boxes)
        valid = (ws > min_side) & (hs > min_side)
    # Greedy NMS of a box depends only on the boxes before it, and only the first post_nms kept boxes
    # are used: NMS over a prefix is exact as soon as every image keeps post_nms boxes in it.
    m = min(k, max(1024, 4 * params.post_nms))
    while True:
        kept = box_coder.nms_mask_batched(
            boxes[:, :m], valid[:, :m], params.nms_threshold, plus_one=params.plus_one
        )
        if m == k or bool((kept.sum(dim=1) >= params.post_nms).all()):
            break
        m = min(k, 4 * m)
    boxes = boxes[:, :m]
    kept &= kept.cumsum(dim=1) <= params.post_nms
    counts = kept.sum(dim=1).tolist()
    return list(boxes[kept].split(counts))
