"""`--image-decode gpu`: the decode tasks send JPEG bytes and the model actor decodes them with
torchvision's `decode_jpeg` on its device. What runs without a GPU: the decode-from-bytes path on the CPU
(libjpeg-turbo through torchvision) against PIL's decode, the choice of files that go to the device, the
per-item CPU fallback for every other file, the actor's side with a real (small) extractor, and the
refusal before Ray starts when there is no CUDA."""

from __future__ import annotations

import io

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from vlprep.extractors.decode.errors import DecodeError
from vlprep.extractors.decode.image import decode_image, decode_jpegs, jpeg_for_device
from vlprep.extractors.regions.config import RegionConfig
from vlprep.pipelines.config import ConfigError
from vlprep.pipelines.inputs import Item
from vlprep.pipelines.regions import EncodedJpeg, _Model, check_image_decode, decode, describe, run_batch
from vlprep.pipelines.runner import Failure


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth gradients plus noise: chroma detail that the decoders' upsampling must agree on."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([(xx * 3) % 256, (yy * 2) % 256, (xx + yy) % 256], axis=2)
    return np.clip(base + rng.integers(0, 50, size=(h, w, 3)), 0, 255).astype(np.uint8)


def _encode(pixels: np.ndarray, mode: str = "RGB", fmt: str = "JPEG", **options) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buf, format=fmt, **options)
    return buf.getvalue()


