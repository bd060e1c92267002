"""Rendering of region and video records: PNG sizes and drawn pixels."""

from __future__ import annotations

import numpy as np
from PIL import Image

from vlprep.render.regions import PALETTE, box_label, render_regions
from vlprep.render.video import render_video, sample_rows


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


def test_render_regions_draws_boxes_and_labels(tmp_path):
    image = np.full((120, 160, 3), 200, dtype=np.uint8)
    out = render_regions(
        _record(), image, tmp_path / "r.png", ["cat", "dog", "car", "tree"], ["red", "big", "old"]
    )
    png = np.asarray(Image.open(out).convert("RGB"))
    assert png.shape == (120, 160, 3)
    # box edges (x=10 for box 0, x=150 for box 1) have their colours; box interiors are untouched
    assert tuple(png[60, 10]) == PALETTE[0] and tuple(png[40, 150]) == PALETTE[1]
    assert tuple(png[60, 40]) == (200, 200, 200)
    # box 0's label was drawn in a band above its top edge
    band = png[0:20, 10:70]
    assert (band != 200).any()
    assert box_label(_record(), 0, ["cat", "dog", "car", "tree"], ["red", "big", "old"]) == "red tree 0.90"
    assert box_label(_record(), 1) == "a2 o1 0.40"


def test_render_regions_scales_boxes_to_a_larger_image(tmp_path):
    image = np.zeros((240, 320, 3), dtype=np.uint8)
    png = np.asarray(Image.open(render_regions(_record(), image, tmp_path / "r.png")).convert("RGB"))
    assert png.shape == (240, 320, 3)
    assert tuple(png[120, 20]) == PALETTE[0]  # x=10 scaled by 2
    canvas = np.asarray(Image.open(render_regions(_record(), None, tmp_path / "c.png")))
    assert canvas.shape[:2] == (120, 160) and tuple(canvas[60, 40][:3]) == (128, 128, 128)


def test_render_video_strip(tmp_path):
    from vlprep.extractors.decode.synthetic_video import write_index_video

    video = tmp_path / "v.mp4"
    write_index_video(video, num_frames=30, fps=10.0, width=64, height=48)
    record = {
        "features": np.arange(12, dtype=np.float32).reshape(3, 4),
        "timestamps": np.array([[0, 1], [1, 2], [2, 3]], dtype=np.float32),
    }
    png = np.asarray(Image.open(render_video(record, video, tmp_path / "v.png")).convert("RGB"))
    assert png.shape == (96 + 34, 3 * 128, 3)
    # the frames are pasted (not the gray placeholder) and captions drawn under them
    assert not (png[:96] == 96).all() and (png[96:] != 24).any()
    tokens = dict(record, tokens=np.array([5, 6, 7]))
    gray = np.asarray(Image.open(render_video(tokens, None, tmp_path / "t.png")).convert("RGB"))
    assert tuple(gray[10, 10]) == (96, 96, 96)
    assert list(sample_rows(100, 8)) == [0, 14, 28, 42, 57, 71, 85, 99] and len(sample_rows(3, 8)) == 3
