"""Box-selection policies on hand-made scores and boxes: known inputs, known kept boxes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vlprep.extractors.regions import selection


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


def test_parse_boxes():
    assert selection.parse_boxes(36) == (36, 36)
    assert selection.parse_boxes("100") == (100, 100)
    assert selection.parse_boxes("10-100") == (10, 100)
    assert selection.parse_boxes((10, 100)) == (10, 100)
    for bad in ("100-10", "0", "a-b", "1-2-3"):
        with pytest.raises(ValueError):
            selection.parse_boxes(bad)


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
    lo, hi = selection.parse_boxes(boxes)
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


def test_maxnms_thresholds_are_airsplays():
    assert len(selection.MAXNMS_THRESHOLDS) == 7
    assert np.allclose(selection.MAXNMS_THRESHOLDS, [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])


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
