"""RegionExtractor end to end on the random model: record layout, batch invariance, policies, the
full-size configuration on a real-sized image."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vlprep.extractors.regions import RegionExtractor
from vlprep.extractors.regions.extractor import RECORD_FIELDS

SMALL = {"min_size": 64, "max_size": 100, "rpn_pre_nms": 200, "rpn_post_nms": 6}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _image(seed: int, h: int, w: int) -> np.ndarray:
    """Smooth shapes plus noise: structure for the RPN to respond to, different per seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3))
    for _ in range(4):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(5, h / 2)
        img[(y - cy) ** 2 + (x - cx) ** 2 < r * r] = rng.uniform(0, 255, 3)
    return np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def extractor() -> RegionExtractor:
    return RegionExtractor.from_weights("random", seed=0, policy="caffe", boxes=(2, 4), device="cpu", **SMALL)


def _like(ex: RegionExtractor, **kw) -> RegionExtractor:
    """Another configuration over the same (already built) model."""
    options = {**SMALL, "boxes": (2, 4), "policy": ex.policy, **kw}
    return RegionExtractor(ex.model, weights_info=ex.weights_info, device="cpu", **options)


def _check_record(rec: dict, h: int, w: int, lo: int, hi: int) -> None:
    assert set(rec) == set(RECORD_FIELDS)
    n = rec["num_boxes"]
    assert lo <= n <= hi and rec["image_h"] == h and rec["image_w"] == w
    assert rec["features"].shape == (n, 2048) and rec["features"].dtype == np.float32
    assert rec["boxes"].shape == (n, 4) and rec["boxes"].dtype == np.float32
    for key in ("object_ids", "attr_ids"):
        assert rec[key].shape == (n,) and rec[key].dtype == np.int64
    for key in ("object_scores", "attr_scores"):
        assert rec[key].shape == (n,) and rec[key].dtype == np.float32
        assert np.all((rec[key] > 0) & (rec[key] <= 1))
    assert np.all((rec["object_ids"] >= 0) & (rec["object_ids"] < 1600))
    assert np.all((rec["attr_ids"] >= 0) & (rec["attr_ids"] < 400))
    assert np.all(np.isfinite(rec["features"])) and rec["features"].std() > 0
    b = rec["boxes"]
    assert np.all(b[:, 0] >= 0) and np.all(b[:, 1] >= 0) and np.all(b[:, 2] <= w) and np.all(b[:, 3] <= h)
    assert np.all(b[:, 2] >= b[:, 0]) and np.all(b[:, 3] >= b[:, 1])


def test_records_and_batch_invariance(extractor):
    # two images share a size bucket, one does not
    images = [_image(1, 48, 64), _image(2, 48, 64), _image(3, 70, 50)]
    batch = extractor.extract(images)
    assert len(batch) == 3
    for rec, img in zip(batch, images):
        _check_record(rec, *img.shape[:2], 2, 4)
        assert np.all(np.diff(rec["object_scores"]) <= 0)  # sorted by score
    assert not np.allclose(batch[0]["features"][0], batch[1]["features"][0])
    for img, rec in zip(images, batch):
        (alone,) = extractor.extract([img])
        assert alone["num_boxes"] == rec["num_boxes"]
        assert np.allclose(alone["boxes"], rec["boxes"], atol=1e-3)
        assert np.array_equal(alone["object_ids"], rec["object_ids"])
        assert np.allclose(alone["features"], rec["features"], rtol=1e-4, atol=1e-4)


