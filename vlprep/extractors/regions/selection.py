"""Box-selection policies: pure functions from per-region scores and boxes to the kept regions.

- ``caffe``: the reference extractor's (peteanderson80 `generate_tsv.py`, MILVLG `save_roi_features`):
  per-class NMS (0.3) over the *proposal* boxes, each region keeps the best score among the classes
  where it survived ("max_conf"), keep max_conf >= 0.2, then clamp the count to [min, max] by max_conf.
- ``maxnms``: airsplay's detectron2 port / the LXMERT demo: each region's best-class *regressed* box,
  one class-agnostic NMS with the first threshold of a list that leaves at least `min` regions (airsplay
  0.3, 0.4 ... 0.9; the Hugging Face demo 0.5, 0.6, 0.7), then the first `max`. When no threshold of
  the list leaves `min`, the last (most permissive) threshold's survivors are kept, fewer than `min`:
  never an error, never another image's selection.
- ``given``: no selection (features for supplied boxes).
"""

from __future__ import annotations

import torch

from . import box_coder
from .config import AIRSPLAY_NMS_THRESHOLDS, RegionConfig

CAFFE_NMS = RegionConfig.class_nms
CAFFE_SCORE = RegionConfig.score_threshold


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
    it was kept (0 if none): the reference's loop of 1600 `nms` calls, exactly."""
    if not boxes:
        return []
    sizes = [len(b) for b in boxes]
    if max(sizes) == 0:
        return [torch.zeros(0, device=class_scores[0].device) for _ in boxes]
    padded_boxes = torch.nn.utils.rnn.pad_sequence([b.float() for b in boxes], batch_first=True)
    padded_scores = torch.nn.utils.rnn.pad_sequence([s.float() for s in class_scores], batch_first=True)
    counts = torch.tensor(sizes, device=padded_boxes.device)
    max_conf = per_class_max_conf_padded(padded_boxes, padded_scores, counts, threshold, plus_one)
    return [max_conf[i, :n] for i, n in enumerate(sizes)]


def per_class_max_conf_padded(
    boxes: torch.Tensor,
    class_scores: torch.Tensor,
    counts: torch.Tensor,
    threshold: float = CAFFE_NMS,
    plus_one: bool = True,
) -> torch.Tensor:
    """`per_class_max_conf` on padded batches: boxes [B, R, 4], class_scores [B, R, C], counts [B] (the
    real regions of each image, on the same device). Returns max_conf [B, R]; padding gets -1.

    All classes and images advance together: step r visits each class's r-th best region, which
    survives unless a region kept earlier in that class overlaps it. Suppression sets are 64-bit
    bitsets, so a step costs O(images x classes x R/64) and a handful of kernels, with no host sync:
    on a GPU the R steps are bound by kernel launches, so everything that does not depend on the step
    is computed before the loop."""
    batch, r_max, n_cls = class_scores.shape
    device = class_scores.device
    if r_max == 0:
        return class_scores.new_zeros(batch, 0)
    valid = torch.arange(r_max, device=device) < counts.reshape(-1, 1)  # [B, R]
    boxes = boxes.float()
    overlap = box_coder.pairwise_iou(boxes, boxes, plus_one) > threshold
    overlap &= valid[:, :, None] & valid[:, None, :]
    packed = _pack_bits(overlap)  # [B, R, W]
    words = packed.shape[2]
    # Padding regions score -1: visited last, they overlap nothing and are dropped from the result.
    scores = torch.where(valid[:, None, :], class_scores.float().transpose(1, 2), -1.0)  # [B, C, R]
    order = scores.sort(dim=2, descending=True, stable=True).indices  # [B, C, R]
    steps = order.permute(2, 0, 1).contiguous()  # [R, B, C]: step r's region of each class
    step_words = (steps >> 6).unsqueeze(3)  # [R, B, C, 1]
    step_bits = torch.ones_like(steps) << (steps & 63)  # bit 63 wraps to the sign bit; & still works
    suppressed = torch.zeros(batch, n_cls, words, dtype=torch.int64, device=device)
    alive = torch.empty(r_max, batch, n_cls, dtype=torch.bool, device=device)
    for r in range(r_max):
        word = suppressed.gather(2, step_words[r]).squeeze(2)  # [B, C]
        torch.eq(word & step_bits[r], 0, out=alive[r])
        rows = packed.gather(1, steps[r].unsqueeze(2).expand(batch, n_cls, words))  # [B, C, W]
        suppressed |= rows * alive[r].unsqueeze(2)
    kept = torch.zeros(batch, n_cls, r_max, dtype=torch.bool, device=device)
    kept.scatter_(2, order, alive.permute(1, 2, 0))
    max_conf = torch.where(kept, scores, torch.zeros((), device=device)).amax(dim=1)
    return torch.where(valid, max_conf, -1.0)


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


def caffe_keep_padded(
    max_conf: torch.Tensor,
    counts: list[int],
    min_boxes: int,
    max_boxes: int,
    score_threshold: float = CAFFE_SCORE,
) -> list[torch.Tensor]:
    """`caffe_keep` for every image of a padded batch (max_conf [B, R], `counts` real regions per image,
    padding < 0), with one host sync for the whole batch instead of one per image. Same indices in
    the same order as `caffe_keep` on each image."""
    batch, r_max = max_conf.shape
    if batch == 0 or r_max == 0:
        return [max_conf.new_zeros(0, dtype=torch.long) for _ in range(batch)]
    positions = torch.arange(r_max, device=max_conf.device).expand(batch, r_max)
    passing = max_conf >= score_threshold  # padding (< 0) never passes
    # Passing regions in index order, then the rest: distinct keys, so the sort is exact.
    by_index = torch.where(passing, positions, positions + r_max).argsort(dim=1)
    by_conf = max_conf.sort(dim=1, descending=True, stable=True).indices
    n_passing = passing.sum(dim=1).tolist()
    keeps = []
    for i, (n, size) in enumerate(zip(n_passing, counts)):
        if min_boxes <= n <= max_boxes:
            keeps.append(by_index[i, :n])
        else:
            keeps.append(by_conf[i, : min(size, min_boxes if n < min_boxes else max_boxes)])
    return keeps


def maxnms_keep(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    min_boxes: int,
    max_boxes: int,
    thresholds=AIRSPLAY_NMS_THRESHOLDS,
    plus_one: bool = False,
) -> torch.Tensor:
    """Class-agnostic NMS over one image's best-class boxes with the first of `thresholds` that leaves
    at least `min_boxes`; when none does, the last threshold's survivors (fewer than `min_boxes`). The
    first `max_boxes` by score are kept."""
    if not thresholds:
        raise ValueError("maxnms needs at least one NMS threshold")
    keep = torch.zeros(0, dtype=torch.long, device=boxes.device)
    for threshold in thresholds:
        keep = box_coder.nms(boxes, scores, threshold, plus_one=plus_one)
        if len(keep) >= min_boxes:
            break
    return keep[:max_boxes]
