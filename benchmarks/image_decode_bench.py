"""Image decoding at GPU rates: JPEG decode + resize to the extractor's test scale, images/s on ONE core,
PIL (libjpeg-turbo, what the regions decode tasks run: `decode_image`, then the cv2 resize the extractor
applies) against torchvision.io.decode_jpeg (libjpeg-turbo too) + the same cv2 resize, and with a GPU
torchvision's nvjpeg decode (`decode_jpeg(device="cuda")`) in batches of 32 + a bilinear resize there.

    python benchmarks/image_decode_bench.py [--quick] [--images N] [--size HxW] [--device cuda]

The regions job needs decode tasks that sustain >= 4x the GPU's rate: at 150 images/s that is 600
images/s, i.e. the number of cores below (`cores for 600 img/s`) at the measured per-core rate. With
`vlprep regions --image-decode gpu` a decode task only reads the file and checks its header
(`jpeg_for_device`, its own row); the model actor decodes on the GPU (`decode_jpegs`, its row on CUDA).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from common import report  # noqa: E402

TARGET = 600.0  # images/s: 4x a GPU extracting 150 images/s


def jpegs(count: int, h: int, w: int) -> list[bytes]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for n in range(count):
        base = np.stack([(xx + 7 * n) % 256, (yy * 2) % 256, (xx + yy + 31 * n) % 256], axis=2)
        pixels = np.clip(base + rng.integers(0, 40, size=(h, w, 3)), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def scale_for(h: int, w: int, short: int = 600, long: int = 1000) -> tuple[int, int]:
    s = min(short / min(h, w), long / max(h, w))
    return int(round(h * s)), int(round(w * s))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--images", type=int, default=None)
    ap.add_argument("--size", default="480x640", help="HxW of the JPEGs (COCO-like)")
    ap.add_argument("--device", default="cpu", help="cuda: also nvjpeg decode on the GPU")
    args = ap.parse_args()
    import cv2
    import torch
    import torchvision
    from torchvision.io import decode_jpeg

    from vlprep.extractors.decode.image import decode_image, decode_jpegs, jpeg_for_device

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    count = args.images or (8 if args.quick else 200)
    h, w = (int(v) for v in args.size.split("x"))
    th, tw = scale_for(h, w)
    data = jpegs(count, h, w)

    def pil() -> None:
        for blob in data:
            cv2.resize(decode_image(blob), (tw, th), interpolation=cv2.INTER_LINEAR)

    def tv() -> None:
        for blob in data:
            img = decode_jpeg(torch.frombuffer(bytearray(blob), dtype=torch.uint8))
            cv2.resize(img.permute(1, 2, 0).numpy(), (tw, th), interpolation=cv2.INTER_LINEAR)

    def header() -> None:
        for blob in data:
            jpeg_for_device(blob)

    runs = {
        "PIL + cv2 resize (decode_image)": pil,
        "torchvision decode_jpeg + cv2 resize": tv,
        # what a decode task does per image under `vlprep regions --image-decode gpu`
        "--image-decode gpu: the CPU task's header check (jpeg_for_device)": header,
    }
    best = {k: float("inf") for k in runs}
    for _ in range(1 if args.quick else 3):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    rows = [
        {
            "decoder": name,
            "images": count,
            "img_per_s_one_core": count / s,
            "cores for 600 img/s": round(TARGET / (count / s), 2),
        }
        for name, s in best.items()
    ]
    names = list(runs)
    ratios = {
        "torchvision decode_jpeg vs PIL, images/s per core": best[names[0]] / best[names[1]],
        "--image-decode gpu CPU task vs PIL decode + resize, images/s per core": best[names[0]]
        / best[names[2]],
    }
    values = {f"{name} img/s per core": round(count / s, 1) for name, s in best.items()}
    if args.device.startswith("cuda") and torch.cuda.is_available():
        tensors = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in data]
        decode_jpeg(tensors[:4], device="cuda")
        torch.cuda.synchronize()
        start = time.perf_counter()
        for i in range(0, count, 32):
            for img in decode_jpeg(tensors[i : i + 32], device="cuda"):
                torch.nn.functional.interpolate(img[None].float(), size=(th, tw), mode="bilinear")
        torch.cuda.synchronize()
        gpu = count / (time.perf_counter() - start)
        rows.append(
            {
                "decoder": "nvjpeg decode_jpeg(device=cuda), batch 32",
                "images": count,
                "img_per_s_one_core": gpu,
                "cores for 600 img/s": "-",
            }
        )
        values["nvjpeg img/s (one GPU, one CPU thread)"] = round(gpu, 1)
        # the model actor's side of --image-decode gpu: batches of 32, back in host memory (the extractor
        # then resizes on the GPU from the uint8 image)
        start = time.perf_counter()
        for i in range(0, count, 32):
            decode_jpegs(data[i : i + 32], "cuda")
        ours = count / (time.perf_counter() - start)
        rows.append(
            {
                "decoder": "vlprep decode_jpegs(device=cuda), batch 32, to host",
                "images": count,
                "img_per_s_one_core": ours,
                "cores for 600 img/s": "-",
            }
        )
        values["vlprep decode_jpegs on cuda img/s (the actor's side of --image-decode gpu)"] = round(ours, 1)
    print(
        f"{count} JPEGs {w}x{h} -> {tw}x{th}, torchvision {torchvision.__version__}, "
        f"load {os.getloadavg()[0]:.2f}"
    )
    report("image-decode", rows, {k: round(v, 3) for k, v in ratios.items()}, values)


if __name__ == "__main__":
    main()
