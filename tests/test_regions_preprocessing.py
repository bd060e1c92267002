"""Preprocessing as the references do it: BGR minus Caffe means, 600/1000 scaling, and each resize mode
against the library its reference used (OpenCV, PIL, torch) and a NumPy bilinear written from the formula."""

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


@pytest.mark.parametrize("resize", ["caffe", "detectron2", "hf", "cv2", "pil"])
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


ODD_SIZES = [(375, 500), (333, 1000), (7, 1201)]
LIMITS = [(600, 1000), (800, 1333)]


def _odd_image(h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(h * 7 + w)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / w, yy * 255 / h, (xx * 3 + yy * 5) % 256], axis=2)
    return np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)


def _bgr_minus_means(rgb: np.ndarray) -> np.ndarray:
    return (rgb[:, :, ::-1].astype(np.float64) - np.asarray(pp.PIXEL_MEANS_BGR)).transpose(2, 0, 1)


def _d2_size(h: int, w: int, short: int, cap: int) -> tuple[int, int]:
    """detectron2 ResizeShortestEdge.get_output_shape, written out again."""
    scale = short / min(h, w)
    nh, nw = (short, scale * w) if h < w else (scale * h, short)
    if max(nh, nw) > cap:
        nh, nw = nh * cap / max(nh, nw), nw * cap / max(nh, nw)
    return int(nh + 0.5), int(nw + 0.5)


def _half_pixel_bilinear(x: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Bilinear with half-pixel centres and no antialiasing (align_corners=False) in float64, from the
    formula: source = (dst + 0.5) * in / out - 0.5, clamped at 0, neighbours clamped at the edge."""

    def taps(n_out: int, n_in: int):
        src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
        i0 = np.minimum(np.floor(src).astype(int), n_in - 1)
        return i0, np.minimum(i0 + 1, n_in - 1), src - i0

    y0, y1, fy = taps(out_h, x.shape[1])
    x0, x1, fx = taps(out_w, x.shape[2])
    rows = x[:, y0] * (1 - fy)[:, None] + x[:, y1] * fy[:, None]
    return rows[:, :, x0] * (1 - fx) + rows[:, :, x1] * fx


@pytest.mark.parametrize("limits", LIMITS)
@pytest.mark.parametrize("size", ODD_SIZES)
def test_resize_modes_against_their_references(size, limits):
    import cv2
    from PIL import Image

    h, w = size
    img = _odd_image(h, w)
    short, cap = limits

    # caffe: prep_im_for_blob's single scale, cv2.resize(fx=fy=scale) of the mean-subtracted floats
    scale = short / min(h, w)
    if np.round(scale * max(h, w)) > cap:
        scale = cap / max(h, w)
    shifted = img[:, :, ::-1].astype(np.float32) - np.float32(pp.PIXEL_MEANS_BGR)
    expect = cv2.resize(shifted, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1)
    got = pp.prepare(img, short, cap, "caffe")
    assert np.array_equal(got.pixels, expect) and got.scale_x == got.scale_y == pytest.approx(scale)

    # detectron2: int(x + 0.5) sizes per axis, PIL bilinear on uint8, means after
    nh, nw = _d2_size(h, w, short, cap)
    pil = np.asarray(Image.fromarray(img).resize((nw, nh), Image.Resampling.BILINEAR))
    got = pp.prepare(img, short, cap, "detectron2")
    assert np.abs(got.pixels - _bgr_minus_means(pil)).max() < 1e-4  # PIL's uint8 values, exactly
    assert (got.scale_y, got.scale_x) == (nh / h, nw / w)

    # hf: the same sizes, bilinear on the float image without antialiasing
    got = pp.prepare(img, short, cap, "hf")
    reference = _half_pixel_bilinear(_bgr_minus_means(img), nh, nw)
    assert got.pixels.shape == (3, nh, nw) and (got.scale_y, got.scale_x) == (nh / h, nw / w)
    # torch computes the source positions in float32: ~3e-5 px at x ~ 1000, times edges of ~255 per px
    assert np.abs(got.pixels - reference).max() < 0.02


def test_resize_modes_differ_where_the_references_do():
    """Same network size, other pixels: the caffe mode samples at 1/scale, hf at in/out per axis, and
    detectron2 rounds to uint8 (up to a grey level when enlarging) and PIL antialiases when it shrinks
    (tens of grey levels: the error of pointing HF users at detectron2's resize)."""
    img = _odd_image(375, 500)
    caffe, hf, d2 = (pp.prepare(img, 800, 1333, mode).pixels for mode in ("caffe", "hf", "detectron2"))
    assert caffe.shape == hf.shape == d2.shape == (3, 800, 1067)
    assert np.abs(caffe - hf).max() > 10 and np.abs(hf - d2).max() >= 0.5
    small = _odd_image(333, 1000)
    shrunk = [pp.prepare(small, 200, 400, mode).pixels for mode in ("hf", "detectron2")]
    assert np.abs(shrunk[0] - shrunk[1]).max() > 10


def test_rgb_channel_order_is_an_explicit_opt_in():
    img = np.zeros((20, 30, 3), np.uint8)
    img[..., 0] = 200  # red
    bgr = pp.prepare(img, 20, 100, "hf")
    rgb = pp.prepare(img, 20, 100, "hf", channel_order="rgb")
    assert bgr.pixels[2].mean() == pytest.approx(200 - pp.PIXEL_MEANS_BGR[2], abs=1e-3)
    assert rgb.pixels[0].mean() == pytest.approx(200 - pp.PIXEL_MEANS_BGR[0], abs=1e-3)
    with pytest.raises(ValueError, match="channel_order"):
        pp.prepare(img, 20, 100, channel_order="rbg")