def _corrupt(data: bytes) -> bytes:
    """Scrambled entropy-coded data with stray markers: the header still reads, the end marker is there,
    and neither libjpeg-turbo binding decodes it."""
    out = bytearray(data)
    for i in range(len(out) // 2, len(out) // 2 + 40):
        out[i] = 0xFF if i % 7 == 0 else out[i] ^ 0x5A
    return bytes(out)


def _rotated_jpeg(pixels: np.ndarray) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": PIL's path applies it, torchvision's GPU path cannot
    return _encode(pixels, exif=exif.tobytes())


JPEGS = {
    "rgb 4:2:0, odd size": lambda: _encode(_photo(37, 53), quality=90),
    "rgb 4:4:4": lambda: _encode(_photo(48, 64, 1), quality=95, subsampling=0),
    "rgb 4:2:2": lambda: _encode(_photo(40, 70, 2), quality=80, subsampling=1),
    "progressive": lambda: _encode(_photo(100, 75, 3), quality=85, progressive=True),
    "grayscale": lambda: _encode(_photo(64, 80, 4), "L"),
}


@pytest.mark.parametrize("name", list(JPEGS))
def test_decoding_jpeg_bytes_on_the_cpu_equals_pil(name):
    data = JPEGS[name]()
    assert jpeg_for_device(data)
    [pixels] = decode_jpegs([data], "cpu")
    reference = decode_image(data)  # PIL, what the CPU decode tasks run
    assert pixels.dtype == np.uint8 and pixels.shape == reference.shape
    # both are libjpeg-turbo with its default IDCT and upsampling: equal, within one level at most
    assert np.abs(pixels.astype(int) - reference.astype(int)).max() <= 1


def test_a_batch_decodes_at_once_and_a_bad_file_fails_alone():
    good = [JPEGS[name]() for name in JPEGS]
    out = decode_jpegs([good[0], _corrupt(good[0]), good[1]], "cpu")
    assert isinstance(out[1], DecodeError) and "JPEG decoding on cpu failed" in str(out[1])
    assert np.array_equal(out[0], decode_image(good[0])) and np.array_equal(out[2], decode_image(good[1]))


def test_only_jpegs_the_device_decodes_like_the_cpu_go_to_it():
    photo = _photo(40, 60)
    jpeg = _encode(photo)
    assert jpeg_for_device(jpeg)
    assert not jpeg_for_device(_encode(photo, fmt="PNG"))
    assert not jpeg_for_device(_encode(photo, "CMYK"))  # CMYK JPEG: PIL converts, nvjpeg does not
    assert not jpeg_for_device(_rotated_jpeg(photo))  # EXIF rotation: applied on the CPU only
    assert not jpeg_for_device(jpeg[: len(jpeg) // 2])  # truncated: decode_image says so
    assert not jpeg_for_device(b"")
    assert not jpeg_for_device(b"\xff\xd8 not a jpeg \xff\xd9")
    assert not jpeg_for_device(jpeg, max_pixels=100)  # a bomb is refused by decode_image, not decoded


def test_decode_tasks_send_jpeg_bytes_and_decode_every_other_file(tmp_path):
    photo = _photo(30, 40)
    (tmp_path / "a.jpg").write_bytes(_encode(photo))
    (tmp_path / "b.png").write_bytes(_encode(photo, fmt="PNG"))
    (tmp_path / "c.jpg").write_bytes(_rotated_jpeg(photo))
    (tmp_path / "d.jpg").write_bytes(b"not an image")
    sent = decode(Item("a", str(tmp_path / "a.jpg")), on_gpu=True)
    assert isinstance(sent, EncodedJpeg) and sent.data == (tmp_path / "a.jpg").read_bytes()
    assert np.array_equal(decode(Item("b", str(tmp_path / "b.png")), on_gpu=True), photo)
    rotated = decode(Item("c", str(tmp_path / "c.jpg")), on_gpu=True)
    assert rotated.shape == (40, 30, 3)  # decoded on the CPU, EXIF applied
    with pytest.raises(DecodeError, match="not an image"):
        decode(Item("d", str(tmp_path / "d.jpg")), on_gpu=True)


@pytest.fixture(scope="module")
def small_model():
    from vlprep.extractors.regions import RegionExtractor

    config = RegionConfig(
        weights="random",
        device="cpu",
        min_size=64,
        max_size=96,
        boxes=(2, 4),
        rpn_pre_nms=100,
        rpn_post_nms=8,
    )
    return _Model(RegionExtractor.from_config(config), None, None)


def test_the_actor_decodes_jpeg_bytes_into_the_same_records(small_model):
    jpeg, other = _encode(_photo(60, 80)), _encode(_photo(50, 70, 5), fmt="PNG")
    broken = _corrupt(_encode(_photo(60, 80, 6)))
    assert jpeg_for_device(broken)  # it goes to the device, fails there, then fails on the CPU too
    items = [Item("j", "/in/j.jpg"), Item("p", "/in/p.png"), Item("x", "/in/x.jpg")]
    on_device = run_batch(
        small_model, list(zip(items, [EncodedJpeg(jpeg), decode_image(other), EncodedJpeg(broken)]))
    )
    on_cpu = run_batch(small_model, list(zip(items[:2], [decode_image(jpeg), decode_image(other)])))
    for got, want in zip(on_device[:2], on_cpu, strict=True):
        assert set(got) == set(want)
        for key in want:
            assert np.array_equal(np.asarray(got[key]), np.asarray(want[key])), key
    failure = on_device[2]
    assert isinstance(failure, Failure) and failure.stage == "decode"
    assert failure.message.startswith("DecodeError: /in/x.jpg: corrupt image data"), failure.message
    assert "image_decode" not in describe(small_model)  # a CPU-decoded store keeps its producer


def test_gpu_decode_is_refused_before_ray_without_cuda(tmp_path, monkeypatch):
    import torch

    from vlprep.cli import cli

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # also on a machine that has one
    with pytest.raises(ConfigError, match="model runs on cpu"):
        check_image_decode(RegionConfig(device="cpu", image_decode="gpu"), local=False)
    check_image_decode(RegionConfig(device="cuda", image_decode="gpu"), local=False)  # a cluster's GPUs
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.jpg").write_bytes(_encode(_photo(30, 40)))
    runner = CliRunner()
    args = ["regions", str(tmp_path / "imgs"), "--out", str(tmp_path / "s"), "--weights", "random"]
    for extra, reason in (([], "torch sees none on this machine"), (["--device", "cpu"], "runs on cpu")):
        result = runner.invoke(cli, [*args, "--image-decode", "gpu", *extra])
        assert result.exit_code == 2, result.output
        lines = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and reason in lines[0] and "--image-decode cpu" in lines[0], result.output
        assert "Traceback" not in result.output and not (tmp_path / "s").exists()
