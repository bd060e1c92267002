"""Preprocessing as the references do it: BGR minus Caffe means, 600/1000 scaling, cv2 or PIL resize."""

from __future__ import annotations

import numpy as np
import pytest

from vlprep.extractors.regions import preprocessing as pp
from vlprep.extractors.regions.vocab import parse_vocab


def test_caffe_scale():
    assert pp.caffe_scale(480, 640, 600, 1000) == pytest.approx(1.25)
    assert pp.caffe_scale(640, 480, 600, 1000) == pytest.approx(1.25)
    assert pp.caffe_scale(300, 1200, 600, 1000) == pytest.approx(1000 / 1200)  # longer side capped
    assert pp.caffe_scale(600, 1000, 600, 1000) == pytest.approx(1.0)


def test_d2_resized_size():
    assert pp.d2_resized_size(480, 640, 600, 1000) == (600, 800)
    assert pp.d2_resized_size(300, 1200, 600, 1000) == (250, 1000)
    assert pp.d2_resized_size(333, 500, 800, 1333) == (800, 1201)


@pytest.mark.parametrize("resize", ["cv2", "pil"])
def test_prepare_bgr_means_and_size(resize):
    img = np.zeros((48, 64, 3), np.uint8)
    img[..., 0] = 255  # pure red in RGB
    p = pp.prepare(img, 60, 100, resize)
    assert p.pixels.shape == (3, 60, 80) and p.pixels.dtype == np.float32
    assert (p.image_h, p.image_w) == (48, 64) and p.scale_y == pytest.approx(1.25)
    b, g, r = (p.pixels[c].mean() for c in range(3))
    assert b == pytest.approx(0 - 102.9801, abs=1e-3)
    assert g == pytest.approx(0 - 115.9465, abs=1e-3)
    assert r == pytest.approx(255 - 122.7717, abs=1e-3)


def test_cv2_resize_is_of_mean_subtracted_floats():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)
    p = pp.prepare(img, 45, 1000, "cv2")
    import cv2

    ref = cv2.resize(
        img[:, :, ::-1].astype(np.float32) - np.float32(pp.PIXEL_MEANS_BGR),
        None,
        fx=1.5,
        fy=1.5,
        interpolation=cv2.INTER_LINEAR,
    )
    assert np.array_equal(p.pixels, ref.transpose(2, 0, 1))


def test_prepare_rejects_non_rgb_uint8():
    with pytest.raises(ValueError, match="RGB uint8"):
        pp.prepare(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="RGB uint8"):
        pp.prepare(np.zeros((10, 10, 3), np.float32))


def test_vocab_files(tmp_path):
    objects = tmp_path / "objects.txt"
    attributes = tmp_path / "attributes.txt"
    objects.write_text("\n".join(["__background__"] + [f"obj{i}" for i in range(1600)]) + "\n")
    attributes.write_text("\n".join(f"attr{i}" for i in range(400)))
    objs, attrs = parse_vocab(f"{objects},{attributes}")
    assert objs[0] == "obj0" and len(objs) == 1600 and attrs[-1] == "attr399"
    attributes.write_text("only\nthree\nnames\n")
    with pytest.raises(ValueError, match="400"):
        parse_vocab(f"{objects},{attributes}")


@pytest.mark.parametrize("shape", [(480, 640), (333, 500), (37, 1201), (17, 23), (600, 1000), (1200, 300)])
def test_device_resize_matches_opencv(shape):
    """The on-device cv2 path (used on CUDA) against OpenCV itself, run here on CPU tensors."""
    import torch

    img = np.random.default_rng(sum(shape)).integers(0, 256, shape + (3,), dtype=np.uint8)
    for min_size, max_size in ((600, 1000), (96, 160)):
        ref = pp.prepare(img, min_size, max_size, "cv2")
        plan = pp.plan_cv2(img, min_size, max_size)
        assert plan.size == ref.size and plan.scale_x == ref.scale_x
        got = pp.pixels_on_device(img, plan, torch.device("cpu")).numpy()
        # OpenCV's float path rounds its coefficients differently: within 0.05 of 255, never more
        assert np.abs(got - ref.pixels).max() < 0.05
        assert np.abs(got - ref.pixels).mean() < 2e-3
