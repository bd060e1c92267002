"""The pipelines against their bare loops on the same inputs, in one run.

    python benchmarks/pipeline_bench.py [--quick]            # every comparison below
    python benchmarks/pipeline_bench.py --regions [--device cuda] [--images N] [--size HxW]
    python benchmarks/pipeline_bench.py --null-model [--items N]

Regions (default): the bare loop decodes each image and calls RegionExtractor.extract batch by batch in
this process; it runs before and after the pipeline and the mean of the two is the baseline. The pipeline
is `vlprep regions` with its DEFAULT resources (run_regions with RunOptions(): workers, CPUs and threads
chosen from the machine). Ratios are pipeline throughput / bare throughput, once excluding start-up (Ray
start + the worker's model load, as the run summary measures it) and once including it. Model
construction is excluded from the bare loop.

--null-model: the driver's own ceiling. A model that returns a constant 36 x 2048 float32 record at once,
through run_job (Ray actors, the object store, the commit thread, shards), against a bare StoreWriter loop
adding the same records (before and after; the mean is the baseline). Also the driver's CPU seconds per
1,000 items: the whole driver process (its commit thread included) and its main thread alone.
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


def _null_model(record: dict) -> dict:
    return record


def _null_batch(record: dict, batch: list) -> list:
    return [record] * len(batch)


def null_model_bench(args: argparse.Namespace) -> None:
    """run_job with an instant model vs a bare StoreWriter loop on the same records."""
    import functools

    from vlprep.pipelines.inputs import Item
    from vlprep.pipelines.runner import JobSpec, RunOptions, ray_session, run_job
    from vlprep.store import StoreWriter

    count = args.items or (200 if args.quick else 3000)
    rng = np.random.default_rng(0)
    record = {
        "features": rng.standard_normal((36, 2048), dtype=np.float32),
        "boxes": rng.random((36, 4), dtype=np.float32) * 500,
        "num_boxes": np.int32(36),
    }
    items = [Item(f"img/{n:06d}.jpg", f"/data/img/{n:06d}.jpg") for n in range(count)]
    shard = 1000 if not args.quick else 50

    with tempfile.TemporaryDirectory(prefix="vlprep-null-bench-") as tmp:
        root = Path(tmp)

        def bare(name: str) -> float:
            start = time.perf_counter()
            with StoreWriter(root / name, kind="regions", shard_size=shard, producer={"m": "null"}) as w:
                for item in items:
                    w.add(item.id, {**record, "path": item.path})
            return time.perf_counter() - start

        spec = JobSpec(
            kind="regions",
            producer={"m": "null"},
            load_model=functools.partial(_null_model, record),
            run_batch=_null_batch,
            decode=None,
            items_per_call=args.batch_size,
        )
        cpus = os.cpu_count() or 1
        run = RunOptions(workers=2, cpus_per_worker=0.25, shard_size=shard, progress=False)
        bare_before = bare("bare1")
        # Ray is started first, so that the driver's CPU is counted for the job alone
        with ray_session(num_cpus=cpus):
            cpu0, thread0 = time.process_time(), time.thread_time()
            summary = run_job(spec, items, root / "piped", run)
            cpu = time.process_time() - cpu0
            thread = time.thread_time() - thread0
        assert summary["ok"] == count, summary
        bare_after = bare("bare2")

    bare_rate = count / ((bare_before + bare_after) / 2)
    steady = summary["items_per_s_after_startup"]
    work = summary["seconds"] - summary["startup_seconds"]
    rows = [
        {
            "run": "bare StoreWriter, before",
            "items": count,
            "seconds": round(bare_before, 2),
            "items_per_s": count / bare_before,
        },
        {
            "run": "bare StoreWriter, after",
            "items": count,
            "seconds": round(bare_after, 2),
            "items_per_s": count / bare_after,
        },
        {
            "run": "run_job, null model",
            "items": count,
            "seconds": summary["seconds"],
            "items_per_s": summary["items_per_s"],
        },
        {"run": "  after start-up", "items": count, "seconds": round(work, 2), "items_per_s": steady},
    ]
    print(
        f"{count} records of 36x2048 float32, batch {args.batch_size}, shard {shard}, 2 workers, "
        f"start-up {summary['startup_seconds']:.1f} s; driver CPU {1000 * cpu / count:.3f} s per 1,000 "
        f"items (process; main thread {1000 * thread / count:.3f} s), load {os.getloadavg()[0]:.2f}"
    )
    report(
        "pipeline-null",
        rows,
        {"null model run_job/bare StoreWriter (start-up excluded)": round(steady / bare_rate, 3)},
        {
            "driver process CPU s per 1000 items (null model)": round(1000 * cpu / count, 3),
            "driver main thread CPU s per 1000 items (null model)": round(1000 * thread / count, 3),
        },
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="a few tiny inputs: a smoke run of a few seconds")
    ap.add_argument("--null-model", action="store_true", help="the driver's ceiling with an instant model")
    ap.add_argument("--items", type=int, default=None, help="--null-model: records [default 3000]")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--images", type=int, default=None)
    ap.add_argument("--size", default=None, help="image size HxW [default: 375x500, --quick 64x80]")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--regions", action="store_true", help="the regions job vs the bare extractor loop")
    args = ap.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    chosen = [name for name in ("regions", "null_model") if getattr(args, name)]
    for name in chosen or ["regions", "null_model"]:
        {"regions": regions_bench, "null_model": null_model_bench}[name](args)


def regions_bench(args: argparse.Namespace) -> None:
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
    # The job's default resources: what a user who gives no flags gets (fill_cluster).
    run = RunOptions(num_cpus=cpus, progress=False)

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
            "run": "vlprep regions (defaults)",
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
        f"start-up {summary['startup_seconds']:.1f} s (Ray + model load), chosen resources "
        f"{ {k: summary['options'][k] for k in ('workers', 'cpus_per_worker', 'threads_per_worker')} }, "
        f"load {os.getloadavg()[0]:.2f}"
    )
    ratios = {
        "pipeline/bare (start-up excluded)": piped_warm / bare,
        "pipeline/bare (start-up included)": piped_all / bare,
    }
    report("pipeline", rows, {k: round(v, 3) if math.isfinite(v) else v for k, v in ratios.items()})


if __name__ == "__main__":
    main()
