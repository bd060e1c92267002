"""Throughput of the bare region extractor (no decoding, no Ray, no store).

Images/s at 600x1000 with 36 boxes (caffe policy, 300 proposals: the reference configuration) for
several batch sizes and precisions, as ratios against batch 1 in the same precision and against
batch 1 fp32, measured in this process. On CUDA also the peak GPU memory.

    python benchmarks/regions_bench.py                   # CPU, fp32, batches 1/4/8 (slow: s/image)
    python benchmarks/regions_bench.py --device cuda     # + fp16/bf16, batches 1/4/8/16/32
    python benchmarks/regions_bench.py --quick           # smoke run, a few seconds
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from vlprep.extractors.regions import RegionExtractor


def synthetic_images(n: int, height: int, width: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    images = []
    for _ in range(n):
        img = np.zeros((height, width, 3), np.float32) + rng.uniform(0, 255, 3)
        for _ in range(8):
            cy, cx, r = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(10, height / 3)
            img[(y - cy) ** 2 + (x - cx) ** 2 < r * r] = rng.uniform(0, 255, 3)
        images.append(np.clip(img + rng.normal(0, 10, img.shape), 0, 255).astype(np.uint8))
    return images


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(ex: RegionExtractor, images: list[np.ndarray], batch: int, repeats: int) -> dict:
    device = ex.device
    # Warm-up: allocator, cuDNN algorithm choice, first-use kernels. On CPU one image per setting is
    # enough (and each costs seconds).
    ex.extract(images[: batch if device.type == "cuda" else 1])
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    done = 0
    for r in range(repeats):
        offset = (r * batch) % max(1, len(images) - batch + 1)
        records = ex.extract(images[offset : offset + batch])
        done += len(records)
    sync(device)
    seconds = time.perf_counter() - start
    result = {
        "batch": batch,
        "images": done,
        "seconds": seconds,
        "images_per_s": done / seconds,
        "boxes": int(np.mean([r["num_boxes"] for r in records])),
    }
    if device.type == "cuda":
        result["peak_gpu_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return result


# Relative feature tolerance (max abs difference / max abs CPU feature) per device precision. IEEE fp32
# differs from the CPU only by summation order; TF32 convs keep 10 mantissa bits.
FEATURE_TOL = {"fp32": 1e-3, "tf32": 1e-2, "fp16": 2e-2, "bf16": 8e-2}


EXTRA_OPTIONS: dict = {}  # extractor options for every device run (--fused-convs)


def precision_options(name: str) -> dict:
    """Extractor options for a precision name: "tf32" is fp32 with TF32 convs and matmuls allowed
    (torch's cuDNN default, off in vlprep)."""
    base = {"precision": "fp32", "tf32": True} if name == "tf32" else {"precision": name}
    return {**base, **EXTRA_OPTIONS}


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: np.prod(np.clip(x[:, 2:] - x[:, :2], 0, None), axis=1)  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-9)


def compare_records(ref: dict, got: dict, precision: str, lo: int, hi: int) -> tuple[bool, str]:
    """Judge a device record against the CPU fp32 record of the same image, region by region.

    Non-finite values always fail. Regions are paired by box (IoU >= 0.99: the same region up to float
    noise) and features compared on the pairs. IEEE fp32 must pair >= 80% of the regions (a random
    model has near-tied scores, so summation order alone may swap a region). TF32 and half precision
    move proposals by fractions of a pixel and scores enough to select other regions of a random
    model: there pairing is reported, not judged (`own_boxes_check` tests those records instead)."""
    finite = all(np.all(np.isfinite(got[k])) for k in ("features", "boxes", "object_scores", "attr_scores"))
    if not finite:
        return False, "NON-FINITE values"
    n_ref, n_got = ref["num_boxes"], got["num_boxes"]
    if not lo <= n_got <= hi and n_got != n_ref:
        return False, f"{n_got} boxes, outside {lo}-{hi}"
    if n_ref == 0 or n_got == 0:
        return n_ref == n_got, f"boxes {n_ref}/{n_got}"
    iou = _iou(ref["boxes"], got["boxes"])
    best = iou.argmax(axis=1)
    paired = iou[np.arange(n_ref), best] >= 0.99
    scale = float(np.abs(ref["features"]).max()) or 1.0
    a, b = ref["features"][paired], got["features"][best[paired]]
    err = float(np.abs(a - b).max()) / scale if paired.any() else float("nan")
    diff = f"{err:.2e}" if paired.any() else "n/a"
    text = f"boxes {n_ref}/{n_got} paired {int(paired.sum())} max rel feature diff {diff}"
    if precision != "fp32":
        # Paired boxes may still differ by a fraction of a pixel, enough to move a RoIPool bin.
        return True, text
    fraction = paired.sum() / max(n_ref, n_got)
    return bool(fraction >= 0.8 and err <= FEATURE_TOL[precision]), text  # NaN compares False


