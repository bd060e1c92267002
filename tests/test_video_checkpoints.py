"""Checkpoint loading from synthetic files with each published layout (key names and shapes taken from
the key dumps of the real checkpoints), refusal of wrong layouts with the key named, and of pickles
that would run code."""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import pytest
import torch

from vlprep.extractors.video.checkpoints import CheckpointError, load_strict, read_state_dict
from vlprep.extractors.video.models import build_stream
from vlprep.extractors.video.recipes import S3D_NORMALISATION

# Key dumps of the published checkpoints (names and shapes only), copied from the reference notes.
KEYS = Path(__file__).parent / "data" / "video_keys"

LINE = re.compile(r"^(\S+) \(([\d, ]*)\)$")


def key_dump(name: str) -> list[tuple[str, tuple[int, ...]]]:
    out = []
    for line in (KEYS / name).read_text().splitlines():
        m = LINE.match(line)
        if m:
            out.append((m.group(1), tuple(int(v) for v in m.group(2).split(",") if v.strip())))
    return out


def synthetic(dump, prefix: str = "", counters: bool = True) -> dict[str, torch.Tensor]:
    """A state dict with the dump's names and shapes; every tensor distinct (so a mix-up shows)."""
    gen = torch.Generator().manual_seed(0)
    state = {}
    for i, (key, shape) in enumerate(dump):
        if key.endswith("num_batches_tracked"):
            if counters:
                state[prefix + key] = torch.tensor(i, dtype=torch.long)
            continue
        t = (
            torch.rand(shape, generator=gen) + 0.5
            if "running_var" in key
            else torch.randn(shape, generator=gen)
        )
        state[prefix + key] = t
    return state


def assert_loaded(model, expected: dict[str, torch.Tensor]):
    actual = model.state_dict()
    for key, value in expected.items():
        if not key.endswith("num_batches_tracked"):
            assert actual[key].data_ptr() == value.data_ptr() or torch.equal(actual[key], value), key


@pytest.fixture(scope="module")
def tv_s3d():
    return key_dump("tv_s3d_keys.txt")


def test_key_dumps_parse():
    assert len(key_dump("tv_s3d_keys.txt")) == 464
    assert len(key_dump("kylemin_keys.txt")) == 464
    assert len(key_dump("s3dg_howto100m_keys.txt")) == 537
    assert len(key_dump("vfe_resnext101_keys.txt")) == 626
    assert len(key_dump("tv_resnet152_keys.txt")) == 932


def test_s3d_torchvision_layout(tmp_path, tv_s3d):
    state = synthetic(tv_s3d)
    torch.save(state, tmp_path / "s3d-d76dad2f.pth")
    stream = build_stream("s3d", "s3d", str(tmp_path / "s3d-d76dad2f.pth"))
    assert_loaded(stream.model, state)
    assert stream.weights["format"] == "torchvision" and len(stream.weights["sha256"]) == 64
    scale, mean, std = S3D_NORMALISATION["torchvision"]
    assert stream.recipe.mean == mean and stream.recipe.std == std


@pytest.mark.parametrize("prefix", ["module.", ""])
@pytest.mark.parametrize("counters", [True, False])
def test_s3d_kylemin_layout(tmp_path, tv_s3d, prefix, counters):
    kylemin = key_dump("kylemin_keys.txt")
    state = synthetic(kylemin, prefix=prefix, counters=counters)
    path = tmp_path / "S3D_kinetics400.pt"
    torch.save(state, path)
    stream = build_stream("s3d", "s3d", str(path))
    assert stream.weights["format"] == "kylemin"
    # the two layouts list the same tensors in the same order: kylemin's i-th is torchvision's i-th
    loaded = stream.model.state_dict()
    for (k_key, shape), (tv_key, tv_shape) in zip(kylemin, tv_s3d, strict=True):
        assert shape == tv_shape
        if not k_key.endswith("num_batches_tracked"):
            assert torch.equal(loaded[tv_key], state[prefix + k_key]), (k_key, tv_key)
    assert stream.recipe.mean == (0.5, 0.5, 0.5) and stream.recipe.std == (0.5, 0.5, 0.5)  # [-1, 1] input


def test_resnet152_torchvision_layout(tmp_path):
    state = synthetic(key_dump("tv_resnet152_keys.txt"))
    torch.save(state, tmp_path / "resnet152-394f9c45.pth")
    stream = build_stream("2d", "resnet152", str(tmp_path / "resnet152-394f9c45.pth"))
    assert_loaded(stream.model, state)


@pytest.fixture(scope="module")
def resnext_state():
    return synthetic(key_dump("vfe_resnext101_keys.txt"), counters=False)


