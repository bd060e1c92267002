"""Box-selection policies: pure functions from per-region scores and boxes to the kept regions.

- ``caffe``: the reference extractor's (peteanderson80 `generate_tsv.py`, MILVLG `save_roi_features`):
  per-class NMS (0.3) over the *proposal* boxes, each region keeps the best score among the classes
  where it survived ("max_conf"), keep max_conf >= 0.2, then clamp the count to [min, max] by max_conf.
- ``maxnms``: airsplay's detectron2 port / the LXMERT demo: each region's best-class *regressed* box,
  one class-agnostic NMS whose threshold rises 0.3, 0.4, ... 0.9 until at least `min` regions remain,
  then the first `max`.
- ``given``: no selection (features for supplied boxes).
"""

from __future__ import annotations

import numpy as np
import torch

from . import box_coder

POLICIES = ("caffe", "maxnms", "given")
CAFFE_NMS = 0.3
CAFFE_SCORE = 0.2
# np.arange(0.3, 1.0, 0.1) exactly as airsplay iterates it (0.30000000000000004, ...).
MAXNMS_THRESHOLDS = tuple(float(t) for t in np.arange(0.3, 1.0, 0.1))


def parse_boxes(spec) -> tuple[int, int]:
    """`36` / `"36"` -> (36, 36); `"10-100"` / `(10, 100)` -> (10, 100)."""
    if isinstance(spec, str):
        parts = spec.split("-")
        if len(parts) not in (1, 2) or not all(p.strip().isdigit() for p in parts):
            raise ValueError(f"boxes must look like 36 or 10-100, got {spec!r}")
        values = [int(p) for p in parts]
    elif isinstance(spec, int):
        values = [spec]
    else:
        values = [int(v) for v in spec]
    lo, hi = (values[0], values[0]) if len(values) == 1 else (values[0], values[1])
    if lo < 1 or hi < lo:
        raise ValueError(f"box counts must satisfy 1 <= min <= max, got {lo}-{hi}")
    return lo, hi


def _pack_bits(mask: torch.Tensor) -> torch.Tensor:
    """Bool [..., R] -> int64 [..., ceil(R / 64)] bitsets (bit k of word w is element 64 w + k)."""
    r = mask.shape[-1]
    words = (r + 63) // 64
    padded = torch.zeros(*mask.shape[:-1], words * 64, dtype=torch.int64, device=mask.device)
    padded[..., :r] = mask.long()
    bits = torch.ones(64, dtype=torch.int64, device=mask.device) << torch.arange(64, device=mask.device)
    # Distinct powers of two: the sum is the bitwise OR, also for bit 63 (two's complement wrap).
    return (padded.view(*mask.shape[:-1], words, 64) * bits).sum(-1)


def per_class_max_conf(
    boxes: list[torch.Tensor],
    class_scores: list[torch.Tensor],
    threshold: float = CAFFE_NMS,
    plus_one: bool = True,
) -> list[torch.Tensor]:
    """For each image (boxes [R, 4], class_scores [R, C] without background): greedy NMS run separately
    for every class over the same boxes, and for each region the highest score of a class in which
    it was kept (0 if none): the reference's loop of 1600 `nms` calls, exactly.

    All classes and images advance together: step r visits each class's r-th best region, which
    survives unless a region kept earlier in that class overlaps it. Suppression sets are 64-bit
    bitsets, so a step costs O(images x classes x R/64) and there are R steps."""
    if not boxes:
        return []
    device = class_scores[0].device
    sizes = [len(b) for b in boxes]
    batch, r_max, n_cls = len(boxes), max(sizes), class_scores[0].shape[1]
    if r_max == 0:
        return [torch.zeros(0, device=device) for _ in boxes]
    overlap = torch.zeros(batch, r_max, r_max, dtype=torch.bool, device=device)
    # Padding regions score -1: visited last, they overlap nothing and are dropped from the result.
    scores = torch.full((batch, n_cls, r_max), -1.0, device=device)
    for i, (b, s) in enumerate(zip(boxes, class_scores)):
        if len(b):
            iou = box_coder.pairwise_iou(b.float(), b.float(), plus_one)
            overlap[i, : len(b), : len(b)] = iou > threshold
            scores[i, :, : len(b)] = s.float().t()
    packed = _pack_bits(overlap)  # [B, R, W]
    words = packed.shape[2]
    order = scores.sort(dim=2, descending=True, stable=True).indices  # [B, C, R]
    suppressed = torch.zeros(batch, n_cls, words, dtype=torch.int64, device=device)
    kept = torch.zeros(batch, n_cls, r_max, dtype=torch.bool, device=device)
    for r in range(r_max):
        idx = order[:, :, r]  # [B, C]
        word = suppressed.gather(2, (idx >> 6).unsqueeze(2)).squeeze(2)
        alive = ((word >> (idx & 63)) & 1) == 0  # [B, C]
        kept.scatter_(2, idx.unsqueeze(2), alive.unsqueeze(2))
        rows = packed.gather(1, idx.unsqueeze(2).expand(batch, n_cls, words))  # [B, C, W]
        suppressed |= rows * alive.unsqueeze(2)
    max_conf = torch.where(kept, scores, torch.zeros((), device=device)).amax(dim=1)
    return [max_conf[i, :n] for i, n in enumerate(sizes)]


def caffe_keep(
    max_conf: torch.Tensor, min_boxes: int, max_boxes: int, score_threshold: float = CAFFE_SCORE
) -> torch.Tensor:
    """Indices kept by the reference: max_conf >= threshold, or the top `min_boxes` / `max_boxes` by
    max_conf when that count falls outside [min, max]. Returned in index (proposal) order, as the
    reference's middle branch leaves them; callers sort."""
    passing = torch.nonzero(max_conf >= score_threshold).flatten()
    if min_boxes <= len(passing) <= max_boxes:
        return passing
    count = min_boxes if len(passing) < min_boxes else max_boxes
    return max_conf.sort(descending=True, stable=True).indices[:count]


def maxnms_keep(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    min_boxes: int,
    max_boxes: int,
    thresholds=MAXNMS_THRESHOLDS,
    plus_one: bool = False,
) -> torch.Tensor:
    """Class-agnostic NMS over each region's best-class box; the threshold rises until at least
    `min_boxes` survive (or the last threshold is reached); the first `max_boxes` by score are kept."""
    keep = torch.zeros(0, dtype=torch.long, device=boxes.device)
    for threshold in thresholds:
        keep = box_coder.nms(boxes, scores, threshold, plus_one=plus_one)
        if len(keep) >= min_boxes:
            break
    return keep[:max_boxes]
