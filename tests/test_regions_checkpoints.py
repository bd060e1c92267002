"""Strict loading of synthetic checkpoints in the three published layouts, built here from the random
model's state dict (and, for MILVLG, this file's own inverse of the conversion), plus refusal of
pickles that would run code."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from vlprep.extractors.regions import RegionExtractor, checkpoints
from vlprep.extractors.regions.anchors import caffe_cell_anchors
from vlprep.extractors.regions.checkpoints import CheckpointError, load_state, read_checkpoint
from vlprep.extractors.regions.model import ANCHORS_KEY, VGFasterRCNN
from vlprep.extractors.regions.random_weights import random_model

P = "roi_heads.box_predictor."
RPN = "proposal_generator.rpn_head.objectness_logits."


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    # float16-representable values: the files below are written in float16 (half the bytes) and
    # must load back to exactly these weights.
    return {k: v.half().float() for k, v in random_model(seed=0).state_dict().items()}


def _d2_pickle(state, path, with_anchors=True):
    model = {k: v.half().numpy() for k, v in state.items() if with_anchors or k != ANCHORS_KEY}
    with open(path, "wb") as f:
        pickle.dump({"model": model, "__author__": "vlprep tests"}, f, protocol=4)
    return path


def to_milvlg(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The published MILVLG layout (reference/regions_checkpoints.md §1.3, §3, §4), written
    independently of the library's conversion: background / no-attribute first, a (bg, fg) softmax
    pair per anchor, 6404 bbox rows for regression weights (1, 1, 1, 1), Caffe head names."""
    s = {k: v.clone() for k, v in state.items()}
    gen = torch.Generator().manual_seed(1)
    for suffix in ("weight", "bias"):
        fg_minus_bg = s.pop(RPN + suffix)
        bg = torch.randn(fg_minus_bg.shape, generator=gen).half().float()
        s[RPN + suffix] = torch.cat([bg, bg + fg_minus_bg])
        cls = s.pop(P + "cls_score." + suffix)
        s[P + "cls_score." + suffix] = torch.cat([cls[-1:], cls[:-1]])
        bbox = s.pop(P + "bbox_pred." + suffix)
        scale = torch.tensor([10.0, 10.0, 5.0, 5.0]).repeat(1600).reshape(-1, *([1] * (bbox.dim() - 1)))
        background_rows = torch.randn((4,) + tuple(bbox.shape[1:]), generator=gen)
        s[P + "bbox_pred." + suffix] = torch.cat([background_rows, bbox / scale])
        s[P + "attr_linear1." + suffix] = s.pop(P + "fc_attr." + suffix)
        attr = s.pop(P + "attr_score." + suffix)
        s[P + "attr_linear2." + suffix] = torch.cat([attr[-1:], attr[:-1]])
    emb = s.pop(P + "cls_embedding.weight")
    s[P + "cls_embed.weight"] = torch.cat([emb[-1:], emb[:-1]])
    return s


def _assert_loaded(model: VGFasterRCNN, state, rtol=0.0, atol=0.0):
    got = model.state_dict()
    assert set(got) == set(state)
    for k, v in state.items():
        assert torch.allclose(got[k], v, rtol=rtol, atol=atol), k


def test_d2_pickle_strict_load(state, tmp_path):
    path = _d2_pickle(state, tmp_path / "faster_rcnn_from_caffe_attr.pkl")
    model = VGFasterRCNN(anchor_convention="caffe")  # must be overwritten by the stored anchors
    loaded = checkpoints.load_weights(model, path)
    assert loaded.format == "d2" and loaded.anchors_from_checkpoint and not loaded.plus_one
    assert len(loaded.sha256) == 64
    _assert_loaded(model, state)


def test_hf_bin_strict_load_with_bn_counters(state, tmp_path):
    sd = {k: v.half() for k, v in state.items()}
    for key in [k for k in state if k.endswith("running_var")]:
        sd[key[: -len("running_var")] + "num_batches_tracked"] = torch.tensor(0)
    path = tmp_path / "pytorch_model.bin"
    torch.save(sd, path)
    model = VGFasterRCNN()
    loaded = checkpoints.load_weights(model, path)
    assert loaded.format == "hf"
    _assert_loaded(model, state)


def test_milvlg_pth_strict_load(state, tmp_path):
    milvlg = to_milvlg(state)
    assert milvlg[RPN + "weight"].shape[0] == 24 and milvlg[P + "bbox_pred.weight"].shape[0] == 6404
    path = tmp_path / "bua-caffe-frcn-r101-k36.pth"
    torch.save({"model": {k: v.half() for k, v in milvlg.items()}}, path)
    model = VGFasterRCNN()
    loaded = checkpoints.load_weights(model, path)
    assert loaded.format == "milvlg" and loaded.plus_one
    # fg - bg and the x10/x5 scaling are computed in float32 from float16 values
    _assert_loaded(model, state, rtol=1e-3, atol=2e-3)


def test_milvlg_without_anchors_gets_caffe_table(state):
    milvlg = to_milvlg(state)
    del milvlg[ANCHORS_KEY]
    model = VGFasterRCNN()
    assert load_state(model, checkpoints.convert_milvlg(milvlg), "milvlg") is False
    assert np.array_equal(model.state_dict()[ANCHORS_KEY].numpy(), caffe_cell_anchors())