def test_resnext_vfe_and_hara_layouts(tmp_path, resnext_state):
    # VFE resnext101.pth: flat, no prefix
    torch.save(resnext_state, tmp_path / "resnext101.pth")
    stream = build_stream("3d", "resnext101-3d", str(tmp_path / "resnext101.pth"))
    assert_loaded(stream.model, resnext_state)
    # Hara's resnext-101-kinetics.pth: a training checkpoint around a DataParallel state dict
    wrapped = {
        "epoch": 200,
        "arch": "resnext-101",
        "state_dict": {"module." + k: v for k, v in resnext_state.items()},
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.1}]},
    }
    torch.save(wrapped, tmp_path / "resnext-101-kinetics.pth")
    stream = build_stream("3d", "resnext101-3d", str(tmp_path / "resnext-101-kinetics.pth"))
    assert_loaded(stream.model, resnext_state)


def test_resnext_wrong_layouts_name_the_key(tmp_path, resnext_state):
    from vlprep.extractors.video.resnext3d import resnext101_3d

    model = resnext101_3d()
    # shortcut A (no projection convs): the first missing name is the stage-1 projection
    no_b = {k: v for k, v in resnext_state.items() if ".downsample." not in k}
    with pytest.raises(CheckpointError, match=r"missing key 'layer1\.0\.downsample\.0\.weight'"):
        load_strict(model, no_b)
    # 3D-ResNets `master` definition: 128-wide stem
    master = dict(resnext_state, **{"conv1.weight": torch.zeros(128, 3, 7, 7, 7)})
    with pytest.raises(
        CheckpointError, match=r"key 'conv1\.weight'.*\(128, 3, 7, 7, 7\).*\(64, 3, 7, 7, 7\)"
    ):
        load_strict(model, master)
    extra = dict(resnext_state, **{"layer5.0.conv1.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match=r"unexpected key 'layer5\.0\.conv1\.weight'"):
        load_strict(model, extra)
    # a 2D ResNet checkpoint handed to the 3D model
    torch.save(synthetic(key_dump("tv_resnet152_keys.txt")[:40]), tmp_path / "r152.pth")
    with pytest.raises(CheckpointError, match=r"key 'conv1\.weight'|missing key"):
        build_stream("3d", "resnext101-3d", str(tmp_path / "r152.pth"))


def test_s3dg_howto100m_layout(tmp_path):
    dump = key_dump("s3dg_howto100m_keys.txt")
    # the word embedding (66250 x 300) is most of the file and unused here: keep its name, shrink nothing
    state = synthetic(dump)
    assert any(k.startswith("text_module.") for k in state)
    torch.save(state, tmp_path / "s3d_howto100m.pth")
    stream = build_stream("s3dg", "s3dg-howto100m", str(tmp_path / "s3d_howto100m.pth"))
    assert_loaded(stream.model, {k: v for k, v in state.items() if not k.startswith("text_module.")})
    assert stream.recipe.scale == 1 / 255 and stream.recipe.mean == (0.0, 0.0, 0.0)
    # the video tower still refuses a missing gate
    del state["mixed_5c.gating_b3.fc.bias"]
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(CheckpointError, match=r"missing key 'mixed_5c\.gating_b3\.fc\.bias'"):
        build_stream("s3dg", "s3dg-howto100m", str(tmp_path / "broken.pth"))


def test_s3d_refuses_other_layouts(tmp_path):
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "x.pth")
    with pytest.raises(CheckpointError, match="not an S3D checkpoint.*'conv1.weight'"):
        build_stream("s3d", "s3d", str(tmp_path / "x.pth"))


class _Exploit:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickles_that_run_code_are_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"conv1.weight": _Exploit(str(marker))}, f)
    with pytest.raises(CheckpointError, match="refused"):
        read_state_dict(path)
    assert not marker.exists()
    # the same through torch.save's zip format
    torch.save(
        {"conv1.weight": _Exploit(str(marker))},
        tmp_path / "evil_zip.pth",
        _use_new_zipfile_serialization=True,
    )
    with pytest.raises(CheckpointError, match="refused"):
        read_state_dict(tmp_path / "evil_zip.pth")
    assert not marker.exists()


def test_unreadable_files(tmp_path):
    (tmp_path / "garbage.pth").write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="cannot read|refused"):
        read_state_dict(tmp_path / "garbage.pth")
    with pytest.raises(CheckpointError, match="not found"):
        read_state_dict(tmp_path / "absent.pth")
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="not a state dict"):
        read_state_dict(tmp_path / "list.pth")
    torch.save({"a": torch.zeros(1), "b": "text"}, tmp_path / "mixed.pth")
    with pytest.raises(CheckpointError, match="entry 'b'"):
        read_state_dict(tmp_path / "mixed.pth")
