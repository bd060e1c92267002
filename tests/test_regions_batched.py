"""The batched GPU-oriented paths (proposal selection for a whole size bucket, fixed-point NMS) give
exactly what the per-image paths give; run here on CPU, where both exist."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vlprep.extractors.regions import RegionExtractor, box_coder, rpn
from vlprep.extractors.regions.anchors import AnchorGenerator


def _reference_nms(
    boxes: torch.Tensor, valid: torch.Tensor, threshold: float, plus_one: bool
) -> torch.Tensor:
    index = valid.nonzero().flatten()
    kept = torch.zeros(len(valid), dtype=torch.bool)
    kept[index[box_coder.nms(boxes[index], -index.float(), threshold, plus_one)]] = True
    return kept


@pytest.mark.parametrize("plus_one", [True, False])
def test_fixed_point_nms_is_greedy_nms(plus_one):
    gen = torch.Generator().manual_seed(1)
    xy = torch.rand(3, 300, 2, generator=gen) * 60
    wh = 8 + torch.rand(3, 300, 2, generator=gen) * 30  # dense clusters: long suppression chains
    boxes = torch.cat([xy, xy + wh], 2)
    valid = torch.rand(3, 300, generator=gen) > 0.1
    for threshold in (0.3, 0.7):
        kept = box_coder.nms_mask_batched(boxes, valid, threshold, plus_one, check_every=1)
        for b in range(3):
            assert torch.equal(kept[b], _reference_nms(boxes[b], valid[b], threshold, plus_one))
        # too few steps allowed: the unconverged rows fall back to torchvision's NMS
        capped = box_coder.nms_mask_batched(
            boxes, valid, threshold, plus_one, check_every=1, max_iterations=1
        )
        assert torch.equal(capped, kept)


@pytest.mark.parametrize("order", ["caffe", "d2"])
@pytest.mark.parametrize(("post_nms", "nms", "prefixes"), [(40, 0.7, 1), (300, 0.2, 2), (2000, 0.7, 1)])
def test_batched_proposals_equal_per_image(order, post_nms, nms, prefixes, monkeypatch):
    """NMS runs on a prefix of the sorted boxes first, on a longer one when some image keeps fewer
    than post_nms boxes in it; the result is the per-image one either way."""
    calls = []
    batched_nms = box_coder.nms_mask_batched
    monkeypatch.setattr(
        box_coder, "nms_mask_batched", lambda *a, **kw: calls.append(1) or batched_nms(*a, **kw)
    )
    fh, fw = 12, 20
    anchors = AnchorGenerator("d2")(fh, fw)
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(3, len(anchors), generator=gen)
    deltas = torch.randn(3, len(anchors), 4, generator=gen) * 0.3
    scales = [1.0, 0.7, 1.3]
    params = rpn.ProposalParams(
        pre_nms=2500,
        post_nms=post_nms,
        nms_threshold=nms,
        order=order,
        plus_one=order == "caffe",
        min_size=16.0,
    )
    got = rpn.select_batched(logits, deltas, anchors, (fh * 16, fw * 16), scales, params)
    select = rpn.select_caffe if order == "caffe" else rpn.select_d2
    for i in range(3):
        ref = select(logits[i], deltas[i], anchors, (fh * 16, fw * 16), scales[i], params)
        assert torch.equal(got[i], ref)
    assert len(calls) == prefixes


@pytest.mark.usefixtures("one_torch_thread")
def test_extractor_with_batched_rpn_matches_default():
    small = {"min_size": 64, "max_size": 100, "rpn_pre_nms": 200, "rpn_post_nms": 6, "boxes": (2, 4)}
    ex = RegionExtractor.from_weights("random", device="cpu", **small)
    batched = RegionExtractor(ex.model, weights_info=ex.weights_info, device="cpu", batched_rpn=True, **small)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(2)]
    images.append(rng.integers(0, 255, (70, 50, 3), dtype=np.uint8))
    for a, b in zip(ex.extract(images), batched.extract(images)):
        assert a["num_boxes"] == b["num_boxes"]
        for key in ("boxes", "features", "object_ids", "attr_scores"):
            assert np.array_equal(a[key], b[key]), key


def test_fused_convs_need_folded_norms_and_decline_without_cudnn():
    from vlprep.extractors.regions.random_weights import random_model
    from vlprep.extractors.regions.trunk import Bottleneck, fold_frozen_batchnorm, use_fused_convs

    model = random_model(0)
    with pytest.raises(ValueError, match="folded"):
        use_fused_convs(model)
    fold_frozen_batchnorm(model)
    if not torch.cuda.is_available():  # no cuDNN: the probe fails, nothing is switched
        assert use_fused_convs(model) is False
        assert not any(m.fused for m in model.modules() if isinstance(m, Bottleneck))
    with pytest.raises(ValueError, match="fused_convs needs fold_bn"):
        RegionExtractor(model, weights_info={"weights_format": "random"}, fused_convs=True, fold_bn=False)


@pytest.mark.usefixtures("one_torch_thread")
def test_fused_convs_path_runs_and_matches_the_folded_model():
    """fused_convs=True once read fold_bn before setting it (AttributeError). The whole path runs here:
    folding, the cuDNN probe (declined on CPU, with a warning) and an extraction equal to fold_bn's."""
    small = {"min_size": 64, "max_size": 100, "rpn_pre_nms": 200, "rpn_post_nms": 6, "boxes": (2, 4)}
    base = RegionExtractor.from_weights("random", device="cpu", **small)
    folded = RegionExtractor(base.model, weights_info=base.weights_info, device="cpu", fold_bn=True, **small)
    with pytest.warns(UserWarning, match="cuDNN refused"):
        fused = RegionExtractor(
            base.model, weights_info=base.weights_info, device="cpu", fused_convs=True, **small
        )
    assert fused.fold_bn
    images = [np.random.default_rng(3).integers(0, 255, (48, 64, 3), dtype=np.uint8)]
    a, b = folded.extract(images)[0], fused.extract(images)[0]
    assert np.array_equal(a["boxes"], b["boxes"])
    np.testing.assert_allclose(a["features"], b["features"], rtol=1e-4, atol=1e-4)
