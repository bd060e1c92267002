"""decode_image: every awkward-but-valid image becomes RGB uint8; every broken one a DecodeError
that says why."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from vlprep.extractors.decode import DecodeError, decode_image


def _gradient(h: int = 24, w: int = 32) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), np.full_like(x, 90)], axis=2).astype(np.uint8)


def _save(img: Image.Image, path, **kw):
    img.save(path, **kw)
    return path


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels, with almost no data: what a bomb looks like
    before decoding."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def test_rgb_jpeg_and_bytes_input(tmp_path):
    path = _save(Image.fromarray(_gradient()), tmp_path / "a.jpg", quality=95)
    out = decode_image(path)
    assert out.dtype == np.uint8 and out.shape == (24, 32, 3) and out.flags["C_CONTIGUOUS"]
    assert np.abs(out.astype(int) - _gradient()).mean() < 4
    assert np.array_equal(decode_image(path.read_bytes()), out)
    assert np.array_equal(decode_image(str(path)), out)


def test_progressive_jpeg_webp_bmp_tiff(tmp_path):
    img = Image.fromarray(_gradient())
    for name, kw in [
        ("p.jpg", {"progressive": True, "quality": 95}),
        ("a.webp", {"lossless": True}),
        ("a.bmp", {}),
        ("a.tif", {}),
    ]:
        out = decode_image(_save(img, tmp_path / name, **kw))
        assert out.shape == (24, 32, 3), name
        assert np.abs(out.astype(int) - _gradient()).mean() < 4, name


def test_exif_orientation_is_applied(tmp_path):
    img = Image.fromarray(_gradient(24, 32))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = _save(img, tmp_path / "rot.jpg", exif=exif, quality=95)
    out = decode_image(path)
    assert out.shape == (32, 24, 3)
    expected = np.rot90(_gradient(24, 32), k=-1)
    assert np.abs(out.astype(int) - expected).mean() < 4


def test_grayscale_palette_bilevel_and_alpha(tmp_path):
    rgb = _gradient()
    gray = Image.fromarray(rgb).convert("L")
    out = decode_image(_save(gray, tmp_path / "g.png"))
    assert out.shape == (24, 32, 3)
    assert np.array_equal(out[..., 0], np.asarray(gray)) and np.array_equal(out[..., 0], out[..., 2])

    la = Image.merge("LA", [gray, Image.new("L", gray.size, 10)])
    assert np.array_equal(decode_image(_save(la, tmp_path / "la.png"))[..., 1], np.asarray(gray))

    rgba = Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 0, np.uint8)]), "RGBA")
    # Fully transparent pixels keep their colour: the alpha channel is dropped, as OpenCV's imread does.
    assert np.array_equal(decode_image(_save(rgba, tmp_path / "rgba.png")), rgb)

    palette = Image.fromarray(rgb).quantize(colors=16)
    out = decode_image(_save(palette, tmp_path / "p.png"))
    assert np.array_equal(out, np.asarray(palette.convert("RGB")))

    palette.info["transparency"] = 0
    out = decode_image(_save(palette, tmp_path / "pt.png", transparency=0))
    assert out.shape == (24, 32, 3)

    bilevel = gray.point(lambda v: 255 if v > 128 else 0).convert("1")
    out = decode_image(_save(bilevel, tmp_path / "b.png"))
    assert set(np.unique(out)) <= {0, 255} and out.shape == (24, 32, 3)


def test_cmyk_jpeg(tmp_path):
    cmyk = Image.fromarray(_gradient()).convert("CMYK")
    path = _save(cmyk, tmp_path / "c.jpg", quality=95)
    assert Image.open(path).mode == "CMYK"
    out = decode_image(path)
    assert out.shape == (24, 32, 3)
    assert np.abs(out.astype(int) - _gradient()).mean() < 6


def test_sixteen_bit_gray_and_rgb(tmp_path):
    ramp = (np.arange(24 * 32).reshape(24, 32) * 80).astype(np.uint16)
    path = _save(Image.fromarray(ramp), tmp_path / "g16.png")
    out = decode_image(path)
    assert out.shape == (24, 32, 3)
    assert np.abs(out[..., 0].astype(int) - np.rint(ramp / 257.0)).max() <= 1

    rgb16 = (_gradient().astype(np.uint16) * 257)[:, :, ::-1]  # OpenCV writes BGR
    path = tmp_path / "rgb16.png"
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb16))
    out = decode_image(path)
    assert np.abs(out.astype(int) - _gradient()).max() <= 1

    small = (np.arange(24 * 32).reshape(24, 32) % 256).astype(np.int32)
    out = decode_image(_save(Image.fromarray(small, mode="I"), tmp_path / "i32.tif"))
    assert np.array_equal(out[..., 0], small.astype(np.uint8))  # 8-bit values in a 32-bit image stay

    floats = Image.fromarray((ramp / ramp.max()).astype(np.float32), mode="F")
    out = decode_image(_save(floats, tmp_path / "f.tif"))
    assert out[..., 0].max() == 255 and out[..., 0].min() == 0


def test_animated_gif_gives_first_frame(tmp_path):
    frames = [Image.fromarray(np.full((8, 8, 3), v, np.uint8)) for v in (200, 30)]
    path = tmp_path / "a.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50)
    out = decode_image(path)
    assert out.shape == (8, 8, 3) and abs(int(out.mean()) - 200) <= 2


@pytest.mark.parametrize(
    "kind",
    [
        "empty",
        "missing",
        "text",
        "truncated_jpeg",
        "truncated_png",
        "corrupt_png",
        "bomb_header",
        "bomb_limit",
        "huge_header",
    ],
)
def test_broken_files_raise_decode_error_with_reason(tmp_path, kind):
    good_jpg = io.BytesIO()
    Image.fromarray(_gradient(64, 64)).save(good_jpg, "JPEG", quality=95)
    good_png = io.BytesIO()
    Image.fromarray(_gradient(64, 64)).save(good_png, "PNG")
    path = tmp_path / f"{kind}.bin"
    kwargs = {}
    if kind == "empty":
        path.write_bytes(b"")
        reason = "empty"
    elif kind == "missing":
        path = tmp_path / "nope.jpg"
        reason = "cannot read"
    elif kind == "text":
        path.write_text("hello, not an image\n")
        reason = "not an image"
    elif kind == "truncated_jpeg":
        path.write_bytes(good_jpg.getvalue()[: len(good_jpg.getvalue()) // 2])
        reason = "truncated"
    elif kind == "truncated_png":
        path.write_bytes(good_png.getvalue()[: len(good_png.getvalue()) // 2])
        reason = "image data"
    elif kind == "corrupt_png":
        data = bytearray(good_png.getvalue())
        data[60:120] = b"\x13" * 60
        path.write_bytes(bytes(data))
        reason = "image data"
    elif kind == "bomb_header":
        path.write_bytes(_png_header_only(11_000, 10_000))
        reason = "decompression bomb"
    elif kind == "huge_header":
        path.write_bytes(_png_header_only(60_000, 60_000))
        reason = "decompression bomb"
    else:
        path.write_bytes(good_png.getvalue())
        reason = "decompression bomb"
        kwargs["max_pixels"] = 64 * 63
    with pytest.raises(DecodeError, match=reason):
        decode_image(path, **kwargs)
