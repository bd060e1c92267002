"""The regions job against the bare extractor loop on the same images, in one run.

    python benchmarks/pipeline_bench.py [--quick] [--device cuda] [--images N] [--size HxW]

The bare loop decodes each image and calls RegionExtractor.extract batch by batch in this process; it runs
before and after the pipeline and the mean of the two is the baseline. The pipeline is `vlprep regions`
(run_regions, one worker, a local Ray started for it). Ratios are pipeline throughput / bare throughput,
once excluding start-up (Ray start + the worker's model load, as the run summary measures it) and once
including it. Model construction is excluded from the bare loop.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from common import report  # noqa: E402


def make_images(root: Path, count: int, h: int, w: int) -> list[Path]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    paths = []
    for n in range(count):
        base = np.stack([(xx + 7 * n) % 256, (yy * 2) % 256, (xx + yy + 31 * n) % 256], axis=2)
        pixels = np.clip(base + rng.integers(0, 60, size=(h, w, 3)), 0, 255).astype(np.uint8)
        path = root / f"img_{n:04d}.jpg"
        Image.fromarray(pixels).save(path, quality=90)
        paths.append(path)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="a few tiny images: a smoke run of a few seconds")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--images", type=int, default=None)
    ap.add_argument("--size", default=None, help="image size HxW [default: 375x500, --quick 64x80]")
    ap.add_argument("--batch-size", type=int, default=4)
    args = ap.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

    import torch

    from vlprep.extractors.decode.image import decode_image
    from vlprep.extractors.regions import RegionExtractor
    from vlprep.pipelines.regions import RegionOptions, run_regions
    from vlprep.pipelines.runner import RunOptions

    count = args.images or (4 if args.quick else 16)
    h, w = (int(v) for v in (args.size or ("64x80" if args.quick else "375x500")).split("x"))
    if args.quick:
        sizes = dict(min_size=64, max_size=96, boxes=(2, 4), rpn_pre_nms=100, rpn_post_nms=8)
    else:
        sizes = dict(min_size=600, max_size=1000, boxes=(10, 100), rpn_pre_nms=6000, rpn_post_nms=300)
    options = RegionOptions(weights="random", device=args.device, **sizes)
    cuda = args.device.startswith("cuda")
    threads = torch.get_num_threads()
    cpus = os.cpu_count() or 1
    # The worker gets the cores the bare loop uses, less a slice for the decode tasks.
    run = RunOptions(
        workers=1,
        cpus_per_worker=max(0.5, cpus - 0.5) if not cuda else 1.0,
        gpus_per_worker=1.0 if cuda else 0.0,
        threads_per_worker=threads,
        decode_cpus=0.25 if not cuda else 0.5,
        num_cpus=cpus,
        progress=False,
    )

    with tempfile.TemporaryDirectory(prefix="vlprep-pipeline-bench-") as tmp:
        root = Path(tmp)
        (root / "images").mkdir()
        paths = make_images(root / "images", count, h, w)

        extractor = RegionExtractor.from_weights(
            "random",
            policy=options.policy,
            boxes=options.boxes,
            device=args.device,
            min_size=options.min_size,
            max_size=options.max_size,
            rpn_pre_nms=options.rpn_pre_nms,
            rpn_post_nms=options.rpn_post_nms,
        )
        extractor.extract([decode_image(paths[0])])  # warm-up, as the pipeline's first batch is not

        def bare_loop() -> float:
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            for i in range(0, count, args.batch_size):
                extractor.extract([decode_image(p) for p in paths[i : i + args.batch_size]])
            if cuda:
                torch.cuda.synchronize()
            return time.perf_counter() - start

        # bare, pipeline, bare again: the mean of the two bare runs cancels a linear drift in machine load
        bare_before = bare_loop()
        summary = run_regions(
            [str(root / "images")], root / "store", options, run, batch_size=args.batch_size
        )
        assert summary["ok"] == count, summary
        bare_after = bare_loop()
        bare_s = (bare_before + bare_after) / 2

    bare = count / bare_s
    piped_warm = summary["items_per_s_after_startup"]
    piped_all = summary["items_per_s"]
    rows = [
        {
            "run": "bare loop, before",
            "images": count,
            "seconds": round(bare_before, 2),
            "img_per_s": count / bare_before,
        },
        {
            "run": "bare loop, after",
            "images": count,
            "seconds": round(bare_after, 2),
            "img_per_s": count / bare_after,
        },
        {
            "run": "vlprep regions (1 worker)",
            "images": count,
            "seconds": summary["seconds"],
            "img_per_s": piped_all,
        },
        {
            "run": "  after start-up",
            "images": count,
            "seconds": round(summary["seconds"] - summary["startup_seconds"], 2),
            "img_per_s": piped_warm,
        },
    ]
    print(
        f"{count} images {h}x{w}, device {args.device}, torch threads {threads}, "
        f"start-up {summary['startup_seconds']:.1f} s (Ray + model load), "
        f"cpus_per_worker {run.cpus_per_worker:g}"
    )
    ratios = {
        "pipeline/bare (start-up excluded)": piped_warm / bare,
        "pipeline/bare (start-up included)": piped_all / bare,
    }
    report("pipeline", rows, {k: round(v, 3) if math.isfinite(v) else v for k, v in ratios.items()})


if __name__ == "__main__":
    main()