def _extractor(model, fmt, **kw):
    return RegionExtractor(
        model,
        weights_info={"weights": "test", "weights_sha256": "test", "weights_format": fmt},
        boxes=(2, 4),
        min_size=64,
        max_size=96,
        rpn_pre_nms=200,
        rpn_post_nms=6,
        **kw,
    )


def test_milvlg_twin_gives_the_same_records(state):
    d2_model, milvlg_model = VGFasterRCNN(), VGFasterRCNN()
    load_state(d2_model, state, "d2")
    load_state(milvlg_model, checkpoints.convert_milvlg(to_milvlg(state)), "milvlg")
    rng = np.random.default_rng(3)
    images = [np.clip(rng.normal(120, 60, (64, 90, 3)), 0, 255).astype(np.uint8)]
    boxes = [np.array([[4, 4, 60, 50], [30, 10, 89, 63]], np.float32)]

    # Given boxes: no box convention involved, so features and scores must agree as they are.
    a = _extractor(d2_model, "d2", policy="given").extract(images, boxes)[0]
    b = _extractor(milvlg_model, "milvlg", policy="given").extract(images, boxes)[0]
    assert np.allclose(a["features"], b["features"], rtol=1e-4, atol=1e-4)
    assert np.array_equal(a["object_ids"], b["object_ids"]) and np.array_equal(a["attr_ids"], b["attr_ids"])
    assert np.allclose(a["object_scores"], b["object_scores"], atol=1e-4)
    assert np.allclose(a["attr_scores"], b["attr_scores"], atol=1e-4)

    # Detected boxes: the twins differ only in the +1 convention; with it fixed, records agree.
    for policy in ("caffe", "maxnms"):
        a = _extractor(d2_model, "d2", policy=policy, plus_one=True).extract(images)[0]
        b = _extractor(milvlg_model, "milvlg", policy=policy).extract(images)[0]
        assert a["num_boxes"] == b["num_boxes"], policy
        assert np.allclose(a["boxes"], b["boxes"], atol=1e-2), policy
        assert np.allclose(a["features"], b["features"], rtol=1e-4, atol=1e-4), policy
        assert np.array_equal(a["object_ids"], b["object_ids"]), policy


def test_missing_unexpected_and_mismatched_keys_are_named(state):
    broken = dict(state)
    del broken["backbone.res4.7.conv2.weight"]
    broken["roi_heads.box_predictor.extra.weight"] = torch.zeros(3)
    broken["backbone.stem.conv1.norm.num_batches_tracked"] = torch.tensor(0)  # tolerated
    with pytest.raises(CheckpointError) as err:
        load_state(VGFasterRCNN(), broken, "d2")
    message = str(err.value)
    assert "backbone.res4.7.conv2.weight" in message and "roi_heads.box_predictor.extra.weight" in message
    assert "num_batches_tracked" not in message

    broken = dict(state)
    broken[P + "cls_score.weight"] = torch.zeros(1600, 2048)
    with pytest.raises(CheckpointError, match=r"cls_score.weight \[1600, 2048\] \(model \[1601, 2048\]\)"):
        load_state(VGFasterRCNN(), broken, "d2")


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_code_running_pickles_are_refused(tmp_path):
    marker = tmp_path / "pwned"
    pkl = tmp_path / "evil.pkl"
    pkl.write_bytes(pickle.dumps({"model": {"x": _RunsCode(marker)}}))
    with pytest.raises(CheckpointError, match="refusing to unpickle global"):
        read_checkpoint(pkl)
    pth = tmp_path / "evil.pth"
    torch.save({"x": _RunsCode(marker)}, pth)
    with pytest.raises(CheckpointError, match="never runs code") as refused:
        read_checkpoint(pth)
    assert "weights_only" not in str(refused.value)  # not torch's advice to load it unsafely
    legacy = tmp_path / "evil.bin"
    legacy.write_bytes(pickle.dumps({"x": _RunsCode(marker)}))
    with pytest.raises(CheckpointError):
        read_checkpoint(legacy)
    assert not marker.exists()


def test_python2_style_protocol_2_pickle(tmp_path):
    # Old detectron pickles are protocol 2, where Python 3 writes array bytes via _codecs.encode.
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([1, 2], np.int64)}
    path = tmp_path / "old.pkl"
    path.write_bytes(pickle.dumps({"model": arrays, "__author__": "Caffe2"}, protocol=2))
    state, container = read_checkpoint(path)
    assert container == "pickle" and torch.equal(state["a"], torch.from_numpy(arrays["a"]))
    assert state["b"].tolist() == [1, 2]


def test_non_array_entries_and_unknown_layouts(tmp_path):
    path = tmp_path / "odd.pkl"
    path.write_bytes(pickle.dumps({"model": {"a": np.zeros(2, np.float32), "b": "text"}}))
    with pytest.raises(CheckpointError, match="'b'"):
        read_checkpoint(path)
    path.write_bytes(pickle.dumps({"model": {"a": np.zeros(2, np.float32)}}))
    with pytest.raises(CheckpointError, match="cannot tell"):
        checkpoints.load_weights(VGFasterRCNN(), path)


def test_random_weights_are_reproducible(state):
    again = random_model(seed=0).state_dict()
    for key in (
        "backbone.stem.conv1.weight",
        "backbone.res4.22.conv3.norm.running_var",
        P + "cls_score.bias",
        P + "attr_score.weight",
        RPN + "weight",
    ):
        assert torch.equal(again[key].half().float(), state[key]), key
