"""Box-selection policies on hand-made scores and boxes: known inputs, known kept boxes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vlprep.extractors.regions import selection
from vlprep.extractors.regions.config import parse_boxes


def _naive_max_conf(boxes: np.ndarray, scores: np.ndarray, thresh: float) -> np.ndarray:
    """The reference's loop: per class, py-faster-rcnn NMS (+1 areas) over the same boxes."""
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    max_conf = np.zeros(len(boxes))
    for c in range(scores.shape[1]):
        s = scores[:, c]
        order = np.argsort(-s, kind="stable")
        keep = []
        while order.size:
            i = order[0]
            keep.append(i)
            w = np.maximum(0, np.minimum(x2[i], x2[order[1:]]) - np.maximum(x1[i], x1[order[1:]]) + 1)
            h = np.maximum(0, np.minimum(y2[i], y2[order[1:]]) - np.maximum(y1[i], y1[order[1:]]) + 1)
            inter = w * h
            ovr = inter / (areas[i] + areas[order[1:]] - inter)
            order = order[1:][ovr <= thresh]
        max_conf[keep] = np.maximum(max_conf[keep], s[keep])
    return max_conf


def test_per_class_max_conf_hand_case():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=torch.float32)
    scores = torch.tensor([[0.9, 0.2], [0.8, 0.7], [0.1, 0.15]])
    # class 0 keeps A (B overlaps it) and C; class 1 keeps B (A overlaps it) and C.
    (max_conf,) = selection.per_class_max_conf([boxes], [scores], 0.3, plus_one=True)
    assert torch.allclose(max_conf, torch.tensor([0.9, 0.7, 0.15]))
    assert selection.caffe_keep(max_conf, 1, 100).tolist() == [0, 1]


def test_per_class_max_conf_matches_reference_loop_batched():
    rng = np.random.default_rng(0)
    images = []
    for n in (37, 70, 0, 5):  # different region counts in one batch, one image without regions
        xy = rng.uniform(0, 80, (n, 2))
        wh = rng.uniform(4, 40, (n, 2))
        images.append(
            (np.concatenate([xy, xy + wh], 1).astype(np.float32), rng.random((n, 9)).astype(np.float32))
        )
    got = selection.per_class_max_conf(
        [torch.from_numpy(b) for b, _ in images], [torch.from_numpy(s) for _, s in images], 0.3, plus_one=True
    )
    for (b, s), g in zip(images, got):
        assert np.allclose(g.numpy(), _naive_max_conf(b, s, 0.3))
    # a region's result does not depend on the other images of the batch
    alone = selection.per_class_max_conf([torch.from_numpy(images[1][0])], [torch.from_numpy(images[1][1])])
    assert torch.equal(alone[0], got[1])


def _conf(passing: int, total: int) -> torch.Tensor:
    """max_conf with `passing` values >= 0.2 at scattered positions, distinct everywhere."""
    values = torch.linspace(0.01, 0.19, total)
    positions = torch.randperm(total, generator=torch.Generator().manual_seed(passing))[:passing]
    values[positions] = torch.linspace(0.3, 0.9, passing)
    return values


@pytest.mark.parametrize(
    "boxes,passing,expected",
    [
        ("10-100", 50, "passing"),  # inside the range: exactly the passing regions, proposal order
        ("10-100", 5, 10),  # too few: the 10 best
        ("10-100", 150, 100),  # too many: the 100 best
        ("36", 20, 36),
        ("36", 50, 36),
        ("36", 36, "passing"),
        ("100", 120, 100),
        ("100", 80, 100),
    ],
)
def test_caffe_keep_counts(boxes, passing, expected):
    lo, hi = parse_boxes(boxes)
    conf = _conf(passing, 300)
    keep = selection.caffe_keep(conf, lo, hi)
    passing_idx = torch.nonzero(conf >= 0.2).flatten()
    if expected == "passing":
        assert torch.equal(keep, passing_idx)
    else:
        assert len(keep) == expected
        assert torch.equal(keep, conf.argsort(descending=True)[:expected])
        assert conf[keep].min() >= conf[~torch.isin(torch.arange(300), keep)].max()


def test_caffe_keep_with_fewer_regions_than_min():
    conf = torch.tensor([0.1, 0.5, 0.05])
    assert selection.caffe_keep(conf, 10, 100).tolist() == [1, 0, 2]


def _row_of_boxes(n: int, step: float) -> torch.Tensor:
    x = torch.arange(n, dtype=torch.float32) * step
    return torch.stack([x, torch.zeros(n), x + 10, torch.full((n,), 10.0)], dim=1)


