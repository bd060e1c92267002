"""The video models at their true architectures (random weights, small inputs where the architecture
allows), the extractor's clips and records per recipe, backend agreement, and the 2d3d combination."""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pytest
import torch

from vlprep.extractors.decode import DecodeError
from vlprep.extractors.decode.synthetic_video import read_frame_index, write_index_video
from vlprep.extractors.video import MODELS, ClipBatch, NonFiniteFeaturesError, VideoExtractor
from vlprep.extractors.video.models import FP16_MAX, Stream, activation_peak, build_stream
from vlprep.extractors.video.preprocess import normalise
from vlprep.extractors.video.recipes import S3DG_UNIVL

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """2 s, 25 fps, square (so a centre crop keeps the whole index code), frame i shows i."""
    path = tmp_path_factory.mktemp("videos") / "clip.mp4"
    times = write_index_video(path, num_frames=50, fps=25, width=64, height=64)
    return path, times


def small(stream, size):
    """The same network with a smaller input size (the architectures are fully convolutional)."""
    crop = None if stream.recipe.crop is None else size
    stream.recipe = replace(stream.recipe, size=size, crop=crop)
    return stream


@pytest.fixture(scope="module")
def streams():
    return {
        "s3d": small(build_stream("s3d", "s3d", "random"), 64),
        "2d": small(build_stream("2d", "resnet152", "random"), 32),
        "3d": small(build_stream("3d", "resnext101-3d", "random"), 48),  # true size in test_true_shapes...
        "s3dg": small(build_stream("s3dg", "s3dg-howto100m", "random"), 32),
    }


def extractor(model, streams, names, **kw):
    return VideoExtractor(model, [streams[n] for n in names], CPU, **kw)


def expected_clip_indices(times_written, fps, windows, duration):
    out = []
    for start, stop in windows:
        clip = []
        for pos in range(start, stop):
            t = pos / fps
            clip.append(
                None if t >= duration - 1e-9 else max(i for i, w in enumerate(times_written) if w <= t + 1e-9)
            )
        out.append(clip)
    return out


@pytest.mark.parametrize(
    ("model", "names", "dim", "stamps"),
    [
        ("s3d", ["s3d"], 1024, [[0.0, 1.5], [1.5, 2.0]]),  # 40 samples at 20 fps: one full, one padded clip
        ("resnet152", ["2d"], 2048, [[0.0, 1.0], [1.0, 2.0]]),
        ("resnext101-3d", ["3d"], 2048, [[0, 2 / 3], [2 / 3, 4 / 3], [4 / 3, 2.0]]),
        ("s3dg-howto100m", ["s3dg"], 1024, [[0.0, 1.0], [1.0, 2.0]]),
    ],
)
def test_real_architectures_records(video, streams, model, names, dim, stamps):
    path, _ = video
    ex = extractor(model, streams, names, batch_size=2)
    rec = ex.extract_file(path)
    assert rec["features"].dtype == np.float32 and rec["features"].shape == (len(stamps), dim)
    assert np.isfinite(rec["features"]).all() and rec["features"].std() > 0
    np.testing.assert_allclose(rec["timestamps"], stamps, atol=1e-6)
    assert rec["timestamps"].dtype == np.float32
    assert (rec["fps"], rec["duration"], rec["num_frames"]) == (25.0, 2.0, 50)
    # clips differ (the video changes)
    assert not np.allclose(rec["features"][0], rec["features"][-1])


def test_records_do_not_depend_on_the_batch_size(video, streams):
    path, _ = video
    # S3D: with random weights it is the best conditioned of the small ones (S3D-G's random gates
    # amplify float summation-order differences)
    a = extractor("s3d", streams, ["s3d"], batch_size=1).extract_file(path)
    b = extractor("s3d", streams, ["s3d"], batch_size=3).extract_file(path)
    np.testing.assert_allclose(
        a["features"], b["features"], rtol=1e-4, atol=1e-4 * np.abs(a["features"]).max()
    )


def test_true_shapes_inside_the_networks(streams):
    seen = {}

    def keep(name):
        def hook(module, inputs, output):
            seen[name] = tuple(output.shape)

        return hook

    s3dg = streams["s3dg"].model
    h = s3dg.mixed_5c.register_forward_hook(keep("s3dg"))
    with torch.inference_mode():
        s3dg.forward_features(torch.zeros(1, 3, 16, 64, 64))
    h.remove()
    assert seen["s3dg"] == (1, 1024, 2, 2, 2)  # T/8, H/32, W/32
    resnext = streams["3d"].model
    h = resnext.layer4.register_forward_hook(keep("3d"))
    with torch.inference_mode():
        resnext.forward_features(torch.zeros(1, 3, 16, 112, 112))
    h.remove()
    assert seen["3d"] == (1, 2048, 1, 4, 4)  # the reference's AvgPool3d((1, 4, 4)) input
    assert sum(p.numel() for p in resnext.parameters()) == 48_340_816
    assert sum(p.numel() for p in streams["s3d"].model.parameters()) == 8_320_048
    assert sum(p.numel() for p in streams["2d"].model.parameters()) == 60_192_808
    assert sum(p.numel() for p in s3dg.parameters()) == 9_670_800


