"""Anchors, box coding and RPN output layout: the conventions the checkpoints depend on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vlprep.extractors.regions import anchors, box_coder
from vlprep.extractors.regions.rpn import ProposalParams, RPNHead, select_caffe, select_d2

# py-faster-rcnn generate_anchors(base 16, ratios 0.5/1/2, scales 4/8/16/32), ratio-major
CAFFE_TABLE = [
    (-38, -16, 53, 31),
    (-84, -40, 99, 55),
    (-176, -88, 191, 103),
    (-360, -184, 375, 199),
    (-24, -24, 39, 39),
    (-56, -56, 71, 71),
    (-120, -120, 135, 135),
    (-248, -248, 263, 263),
    (-14, -36, 29, 51),
    (-36, -80, 51, 95),
    (-80, -168, 95, 183),
    (-168, -344, 183, 359),
]


def test_caffe_anchor_table():
    assert np.array_equal(anchors.caffe_cell_anchors(), np.array(CAFFE_TABLE, dtype=np.float32))


def test_d2_anchors_size_major_and_centred():
    cell = anchors.d2_cell_anchors()
    w, h = cell[:, 2] - cell[:, 0], cell[:, 3] - cell[:, 1]
    assert np.allclose(cell[:, :2], -cell[:, 2:])
    assert np.allclose(np.sqrt(w * h), np.repeat([64, 128, 256, 512], 3))
    assert np.allclose(h / w, np.tile([0.5, 1, 2], 4))
    # The same 12 anchors as Caffe's up to rounding and +1, in the other order.
    perm = [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]
    caffe = anchors.caffe_cell_anchors()[perm]
    cw, ch = caffe[:, 2] - caffe[:, 0] + 1, caffe[:, 3] - caffe[:, 1] + 1
    assert np.allclose(cw * ch, w * h, rtol=0.1)


def test_grid_anchor_order():
    cell = torch.from_numpy(anchors.d2_cell_anchors())
    grid = anchors.grid_anchors(cell, 3, 5)
    assert grid.shape == (3 * 5 * 12, 4)
    y, x, a = 2, 3, 7
    assert torch.allclose(grid[(y * 5 + x) * 12 + a], cell[a] + torch.tensor([16.0 * x, 16.0 * y] * 2))


def test_rpn_head_output_layout():
    head = RPNHead(in_channels=4, hidden=4)
    with torch.no_grad():
        for conv in (head.objectness_logits, head.anchor_deltas):
            conv.weight.zero_()
            conv.bias.copy_(torch.arange(conv.out_channels, dtype=torch.float32))
    logits, deltas = head(torch.randn(1, 4, 2, 3))
    assert logits.shape == (1, 2 * 3 * 12) and deltas.shape == (1, 2 * 3 * 12, 4)
    idx = (1 * 3 + 2) * 12 + 5  # y=1, x=2, anchor 5
    assert logits[0, idx] == 5
    assert deltas[0, idx].tolist() == [20, 21, 22, 23]  # channel 4a + k


def test_decode_conventions_differ_by_one_pixel():
    box = torch.tensor([[10.0, 20.0, 49.0, 59.0]])
    zero = torch.zeros(1, 4)
    assert torch.allclose(box_coder.decode(zero, box, plus_one=False), box)
    # Caffe's bbox_transform_inv: zero deltas move x2, y2 out by one pixel
    assert torch.allclose(box_coder.decode(zero, box, plus_one=True), box + torch.tensor([0, 0, 1.0, 1.0]))
    deltas = torch.tensor([[1.0, -2.0, 0.5, -0.3]])
    a = box_coder.decode(deltas, box, plus_one=False)
    b = box_coder.decode(deltas, box, plus_one=True)
    # one more pixel of width moves the centre by 1/2 + dx and each side by exp(dw) / 2 more
    dx, dy, dw, dh = (deltas[0] / torch.tensor(box_coder.ROI_WEIGHTS)).tolist()
    bound_x, bound_y = 0.5 + abs(dx) + 0.5 * np.exp(dw), 0.5 + abs(dy) + 0.5 * np.exp(dh)
    assert (a - b).abs()[0, 0::2].max() <= bound_x + 1e-4 and (a - b).abs()[0, 1::2].max() <= bound_y + 1e-4
    # the dw/dh clamp
    huge = box_coder.decode(torch.tensor([[0, 0, 100.0, 100.0]]), box, weights=(1, 1, 1, 1))
    assert huge[0, 2] - huge[0, 0] == pytest.approx(39 * 1000 / 16, rel=1e-4)


def test_clip_conventions():
    boxes = torch.tensor([[-5.0, -5.0, 120.0, 90.0]])
    assert box_coder.clip(boxes, 80, 100).tolist() == [[0, 0, 100, 80]]
    assert box_coder.clip(boxes, 80, 100, plus_one=True).tolist() == [[0, 0, 99, 79]]


def test_nms_plus_one():
    boxes = torch.tensor([[0.0, 0.0, 9.0, 9.0], [5.0, 0.0, 14.0, 9.0]])
    scores = torch.tensor([0.9, 0.8])
    # +1: IoU = 50 / 150 = 0.33; without: 36 / 126 = 0.29
    assert box_coder.pairwise_iou(boxes, boxes, plus_one=True)[0, 1] == pytest.approx(1 / 3)
    assert box_coder.nms(boxes, scores, 0.3, plus_one=True).tolist() == [0]
    assert box_coder.nms(boxes, scores, 0.3, plus_one=False).tolist() == [0, 1]


def test_proposal_orders_min_size_and_topk():
    # three anchors: a small one (12 px), and two large overlapping ones; zero deltas
    anchors_ = torch.tensor([[0.0, 0.0, 11.0, 11.0], [20.0, 20.0, 80.0, 80.0], [22.0, 22.0, 82.0, 82.0]])
    logits = torch.tensor([3.0, 2.0, 1.0])
    deltas = torch.zeros(3, 4)
    caffe = select_caffe(
        logits, deltas, anchors_, (100, 100), 1.0, ProposalParams(min_size=16, plus_one=True)
    )
    # the 12 px box is dropped (< 16 x scale), then NMS 0.7 keeps one of the two overlapping ones
    assert caffe.tolist() == [[20, 20, 81, 81]]
    d2 = select_d2(
        logits,
        deltas,
        anchors_,
        (100, 100),
        1.0,
        ProposalParams(min_size=0, order="d2", plus_one=False, pre_nms=2),
    )
    # top-2 by score first (the third anchor never competes), no minimum size
    assert d2.tolist() == [[0, 0, 11, 11], [20, 20, 80, 80]]