def test_maxnms_and_given_policies(extractor):
    img = _image(4, 48, 64)
    (rec,) = _like(extractor, policy="maxnms", boxes=3).extract([img])
    _check_record(rec, 48, 64, 3, 3)
    # a minimum no threshold can reach (6 proposals): each image keeps its own last threshold's
    # survivors, alone or in a batch (HF crashes here, or reuses the previous image's selection)
    short = _like(extractor, policy="maxnms", boxes=36, nms_thresholds=(0.5, 0.6, 0.7))
    pair = [img, _image(5, 48, 64)]
    for one, rec in zip(pair, short.extract(pair), strict=True):
        (alone,) = short.extract([one])
        assert 0 < rec["num_boxes"] == alone["num_boxes"] < 36
        assert np.allclose(alone["boxes"], rec["boxes"], atol=1e-3)
    given = np.array([[0, 0, 63, 47], [10, 5, 30, 40], [20, 20, 21, 21]], np.float32)
    given_ex = _like(extractor, policy="given")
    (rec,) = given_ex.extract([img], given_boxes=[given])
    assert rec["num_boxes"] == 3 and np.allclose(rec["boxes"], given, atol=1e-4)  # given order kept
    assert rec["features"].shape == (3, 2048)
    (empty,) = given_ex.extract([img], given_boxes=[np.zeros((0, 4))])
    assert empty["num_boxes"] == 0 and empty["features"].shape == (0, 2048)
    with pytest.raises(ValueError, match="given_boxes"):
        given_ex.extract([img])
    with pytest.raises(ValueError, match="given_boxes needs policy"):
        extractor.extract([img], given_boxes=[given])


def test_producer_is_complete_json(extractor, tmp_path):
    producer = json.loads(json.dumps(extractor.producer))
    assert producer["weights_sha256"] == "random" and producer["weights_format"] == "random"
    assert producer["policy"] == "caffe" and producer["boxes"] == [2, 4]
    assert producer["rpn"] == {"pre_nms": 200, "post_nms": 6, "nms": 0.7, "min_size": 16.0, "order": "caffe"}
    assert producer["stored_boxes"] == "proposals" and producer["pixel_means_bgr"][0] == 102.9801
    assert len(producer["cell_anchors"]) == 12
    objects, attributes = tmp_path / "o.txt", tmp_path / "a.txt"
    objects.write_text("\n".join(f"o{i}" for i in range(1600)))
    attributes.write_text("\n".join(f"a{i}" for i in range(400)))
    named = _like(extractor, vocab=f"{objects},{attributes}")
    assert named.object_names[5] == "o5" and named.producer["attribute_names"][399] == "a399"
    assert extractor.object_names is None


def test_bad_inputs(extractor):
    with pytest.raises(ValueError, match="RGB uint8"):
        extractor.extract([np.zeros((10, 10), np.uint8)])
    with pytest.raises(ValueError, match="policy"):
        _like(extractor, policy="nope")
    assert extractor.extract([]) == []


def test_full_size_configuration_on_a_real_sized_image(extractor):
    """Default 600/1000 preprocessing on a 480x640 photo-sized image; few proposals keep CPU time low."""
    full = RegionExtractor(
        extractor.model, weights_info=extractor.weights_info, device="cpu", boxes=10, rpn_post_nms=12
    )
    img = _image(5, 480, 640)
    (rec,) = full.extract([img])
    _check_record(rec, 480, 640, 10, 10)
    assert rec["features"].shape == (10, 2048)
    assert full.producer["min_size"] == 600 and full.producer["max_size"] == 1000
    # the network saw 600x800: proposals extend beyond what a 480x640 input alone would allow at 1/16
    assert rec["boxes"][:, 2].max() > 100


def test_reduced_precision_runs_on_a_folded_copy(extractor):
    img = _image(6, 48, 64)
    given = [np.array([[2, 2, 40, 30], [20, 10, 63, 47]], np.float32)]
    ref = _like(extractor, policy="given").extract([img], given)[0]
    scale = np.abs(ref["features"]).max()
    for precision, tol in (("fp32", 1e-4), ("bf16", 0.05)):
        ex = _like(extractor, policy="given", precision=precision, fold_bn=True)
        rec = ex.extract([img], given)[0]
        assert rec["features"].dtype == np.float32
        assert np.abs(rec["features"] - ref["features"]).max() <= tol * scale, precision
    rec = _like(extractor, policy="given", preprocess_on_device=True).extract([img], given)[0]
    assert np.abs(rec["features"] - ref["features"]).max() <= 1e-3 * scale
    # the shared model was neither folded nor cast
    assert next(extractor.model.parameters()).dtype == torch.float32
    assert hasattr(extractor.model.backbone.stem.conv1.norm, "running_var")