@pytest.mark.parametrize("model,names", [("s3d", ["s3d"]), ("resnext101-3d", ["3d"]), ("resnet152", ["2d"])])
def test_clips_hold_the_frames_the_plan_names(video, streams, model, names):
    path, written = video
    ex = extractor(model, streams, names, batch_size=2)
    decoded = ex.decode_clips(path)
    (plan,) = decoded.plans.values()
    recipe = streams[names[0]].recipe
    expected = expected_clip_indices(written, recipe.fps, plan.windows, decoded.meta.duration)
    seen = []
    for batch in decoded.batches():
        size = recipe.crop or recipe.size
        assert batch.clips.dtype == torch.uint8 and batch.clips.shape[1:] == (recipe.clip_len, size, size, 3)
        for clip in batch.clips.numpy():
            seen.append([None if not frame.any() else read_frame_index(frame) for frame in clip])
    # a padded frame is black, which reads as None here; frame 0 is black too
    assert [[0 if i is None else i for i in c] for c in seen] == [
        [0 if i is None else i for i in c] for c in expected
    ]
    assert sum(i is None for c in expected for i in c) == sum(1 for c in seen for i in c if i is None) - sum(
        1 for c in expected for i in c if i == 0
    )


def test_every_decoder_gives_the_same_features(video, streams):
    """The decoders return identical pixels (test_decode_video.py), so `--decoder` and `auto`'s choice
    leave the features unchanged to the last bit."""
    from vlprep.extractors.decode.open import backend_problem

    path, _ = video
    decoders = ["pyav", "decord"] + (
        ["torchcodec"] if os.environ.get("CI") or backend_problem("torchcodec") is None else []
    )
    records = {
        d: extractor("s3dg-howto100m", streams, ["s3dg"], decoder=d).extract_file(path) for d in decoders
    }
    for d in decoders[1:]:
        np.testing.assert_array_equal(records[d]["features"], records["pyav"]["features"], err_msg=d)
        np.testing.assert_array_equal(records[d]["timestamps"], records["pyav"]["timestamps"])


def test_2d3d_rows_per_second(video, streams):
    path, _ = video
    rec = extractor("2d3d", streams, ["2d", "3d"], keep_streams=True).extract_file(path)
    assert rec["features"].shape == (2, 4096)
    np.testing.assert_allclose(rec["timestamps"], [[0, 1], [1, 2]])
    only_2d = extractor("resnet152", streams, ["2d"]).extract_file(path)
    only_3d = extractor("resnext101-3d", streams, ["3d"]).extract_file(path)
    np.testing.assert_allclose(rec["features"][:, :2048], only_2d["features"], rtol=1e-5)
    # 3D clips are 2/3 s: second 0 overlaps clips 0 and 1, second 1 overlaps clips 1 and 2
    f3d = only_3d["features"]
    np.testing.assert_allclose(rec["features"][:, 2048:], [f3d[[0, 1]].max(0), f3d[[1, 2]].max(0)], rtol=1e-5)
    np.testing.assert_array_equal(rec["features_2d"], rec["features"][:, :2048])
    np.testing.assert_array_equal(rec["features_3d"], rec["features"][:, 2048:])


def test_s3dg_embedding(video, streams):
    path, _ = video
    ex = extractor("s3dg-howto100m", streams, ["s3dg"], with_embedding=True)
    rec = ex.extract_file(path)
    assert rec["embedding"].shape == (2, 512)
    fc = streams["s3dg"].model.fc
    expected = torch.from_numpy(rec["features"]) @ fc.weight.T + fc.bias
    np.testing.assert_allclose(rec["embedding"], expected.numpy(), rtol=1e-4, atol=1e-5)


def test_producer_and_options(streams):
    ex = extractor("2d3d", streams, ["2d", "3d"])
    prod = ex.producer
    assert prod["model"] == "2d3d" and prod["feature_dim"] == 4096
    assert prod["streams"]["3d"]["weights_sha256"] == "random"
    assert (
        prod["streams"]["3d"]["recipe"]["fps"] == 24.0 and prod["streams"]["3d"]["recipe"]["clip_len"] == 16
    )
    assert prod["streams"]["2d"]["recipe"]["crop"] is None
    assert "frame_rule" in prod and prod["decoder"] == "auto"
    assert set(MODELS) == {"s3d", "resnet152", "resnext101-3d", "2d3d", "s3dg-howto100m"}
    with pytest.raises(ValueError, match="unknown video model"):
        VideoExtractor.from_weights(model="i3d")
    with pytest.raises(ValueError, match="takes 2 weights"):
        VideoExtractor.from_weights(model="2d3d", weights="a.pth")
    with pytest.raises(ValueError, match="precision"):
        extractor("s3d", streams, ["s3d"], precision="int8")
    with pytest.raises(ValueError, match="fp16 needs a GPU"):
        extractor("s3d", streams, ["s3d"], precision="fp16")


