"""Rendering of region and video records: PNG sizes and drawn pixels."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vlprep.render.regions import (
    CANVAS_GRAY,
    LEGEND_BACKGROUND,
    LEGEND_WIDTH,
    MAX_LONG_SIDE,
    PALETTE,
    RecordError,
    box_label,
    place_labels,
    render_regions,
)
from vlprep.render.video import CAPTION_HEIGHT, FRAME_HEIGHT, render_video, sample_rows


def _record(h=120, w=160):
    return {
        "boxes": np.array([[10, 20, 70, 90], [80, 10, 150, 60]], dtype=np.float32),
        "object_ids": np.array([3, 1]),
        "object_scores": np.array([0.9, 0.4], dtype=np.float32),
        "attr_ids": np.array([0, 2]),
        "attr_scores": np.array([0.5, 0.6], dtype=np.float32),
        "image_h": h,
        "image_w": w,
    }


def test_render_regions_enlarges_small_images_and_draws_a_legend(tmp_path):
    image = np.full((120, 160, 3), 200, dtype=np.uint8)
    out = render_regions(
        _record(), image, tmp_path / "r.png", ["cat", "dog", "car", "tree"], ["red", "big", "old"]
    )
    png = np.asarray(Image.open(out).convert("RGB"))
    # 160 px wide -> drawn at 640 (x4), plus the legend panel on the right
    assert png.shape == (480, 640 + LEGEND_WIDTH, 3)
    # rank 1 (score 0.9) is box 0, rank 2 box 1; their left edges (x=10, x=80, scaled x4) have their colours
    assert tuple(png[240, 40]) == PALETTE[0] and tuple(png[120, 320]) == PALETTE[1]
    assert tuple(png[240, 150]) == (200, 200, 200)  # box interiors are untouched
    assert (png[:, 640:] != LEGEND_BACKGROUND).any()  # the legend has content
    assert box_label(_record(), 0, ["cat", "dog", "car", "tree"], ["red", "big", "old"]) == "red tree 0.90"
    assert box_label(_record(), 1) == "a2 o1 0.40"


def test_render_regions_draws_only_the_top_boxes(tmp_path):
    record = _record()
    png = np.asarray(Image.open(render_regions(record, None, tmp_path / "r.png", max_boxes=1)).convert("RGB"))
    assert tuple(png[240, 40]) == PALETTE[0]
    assert tuple(png[120, 320]) == (CANVAS_GRAY,) * 3  # the second box is not drawn


def test_render_regions_scales_boxes_to_a_larger_image_and_bounds_huge_ones(tmp_path):
    image = np.zeros((480, 640, 3), dtype=np.uint8)
    png = np.asarray(Image.open(render_regions(_record(), image, tmp_path / "r.png")).convert("RGB"))
    assert png.shape[:2] == (480, 640 + LEGEND_WIDTH)
    assert tuple(png[240, 40]) == PALETTE[0]  # x=10 in the record's 160-px frame is x=40 here
    huge = dict(_record(h=60000, w=60000), boxes=np.array([[0, 0, 30000, 30000]] * 2, np.float32))
    canvas = np.asarray(Image.open(render_regions(huge, None, tmp_path / "c.png", legend=False)))
    assert canvas.shape[:2] == (MAX_LONG_SIDE, MAX_LONG_SIDE)


def test_render_regions_refuses_a_record_without_an_image_size(tmp_path):
    with pytest.raises(RecordError, match="0x0"):
        render_regions(_record(h=0, w=0), None, tmp_path / "r.png")


def test_labels_never_overlap():
    rng = np.random.default_rng(0)
    x1, y1 = rng.uniform(0, 300, 40), rng.uniform(0, 200, 40)
    boxes = np.stack([x1, y1, x1 + 20, y1 + 20], 1)  # 40 crowded boxes
    rects = place_labels(boxes, [(18, 14)] * 40, 400, 300)
    for a in range(len(rects)):
        assert rects[a][0] >= 0 and rects[a][2] <= 400 and rects[a][1] >= 0 and rects[a][3] <= 300
        for b in range(a):
            r, q = rects[a], rects[b]
            assert not (r[0] < q[2] and q[0] < r[2] and r[1] < q[3] and q[1] < r[3]), (a, b)


def test_render_video_strip(tmp_path):
    from vlprep.extractors.decode.synthetic_video import write_index_video

    video = tmp_path / "v.mp4"
    write_index_video(video, num_frames=30, fps=10.0, width=64, height=48)
    record = {
        "features": np.arange(12, dtype=np.float32).reshape(3, 4),
        "timestamps": np.array([[0, 1], [1, 2], [2, 3]], dtype=np.float32),
    }
    png = np.asarray(Image.open(render_video(record, video, tmp_path / "v.png")).convert("RGB"))
    assert png.shape == (FRAME_HEIGHT + CAPTION_HEIGHT, 3 * round(64 * FRAME_HEIGHT / 48), 3)
    # the frames are pasted (not the gray placeholder) and captions drawn under them
    assert not (png[:FRAME_HEIGHT] == 96).all() and (png[FRAME_HEIGHT:] != 24).any()
    tokens = dict(record, tokens=np.array([5, 6, 7]))
    gray = np.asarray(Image.open(render_video(tokens, None, tmp_path / "t.png")).convert("RGB"))
    assert tuple(gray[10, 10]) == (96, 96, 96)
    assert list(sample_rows(100, 8)) == [0, 14, 28, 42, 57, 71, 85, 99] and len(sample_rows(3, 8)) == 3