def test_maxnms_raises_threshold_until_enough():
    # neighbours overlap with IoU 6/14 = 0.43, every other box with 2/18 = 0.11
    boxes = _row_of_boxes(5, 4.0)
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5])
    assert selection.maxnms_keep(boxes, scores, 3, 3).tolist() == [0, 2, 4]  # 0.3 suffices
    assert selection.maxnms_keep(boxes, scores, 4, 10).tolist() == [
        0,
        1,
        2,
        3,
        4,
    ]  # 0.3, 0.4 fail; 0.5 keeps all
    assert selection.maxnms_keep(boxes, scores, 4, 4).tolist() == [0, 1, 2, 3]  # then the first max by score
    # impossible minimum: the last threshold (0.9) decides
    assert selection.maxnms_keep(boxes, scores, 36, 36).tolist() == [0, 1, 2, 3, 4]


def _greedy_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    """Greedy NMS written out (detectron2 convention: areas without +1)."""
    order, keep = list(np.argsort(-scores, kind="stable")), []
    while order:
        i = order.pop(0)
        keep.append(i)
        rest = []
        for j in order:
            w = max(0.0, min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0]))
            h = max(0.0, min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1]))
            area = lambda b: (b[2] - b[0]) * (b[3] - b[1])  # noqa: E731
            if w * h / (area(boxes[i]) + area(boxes[j]) - w * h) <= threshold:
                rest.append(j)
        order = rest
    return keep


def test_maxnms_threshold_list_as_the_references_walk_it():
    """Hand-made: neighbours at IoU 0.43 (step 4) and a cluster at IoU 0.67/0.82 (steps 2, 1). The
    first threshold that leaves `min` wins; HF's list starts at 0.5, airsplay's at 0.3."""
    boxes = torch.cat([_row_of_boxes(5, 4.0), _row_of_boxes(3, 1.0) + torch.tensor([100.0, 0, 100, 0])])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5, 0.95, 0.85, 0.75])
    b, s = boxes.numpy(), scores.numpy()
    for thresholds, lo, hi in [
        ((0.5, 0.6, 0.7), 6, 36),
        ((0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9), 6, 36),
        ((0.5, 0.6, 0.7), 7, 7),
        ((0.3, 0.4), 2, 3),
    ]:
        expected = []
        for t in thresholds:  # the definition: first threshold leaving >= lo, else the last one's
            expected = _greedy_nms(b, s, t)
            if len(expected) >= lo:
                break
        got = selection.maxnms_keep(boxes, scores, lo, hi, thresholds).tolist()
        assert got == expected[:hi], thresholds


def test_maxnms_when_no_threshold_qualifies():
    """Defined, not a crash, and not another image's selection: the last threshold's survivors, even
    though fewer than the minimum (HF crashes on a first image, reuses the previous one in a batch)."""
    heavy = _row_of_boxes(4, 0.5)  # all pairs IoU >= 0.6
    scores = torch.tensor([0.4, 0.9, 0.3, 0.8])
    got = selection.maxnms_keep(heavy, scores, 36, 36, (0.5, 0.6)).tolist()
    assert got == _greedy_nms(heavy.numpy(), scores.numpy(), 0.6) and 0 < len(got) < 36
    other = selection.maxnms_keep(_row_of_boxes(3, 40.0), torch.tensor([0.1, 0.2, 0.3]), 36, 36, (0.5,))
    assert other.tolist() == [2, 1, 0]  # the next image: its own regions only
    with pytest.raises(ValueError, match="at least one"):
        selection.maxnms_keep(heavy, scores, 1, 2, ())


def test_caffe_keep_padded_matches_caffe_keep():
    """The batched keep (one host sync per batch) picks the same indices in the same order."""
    gen = torch.Generator().manual_seed(3)
    sizes = [12, 0, 7, 12, 3]
    rows = []
    for n in sizes:
        mc = torch.rand(n, generator=gen) * 0.4
        mc[: n // 3] = 0.25  # ties, above the threshold
        rows.append(mc)
    padded = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=-1.0)
    for lo, hi in ((1, 100), (5, 5), (4, 6), (10, 12), (1, 2)):
        got = selection.caffe_keep_padded(padded, sizes, lo, hi)
        for mc, g in zip(rows, got):
            assert g.tolist() == selection.caffe_keep(mc, lo, hi).tolist(), (lo, hi)