def own_boxes_check(
    cpu_given: RegionExtractor, image: np.ndarray, got: dict, precision: str
) -> tuple[bool, str]:
    """The features a device record stores must be those of the boxes it stores: recompute them on the
    CPU in fp32 with policy "given" on those boxes (valid where stored boxes are the pooled ones: the
    caffe policy's proposals)."""
    if got["num_boxes"] == 0:
        return True, "no boxes"
    (ref,) = cpu_given.extract([image], [got["boxes"]])
    scale = float(np.abs(ref["features"]).max()) or 1.0
    err = float(np.abs(ref["features"] - got["features"]).max()) / scale
    return bool(err <= FEATURE_TOL[precision]), f"own boxes {got['num_boxes']} max rel feature diff {err:.2e}"


def check_against_cpu(base: RegionExtractor, device: torch.device, precisions: list[str]) -> bool:
    """Run a small configuration on `device` and on the CPU and compare: the correctness check of the
    device code paths (on-device resize, folded batch norm, space-to-batch res5, batched selection,
    half precision) that CPU tests cannot do. Fails only on real faults: non-finite values, features
    off by more than the precision explains, features that do not belong to their boxes, or (IEEE
    fp32) selections that mostly disagree with the CPU's."""
    small = {"min_size": 96, "max_size": 160, "rpn_pre_nms": 600, "rpn_post_nms": 20}
    images = synthetic_images(3, 90, 150, seed=1) + synthetic_images(1, 120, 80, seed=2)
    given = [np.array([[2, 2, 80, 60], [30, 10, 140, 85], [0, 0, 149, 89]], np.float32)] * 3
    given.append(np.array([[5, 5, 70, 100]], np.float32))
    lo, hi = 3, 6
    cpu_given = RegionExtractor(
        base.model, weights_info=base.weights_info, device="cpu", policy="given", **small
    )
    ok = True
    for policy in ("given", "caffe", "maxnms"):
        kw = {"policy": policy, "boxes": (lo, hi), **small}
        ref = RegionExtractor(base.model, weights_info=base.weights_info, device="cpu", **kw)
        ref_recs = ref.extract(images, given if policy == "given" else None)
        for precision in precisions:
            ex = RegionExtractor(
                base.model,
                weights_info=base.weights_info,
                device=device,
                **precision_options(precision),
                **kw,
            )
            recs = ex.extract(images, given if policy == "given" else None)
            for image, a, b in zip(images, ref_recs, recs):
                good, text = compare_records(a, b, precision, lo, hi)
                if good and policy == "caffe" and precision != "fp32":
                    good, more = own_boxes_check(cpu_given, image, b, precision)
                    text += f"; {more}"
                ok &= good
                print(f"check {policy:>6} {precision}: {text} {'ok' if good else 'MISMATCH'}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--weights", default="random", help="checkpoint path, or random")
    parser.add_argument("--policy", default="caffe", choices=["caffe", "maxnms"])
    parser.add_argument("--boxes", default="36")
    parser.add_argument("--batch-sizes", default=None, help="comma list (default 1,4,8; CUDA 1,4,8,16,32)")
    parser.add_argument(
        "--precisions",
        default=None,
        help="comma list of fp32, tf32, fp16, bf16 (default fp32; CUDA all four)",
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="batches timed per setting (CPU 1, CUDA 10)"
    )
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--quick", action="store_true", help="tiny images and proposals: a smoke run")
    parser.add_argument("--json", action="store_true", help="also print the results as one JSON line")
    parser.add_argument("--check", action="store_true", help="first compare small runs on --device with CPU")
    parser.add_argument(
        "--fused-convs", action="store_true", help="CUDA: cuDNN fused conv + bias + ReLU (extractor option)"
    )
    args = parser.parse_args()

    device = torch.device(args.device)
    if args.fused_convs:
        EXTRA_OPTIONS["fused_convs"] = True
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = device.type == "cuda"
    precisions = (args.precisions or ("fp32,tf32,fp16,bf16" if cuda else "fp32")).split(",")
    batches = [int(b) for b in (args.batch_sizes or ("1,4,8,16,32" if cuda else "1,4,8")).split(",")]
    repeats = args.repeats or (10 if cuda else 1)
    height, width, size = 600, 1000, {"min_size": 600, "max_size": 1000}
    options = {"rpn_pre_nms": 6000, "rpn_post_nms": 300}
    boxes = args.boxes
    if args.quick:
        height, width, size = 96, 160, {"min_size": 96, "max_size": 160}
        options = {"rpn_pre_nms": 300, "rpn_post_nms": 12}
        boxes, batches, repeats = "4", [1, 2], 1
    images = synthetic_images(max(batches) * min(repeats, 2) + 1, height, width)

    base = RegionExtractor.from_weights(
        args.weights, policy=args.policy, boxes=boxes, device="cpu", **size, **options
    )
    print(
        f"device: {torch.cuda.get_device_name(device) if cuda else 'cpu'} "
        f"({torch.get_num_threads()} threads); images {height}x{width}; policy {args.policy}; boxes {boxes}; "
        f"RPN {options['rpn_pre_nms']}/{options['rpn_post_nms']}; weights {args.weights}"
    )
    if args.check:
        ok = check_against_cpu(base, device, precisions)
        print(f"device check: {'ok' if ok else 'FAILED'}")
    if cuda:
        # Fixed 600x1000 inputs and 300 x batch regions (set after the check: its many small shapes
        # would each be tuned).
        torch.backends.cudnn.benchmark = True
    rows = []
    for precision in precisions:
        ex = RegionExtractor(
            base.model,
            weights_info=base.weights_info,
            policy=args.policy,
            boxes=boxes,
            device=device,
            **precision_options(precision),
            **size,
            **options,
        )
        for batch in batches:
            row = {"precision": precision, **measure(ex, images, batch, repeats)}
            rows.append(row)
        del ex
        if cuda:
            torch.cuda.empty_cache()

    baseline = next(
        r["images_per_s"] for r in rows if r["precision"] == precisions[0] and r["batch"] == batches[0]
    )
    header = (
        f"{'precision':>9} {'batch':>5} {'images':>6} {'img/s':>9} {'vs first':>8} {'s/img':>8} {'boxes':>5}"
    )
    if cuda:
        header += f" {'peak GPU MiB':>12}"
    print(header)
    for r in rows:
        line = (
            f"{r['precision']:>9} {r['batch']:>5} {r['images']:>6} {r['images_per_s']:>9.2f} "
            f"{r['images_per_s'] / baseline:>7.2f}x {r['seconds'] / r['images']:>8.3f} {r['boxes']:>5}"
        )
        if cuda:
            line += f" {r['peak_gpu_mib']:>12.0f}"
        print(line)
    if args.json:
        print(json.dumps({"device": str(device), "quick": args.quick, "rows": rows}))
    # One ratio line for `make bench`: best throughput of each precision against batch-1 fp32.
    base = next((r["images_per_s"] for r in rows if r["batch"] == 1 and r["precision"] == "fp32"), None)
    ratios = {}
    if base:
        for precision in dict.fromkeys(r["precision"] for r in rows):
            best = max(r["images_per_s"] for r in rows if r["precision"] == precision)
            ratios[f"{device.type} {precision} best batch vs fp32 batch 1 (images/s)"] = best / base
    print("RESULT " + json.dumps({"benchmark": "regions", "ratios": ratios, "rows": rows}))


if __name__ == "__main__":
    main()
