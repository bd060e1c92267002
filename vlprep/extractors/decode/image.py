"""Image files -> RGB uint8 arrays [H, W, 3], with a reason for every file that cannot be one.

Policy, chosen to match what the reference extractors feed their models (OpenCV `imread`):
EXIF orientation is applied; grayscale, palette, 1-bit, CMYK and YCbCr become RGB; 16-bit and 32-bit
integer images are scaled to 8 bits; an alpha channel is dropped (colour values kept, as `imread`
does); an animated file gives its first frame. Pixel counts above `max_pixels` are refused before
any pixel is decoded, so a decompression bomb costs nothing.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import DecodeError

# 100 megapixels (e.g. 12,000 x 8,300): far above any photo a VL corpus holds, far below what would
# exhaust memory (a 100 MP RGB array is 300 MB). Pillow's own guard (89 MP warning, 179 MP error)
# is a process-wide setting; this limit is explicit and per call.
MAX_PIXELS = 100_000_000

_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")


def _read(source) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "<bytes>"
    name = os.fspath(source)
    try:
        with open(name, "rb") as f:
            return f.read(), str(name)
    except OSError as exc:
        raise DecodeError(f"{name}: cannot read file: {exc.strerror or exc}") from exc


def _scale_to_uint8(values: np.ndarray, full_scale: float) -> np.ndarray:
    scaled = np.clip(values.astype(np.float64), 0, full_scale) * (255.0 / full_scale)
    return np.rint(scaled).astype(np.uint8)


def _to_rgb(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode == "RGB":
        return np.asarray(img, dtype=np.uint8)
    if mode in _SIXTEEN_BIT or mode == "I":
        gray = np.asarray(img).astype(np.int64)
        # Mode "I" holds 16-bit PNG/TIFF data in some Pillow versions; 8-bit data stays as it is.
        full = 65535.0 if mode in _SIXTEEN_BIT or gray.max(initial=0) > 255 else 255.0
        gray = _scale_to_uint8(gray, full)
    elif mode == "F":
        gray = np.asarray(img, dtype=np.float64)
        gray = np.nan_to_num(gray, nan=0.0, posinf=0.0, neginf=0.0)
        gray = _scale_to_uint8(gray, 1.0 if gray.max(initial=0) <= 1.0 else 255.0)
    else:
        if mode == "P" and "transparency" in img.info:
            img = img.convert("RGBA")  # Pillow requires this route for palette transparency
        return np.asarray(img.convert("RGB"), dtype=np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2)


def decode_image(source, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode an image file (path or bytes) to an RGB uint8 array [H, W, 3].

    Raises DecodeError, whose message says why, for unreadable, empty, unrecognised, truncated or
    corrupt files and for images above `max_pixels` pixels."""
    data, name = _read(source)
    if not data:
        raise DecodeError(f"{name}: empty file")
    with warnings.catch_warnings():
        # Pillow's global bomb warning is replaced by the explicit limit below.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data))
        except UnidentifiedImageError as exc:
            raise DecodeError(f"{name}: not an image, or a format Pillow cannot read") from exc
        except Image.DecompressionBombError as exc:
            raise DecodeError(f"{name}: decompression bomb: {exc}") from exc
        except Exception as exc:
            raise DecodeError(f"{name}: corrupt image header: {exc}") from exc
        width, height = img.size
        if width < 1 or height < 1:
            raise DecodeError(f"{name}: image has no pixels ({width}x{height})")
        if width * height > max_pixels:
            raise DecodeError(
                f"{name}: decompression bomb: {width}x{height} = {width * height} pixels "
                f"exceeds the limit of {max_pixels}"
            )
        try:
            img.load()
        except Exception as exc:
            reason = "truncated" if "truncated" in str(exc) else "corrupt"
            raise DecodeError(f"{name}: {reason} image data ({img.format}): {exc}") from exc
        # A malformed EXIF block leaves the pixels valid: keep them unrotated.
        with contextlib.suppress(Exception):
            img = ImageOps.exif_transpose(img)
        try:
            rgb = _to_rgb(img)
        except Exception as exc:
            raise DecodeError(f"{name}: cannot convert mode {img.mode} to RGB: {exc}") from exc
    return np.ascontiguousarray(rgb)


# -- JPEG decoding on a GPU (regions --image-decode gpu) -------------------------------------------------

_JPEG_END = b"\xff\xd9"  # EOI: a JPEG cut short lacks it (in entropy-coded data 0xFF is always escaped)


def jpeg_for_device(data: bytes, max_pixels: int = MAX_PIXELS) -> bool:
    """Whether `decode_jpegs(..., device)` gives for these file bytes what `decode_image` gives, up to
    the two decoders' rounding: a complete JPEG in YCbCr or grayscale, within `max_pixels`, without an
    EXIF rotation (torchvision applies none on a GPU). Reads the header only. Everything else (PNG,
    CMYK, rotated, truncated, not an image) is decoded by `decode_image` on the CPU, which also says
    why a file is bad."""
    if not data.startswith(b"\xff\xd8") or not data.rstrip(b"\x00\r\n").endswith(_JPEG_END):
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            rotated = img.getexif().get(0x0112, 1) not in (0, 1)
    except Exception:  # noqa: BLE001 - unreadable here: decode_image gives the reason
        return False
    small = 0 < width * height <= max_pixels
    return img.format == "JPEG" and img.mode in ("RGB", "L") and small and not rotated


def decode_jpegs(datas: list[bytes], device: str) -> list[np.ndarray | DecodeError]:
    """JPEG file bytes (checked with `jpeg_for_device`) -> RGB uint8 arrays [H, W, 3] in host memory,
    decoded by torchvision's `decode_jpeg` on `device` (nvjpeg on CUDA, libjpeg-turbo on the CPU), all
    at once where the batch decodes, else one by one; a file that does not decode is its DecodeError."""
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    def run(batch: list[bytes]) -> list[np.ndarray]:
        tensors = [torch.frombuffer(bytearray(data), dtype=torch.uint8) for data in batch]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torchvision 0.29 marks its image decoding deprecated
            images = decode_jpeg(tensors, mode=ImageReadMode.RGB, device=device)
        return [np.ascontiguousarray(image.permute(1, 2, 0).cpu().numpy()) for image in images]

    if not datas:
        return []
    try:
        return list(run(datas))
    except RuntimeError:
        out: list[np.ndarray | DecodeError] = []
        for data in datas:
            try:
                out.extend(run([data]))
            except RuntimeError as exc:
                # torchvision's message is "decode_jpeg, <source file>:<line>, <reason>"
                reason = str(exc).strip().splitlines()[0].rsplit(", ", 1)[-1] if str(exc).strip() else ""
                out.append(DecodeError(f"JPEG decoding on {device} failed: {reason or type(exc).__name__}"))
        return out