def test_from_weights_defaults(video):
    path, _ = video
    ex = VideoExtractor.from_weights(model="s3dg-howto100m", weights="random", device="cpu", seed=3)
    assert ex.producer["streams"]["s3dg"]["seed"] == 3 and ex.device == CPU
    # the model alone takes its recipe, and the producer names it with its sampling rule
    assert (ex.producer["recipe"], ex.producer["sampling"], ex.producer["overrides"]) == (
        "milnce",
        "ffmpeg-fps",
        {},
    )
    ex.streams["s3dg"].recipe = replace(ex.streams["s3dg"].recipe, size=32, crop=32)
    assert ex.extract_file(path)["features"].shape == (2, 1024)


def test_broken_video_raises_decode_error(tmp_path, streams):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100)
    with pytest.raises(DecodeError):
        extractor("s3dg-howto100m", streams, ["s3dg"]).extract_file(bad)


def unlike_clips(recipe, size):
    """uint8 [3, T, size, size, 3]: a smooth clip, white noise and black (a padded tail), all unlike
    the calibration clips of the random weights."""
    gen = torch.Generator().manual_seed(1)
    shape = (recipe.clip_len, size, size)
    coarse = torch.rand((1, 3, recipe.clip_len, 4, 4), generator=gen) * 255
    smooth = torch.nn.functional.interpolate(coarse, size=shape, mode="trilinear").round().to(torch.uint8)
    noise = torch.randint(0, 256, (1, 3, *shape), generator=gen, dtype=torch.uint8)
    black = torch.zeros((1, 3, *shape), dtype=torch.uint8)
    return torch.cat([smooth, noise, black]).permute(0, 2, 3, 4, 1).contiguous()


@pytest.mark.parametrize("name", ["s3d", "2d", "3d", "s3dg"])
def test_random_weights_stay_far_inside_the_fp16_range(streams, name):
    # fp16 autocast stores every layer's output in float16, which ends at 65504. The 3D ResNeXt with
    # full-scale residual branches and 64 px calibration peaked at 7.7e4 in layer3 on such clips (NaN in
    # fp16 on the GPU). Activations grow with the input size (about 10x from 48 px to the recipes' true
    # sizes for S3D), hence the margin.
    stream = streams[name]
    x = normalise(unlike_clips(stream.recipe, 48), stream.recipe)
    layer, peak = activation_peak(stream.model, x)
    assert peak < FP16_MAX / 64, (name, layer, peak)


def test_resnext_in_emulated_fp16_matches_fp32(streams):
    """The model that overflowed, run under CPU fp16 autocast (float16 storage, like the GPU's)."""
    stream = streams["3d"]
    x = normalise(unlike_clips(stream.recipe, 48)[1:2], stream.recipe)  # the noise clip
    with torch.inference_mode():
        full = stream.model.forward_features(x)
        with torch.autocast("cpu", dtype=torch.float16):
            half = stream.model.forward_features(x)
    assert half.dtype == torch.float16 and torch.isfinite(half).all()
    assert float((half.float() - full).norm() / full.norm()) < 0.05


def test_random_weights_are_deterministic_and_damped(streams):
    again = build_stream("3d", "resnext101-3d", "random", seed=0).model.state_dict()
    for key, value in streams["3d"].model.state_dict().items():
        assert torch.equal(value, again[key]), key
    # the last BatchNorm of each residual branch is damped, the others are not
    assert (again["layer3.22.bn3.weight"] == 0.2).all() and (again["layer3.22.bn2.weight"] == 1).all()
    other = build_stream("s3dg", "s3dg-howto100m", "random", seed=1).model.state_dict()
    assert not torch.equal(
        other["conv1.conv1.weight"], streams["s3dg"].model.state_dict()["conv1.conv1.weight"]
    )


class Overflowing(torch.nn.Module):
    """Features inf for every clip whose first pixel is white."""

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        first = x[:, :1, 0, 0, 0]
        return torch.where(first > 0.5, torch.inf, 0.0).expand(-1, 4)


def test_non_finite_features_raise():
    recipe = replace(S3DG_UNIVL, clip_len=2, size=4, crop=4)
    stream = Stream("s3dg", "overflowing", Overflowing(), recipe, 4, {"source": "random"})
    clips = torch.zeros((5, 2, 4, 4, 3), dtype=torch.uint8)
    clips[[1, 3], 0, 0, 0] = 255
    ex = VideoExtractor("s3dg-howto100m", [stream], CPU, precision="bf16")
    with pytest.raises(NonFiniteFeaturesError, match=r"NaN/inf features for clips 11, 13 at bf16"):
        ex.embed(ClipBatch("s3dg", 10, clips))
    clips[[1, 3], 0, 0, 0] = 0
    assert np.isfinite(ex.embed(ClipBatch("s3dg", 10, clips))["features"]).all()
    ex.precision = "fp16"  # the GPU's case (the constructor refuses fp16 on CPU): the advice names bf16
    with pytest.raises(NonFiniteFeaturesError, match="fp16 overflows above 65504.*'bf16'"):
        ex.embed(ClipBatch("s3dg", 0, torch.full((1, 2, 4, 4, 3), 255, dtype=torch.uint8)))
