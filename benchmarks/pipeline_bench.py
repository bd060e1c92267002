"""The pipelines against their bare loops on the same inputs, in one run.

    python benchmarks/pipeline_bench.py [--quick]            # every comparison below
    python benchmarks/pipeline_bench.py --regions [--device cuda] [--images N] [--size HxW]
    python benchmarks/pipeline_bench.py --regions --image-decode gpu --device cuda [...]
    python benchmarks/pipeline_bench.py --null-model [--items N] [--rounds R]
    python benchmarks/pipeline_bench.py --video [--device cuda --precision fp16] [--videos N]

Regions (default): the bare loop decodes each image and calls RegionExtractor.extract batch by batch in
this process; it runs before and after the pipeline and the mean of the two is the baseline. The pipeline
is `vlprep regions` with its DEFAULT resources (run_regions with RunOptions(): workers, CPUs and threads
chosen from the machine). Ratios are pipeline throughput / bare throughput, once excluding start-up (Ray
start + the worker's model load, as the run summary measures it) and once including it. Model
construction is excluded from the bare loop.

--image-decode gpu (with --regions): the pipeline run is `vlprep regions --image-decode gpu` (the model
actor decodes the JPEG files with nvjpeg) instead of the defaults, and nvjpeg's pixel difference from PIL
on the same files is reported. Without CUDA it prints the job's refusal and runs the actor's decode path
on the CPU against PIL.

--null-model: the driver's own ceiling. A model that returns a constant 36 x 2048 float32 record at once,
through run_job with its DEFAULT options (the headline row; --shard-writes auto) and then with each
--shard-writes mode, against a bare StoreWriter loop adding the same records. Each round runs all four,
in a shuffled order; the medians over the rounds (--rounds, default 3) give the ratios, so that the
machine's load changing during the run hits every mode. Also the driver's CPU seconds per 1,000 items
for each mode: the whole driver process (its commit thread included) and its main thread alone. About two
minutes:

    python benchmarks/pipeline_bench.py --null-model [--dir /dev/shm]

The stores go to the temp dir; where other work shares the disk, fsync times swing the bare loop by 3x
from run to run, and `--dir /dev/shm` measures the pipeline's own cost without the disk. Before it
writes, the bare loop waits as long as the jobs' median start-up (1 s before the first job): on a VM
whose balloon hands free memory back to the host, the page cache refills at a host fault per page once
freed memory has sat idle for seconds, so a writer that starts the moment the last run deleted its
files is up to 3x faster than one that starts after a job's start-up (measured on the development VM,
`StoreWriter` alone, 3,000 records: 2,270-2,455 items/s right after the last run, 1,560 after a 3 s
pause, 1,179 after 6 s, 884 after 12 s, kernel time 0.3-0.5 s against 1.1-2.6 s).

--video: `vlprep video` with default resources (the actor decodes on its prefetch thread while the model
embeds) against the bare loop of VideoExtractor.extract_file (decode, then embed, video after video) on
the same generated videos (640x360, 6 s at 20 fps by default).
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

from vlprep.extractors.regions.config import IMAGE_DECODES  # noqa: E402
from vlprep.pipelines.regions import DEFAULT_BATCH_SIZE  # noqa: E402


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
    """run_job with an instant model vs a bare StoreWriter loop on the same records, in rounds: each
    round runs the bare loop and then the job in every --shard-writes mode, so that a change in the
    machine's load hits all of them; the medians over the rounds give the ratios."""
    import functools
    import shutil
    import statistics

    from vlprep.pipelines.inputs import Item
    from vlprep.pipelines.runner import SHARD_WRITES, JobSpec, RunOptions, ray_session, run_job
    from vlprep.store import StoreWriter

    count = args.items or (200 if args.quick else 3000)
    rounds = args.rounds or (1 if args.quick else 3)
    batch = args.batch_size or DEFAULT_BATCH_SIZE  # the regions job's default, as `vlprep regions` runs
    rng = np.random.default_rng(0)
    record = {
        "features": rng.standard_normal((36, 2048), dtype=np.float32),
        "boxes": rng.random((36, 4), dtype=np.float32) * 500,
        "num_boxes": np.int32(36),
    }
    items = [Item(f"img/{n:06d}.jpg", f"/data/img/{n:06d}.jpg") for n in range(count)]
    shard = 1000 if not args.quick else 50
    spec = JobSpec(
        kind="regions",
        producer={"m": "null"},
        load_model=functools.partial(_null_model, record),
        run_batch=_null_batch,
        decode=None,
        items_per_call=batch,
    )
    rates: dict[str, list[float]] = {"bare": []}
    cpu: dict[str, list[float]] = {}
    main_thread: dict[str, list[float]] = {}
    chosen: dict[str, str] = {}
    startups: list[float] = []
    with tempfile.TemporaryDirectory(prefix="vlprep-null-bench-", dir=args.dir) as tmp:
        root = Path(tmp)
        # Ray is started once, first, so that the driver's CPU is counted for the jobs alone. Every job
        # has the default resources (what `vlprep regions` with no flags gets); "auto" is the default.
        with ray_session(num_cpus=os.cpu_count() or 1):
            # an untimed job first: the first job after Ray starts pays for starting its worker
            # processes, and would handicap whichever mode the shuffle puts first
            run_job(spec, items[:200], root / "warm-up", RunOptions(shard_size=shard, progress=False))
            shutil.rmtree(root / "warm-up")
            runs = ["bare", *SHARD_WRITES]
            shuffle = np.random.default_rng(0).permutation
            for n in range(rounds):
                # a new order each round (seeded): no run always follows the same one (the bare loop's
                # freed memory, the last job's Ray workers); a rotation would keep every predecessor
                for mode in [runs[i] for i in shuffle(len(runs))]:
                    if mode == "bare":
                        # As long a wait before writing as a job's start-up (see the module docstring)
                        time.sleep(statistics.median(startups) if startups else 1.0)
                        start = time.perf_counter()
                        with StoreWriter(
                            root / "bare", kind="regions", shard_size=shard, producer={"m": "null"}
                        ) as w:
                            for item in items:
                                w.add(item.id, {**record, "path": item.path})
                        rates["bare"].append(count / (time.perf_counter() - start))
                        shutil.rmtree(root / "bare")
                        continue
                    opts = RunOptions(shard_size=shard, progress=False, shard_writes=mode)
                    cpu0, thread0 = time.process_time(), time.thread_time()
                    summary = run_job(spec, items, root / mode, opts)
                    cpu.setdefault(mode, []).append(1000 * (time.process_time() - cpu0) / count)
                    main_thread.setdefault(mode, []).append(1000 * (time.thread_time() - thread0) / count)
                    assert summary["ok"] == count, summary
                    startups.append(summary["startup_seconds"])
                    rates.setdefault(mode, []).append(summary["items_per_s_after_startup"])
                    chosen[mode], options = summary["shard_writes"], summary["options"]
                    shutil.rmtree(root / mode)
                print(f"round {n + 1}/{rounds}: " + ", ".join(f"{k} {v[-1]:.0f}/s" for k, v in rates.items()))

    def name(mode: str) -> str:
        return f"defaults (auto: {chosen[mode]} write shards)" if mode == "auto" else f"{mode} write shards"

    bare = statistics.median(rates["bare"])
    rows = [
        {
            "run": "bare StoreWriter",
            "items_per_s (median)": bare,
            "runs": " ".join(f"{r:.0f}" for r in rates["bare"]),
            "driver_cpu_s_per_1000": "-",
        }
    ]
    ratios, values = {}, {}
    for mode in SHARD_WRITES:
        steady = statistics.median(rates[mode])
        rows.append(
            {
                "run": f"run_job, {name(mode)}, after start-up",
                "items_per_s (median)": steady,
                "runs": " ".join(f"{r:.0f}" for r in rates[mode]),
                "driver_cpu_s_per_1000": round(statistics.median(cpu[mode]), 3),
            }
        )
        ratios[f"null model run_job/bare StoreWriter, {name(mode)} (start-up excluded)"] = round(
            steady / bare, 3
        )
        values[f"driver process CPU s per 1000 items, {name(mode)}"] = round(statistics.median(cpu[mode]), 3)
        values[f"driver main thread CPU s per 1000 items, {name(mode)}"] = round(
            statistics.median(main_thread[mode]), 3
        )
    print(
        f"{count} records of 36x2048 float32 into {args.dir or tempfile.gettempdir()}, "
        f"batch {batch}, shard {shard}, {rounds} rounds, "
        f"default resources: {options['workers']} worker(s) x {options['cpus_per_worker']:g} CPUs on one "
        f"node; load {os.getloadavg()[0]:.2f}"
    )
    report("pipeline-null", rows, ratios, values)


def video_bench(args: argparse.Namespace) -> None:
    """`vlprep video` (default resources; decoding on the actor's prefetch thread) against the bare
    extractor loop, extract_file video after video (decode, then embed), on the same generated videos."""
    import torch

    from vlprep.extractors.decode.synthetic_video import write_index_video
    from vlprep.extractors.video import VideoExtractor
    from vlprep.extractors.video.config import video_config
    from vlprep.pipelines.runner import RunOptions
    from vlprep.pipelines.video import run_video

    count = args.videos or (2 if args.quick else 8)
    model = "resnet152" if args.quick else args.video_model  # quick: 2 frames a video, the cheapest
    seconds = 1.5 if args.quick else args.video_seconds
    w, h = (int(v) for v in ("64x48" if args.quick else args.video_size).split("x"))
    fps = 20.0
    options = video_config(
        model=model,
        device=args.device,
        precision=args.precision,
        batch_size=8,
        decoder=args.decoder,
    )
    cuda = args.device.startswith("cuda")
    with tempfile.TemporaryDirectory(prefix="vlprep-video-bench-") as tmp:
        root = Path(tmp)
        (root / "videos").mkdir()
        paths = []
        for n in range(count):
            path = root / "videos" / f"v{n:03d}.mp4"
            write_index_video(path, num_frames=int(seconds * fps), fps=fps, width=w, height=h)
            paths.append(path)
        extractor = VideoExtractor.from_weights(
            model=options.model,
            weights="random",
            device=args.device,
            precision=options.precision,
            batch_size=options.batch_size,
            decoder=options.decoder,
        )
        if not args.quick:
            extractor.extract_file(paths[0])  # warm-up

        def bare_loop() -> float:
            start = time.perf_counter()
            for path in paths:
                extractor.extract_file(path)
            if cuda:
                torch.cuda.synchronize()
            return time.perf_counter() - start

        bare_before = bare_loop()
        run = RunOptions(num_cpus=os.cpu_count() or 1, progress=False)
        summary = run_video([str(root / "videos")], root / "store", options, run)
        assert summary["ok"] == count, summary
        bare_after = bare_loop() if not args.quick else bare_before
    bare = count / ((bare_before + bare_after) / 2)
    steady = summary["items_per_s_after_startup"]
    rows = [
        {
            "run": "bare loop, before",
            "videos": count,
            "seconds": round(bare_before, 2),
            "videos_per_s": count / bare_before,
        },
        {
            "run": "bare loop, after",
            "videos": count,
            "seconds": round(bare_after, 2),
            "videos_per_s": count / bare_after,
        },
        {
            "run": "vlprep video (defaults)",
            "videos": count,
            "seconds": summary["seconds"],
            "videos_per_s": summary["items_per_s"],
        },
        {
            "run": "  after start-up",
            "videos": count,
            "seconds": round(summary["seconds"] - summary["startup_seconds"], 2),
            "videos_per_s": steady,
        },
    ]
    print(
        f"{count} videos {w}x{h}, {seconds:g} s at {fps:g} fps, model {options.model}, device {args.device}, "
        f"start-up {summary['startup_seconds']:.1f} s, chosen resources "
        f"{ {k: summary['options'][k] for k in ('workers', 'cpus_per_worker', 'threads_per_worker')} }, "
        f"load {os.getloadavg()[0]:.2f}"
    )
    report(
        "pipeline-video",
        rows,
        {"video defaults pipeline/bare extractor loop (start-up excluded)": round(steady / bare, 3)},
        {"video bare loop videos/s": round(bare, 3), "video pipeline videos/s after start-up": steady},
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="a few tiny inputs: a smoke run of a few seconds")
    ap.add_argument("--null-model", action="store_true", help="the driver's ceiling with an instant model")
    ap.add_argument("--items", type=int, default=None, help="--null-model: records [default 3000]")
    ap.add_argument("--rounds", type=int, default=None, help="--null-model: rounds [default 3]")
    ap.add_argument(
        "--dir",
        default=None,
        help="--null-model: where the stores are written [default: the temp dir]; /dev/shm (no disk) "
        "separates the pipeline's own cost from a busy disk's",
    )
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--images", type=int, default=None)
    ap.add_argument("--size", default=None, help="image size HxW [default: 375x500, --quick 64x80]")
    ap.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="per model call: --regions images [default 4], --null-model items [default: the regions "
        "job's, 8]",
    )
    ap.add_argument("--regions", action="store_true", help="the regions job vs the bare extractor loop")
    ap.add_argument("--video", action="store_true", help="the video job vs the bare extractor loop")
    ap.add_argument("--videos", type=int, default=None, help="--video: videos [default 8]")
    ap.add_argument("--video-seconds", type=float, default=6.0, help="--video: length of each video")
    ap.add_argument("--video-size", default="640x360", help="--video: WxH")
    ap.add_argument("--video-model", default="s3d", help="--video: model")
    ap.add_argument("--decoder", default="auto", help="--video: decoder backend")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"])
    ap.add_argument("--boxes", default="10-100", help="--regions: boxes per image (36 or 10-100)")
    ap.add_argument(
        "--image-decode",
        default="cpu",
        choices=IMAGE_DECODES,
        help="--regions: gpu runs `vlprep regions --image-decode gpu` instead of the defaults (nvjpeg in "
        "the model actor) and reports its pixel difference from PIL",
    )
    ap.add_argument(
        "--fused-convs", action="store_true", help="--regions: also the bare extractor with fused_convs"
    )
    args = ap.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    benches = {"regions": regions_bench, "null_model": null_model_bench, "video": video_bench}
    chosen = [name for name in benches if getattr(args, name)]
    for name in chosen or list(benches):
        benches[name](args)


def regions_bench(args: argparse.Namespace) -> None:
    import torch

    from vlprep.extractors.decode.image import decode_image
    from vlprep.extractors.regions import RegionExtractor
    from vlprep.extractors.regions.config import RegionConfig, parse_boxes
    from vlprep.pipelines.regions import run_regions
    from vlprep.pipelines.runner import RunOptions

    count = args.images or (4 if args.quick else 16)
    args = argparse.Namespace(**{**vars(args), "batch_size": args.batch_size or 4})
    h, w = (int(v) for v in (args.size or ("64x80" if args.quick else "375x500")).split("x"))
    boxes = parse_boxes(args.boxes)
    if args.quick:
        sizes = dict(min_size=64, max_size=96, boxes=(2, 4), rpn_pre_nms=100, rpn_post_nms=8)
    else:
        sizes = dict(min_size=600, max_size=1000, boxes=boxes, rpn_pre_nms=6000, rpn_post_nms=300)
    options = RegionConfig(
        weights="random",
        device=args.device,
        precision=args.precision,
        image_decode=args.image_decode,
        **sizes,
    )
    cuda = args.device.startswith("cuda")
    gpu_decode = args.image_decode == "gpu"
    if gpu_decode and not cuda:
        return nvjpeg_without_cuda(args, options)
    threads = torch.get_num_threads()
    cpus = os.cpu_count() or 1
    # The job's default resources: what a user who gives no flags gets (fill_cluster).
    run = RunOptions(num_cpus=cpus, progress=False)

    with tempfile.TemporaryDirectory(prefix="vlprep-pipeline-bench-") as tmp:
        root = Path(tmp)
        (root / "images").mkdir()
        paths = make_images(root / "images", count, h, w)

        params = dict(
            policy=options.policy,
            boxes=options.boxes,
            device=args.device,
            precision=args.precision,
            min_size=options.min_size,
            max_size=options.max_size,
            rpn_pre_nms=options.rpn_pre_nms,
            rpn_post_nms=options.rpn_post_nms,
        )
        extractor = RegionExtractor.from_weights("random", **params)
        # The bare loop is the extractor alone: images decoded beforehand (the pipeline decodes them
        # in its own tasks), so the pipeline is held to the model's own rate.
        images = [decode_image(p) for p in paths]
        extractor.extract(images[: args.batch_size])  # warm-up, as the pipeline's first batch is not

        def bare_loop(ex=extractor) -> float:
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            for i in range(0, count, args.batch_size):
                ex.extract(images[i : i + args.batch_size])
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
        fused = fused_check(extractor, images, args, bare_loop) if args.fused_convs else None
        decoded = decoder_difference(paths, args.device) if gpu_decode else None

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
            "run": "vlprep regions --image-decode gpu" if gpu_decode else "vlprep regions (defaults)",
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
    run_name = "regions --image-decode gpu" if gpu_decode else "regions defaults"
    ratios = {
        f"{run_name} pipeline/bare extractor (start-up excluded)": piped_warm / bare,
        f"{run_name} pipeline/bare extractor (start-up included)": piped_all / bare,
    }
    values = {
        f"regions bare extractor img/s ({args.device}, {args.precision})": round(bare, 3),
        "regions pipeline img/s after start-up": piped_warm,
        "regions pipeline start-up s": summary["startup_seconds"],
    }
    if decoded is not None:
        values.update(decoded)
    if fused is not None:
        ratios["fused_convs/plain bare extractor"] = fused["ratio"]
        values["fused_convs max abs feature difference"] = fused["max_diff"]
        values["fused_convs on"] = float(fused["on"])
    report(
        "pipeline-nvjpeg" if gpu_decode else "pipeline",
        rows,
        {k: round(v, 3) if math.isfinite(v) else v for k, v in ratios.items()},
        values,
    )


def decoder_difference(paths: list[Path], device: str) -> dict[str, float]:
    """The actor's decode under --image-decode gpu (`decode_jpegs` on `device`) against the CPU tasks'
    `decode_image` (PIL), on the benchmark's JPEG files: largest and mean difference in grey levels."""
    from vlprep.extractors.decode.image import decode_image, decode_jpegs

    datas = [p.read_bytes() for p in paths]
    diffs = [
        np.abs(a.astype(np.int16) - decode_image(d).astype(np.int16))
        for a, d in zip(decode_jpegs(datas, device), datas, strict=True)
    ]
    where = "nvjpeg" if device.startswith("cuda") else "torchvision on the CPU"
    largest, mean = max(int(d.max()) for d in diffs), float(np.mean([d.mean() for d in diffs]))
    print(
        f"decode_jpegs({device}) vs PIL on {len(datas)} files: max |diff| {largest}, mean {mean:.3f} levels"
    )
    return {
        f"{where} vs PIL max abs pixel difference": largest,
        f"{where} vs PIL mean abs pixel difference": round(mean, 4),
    }


def nvjpeg_without_cuda(args: argparse.Namespace, options) -> None:
    """--image-decode gpu on a machine without CUDA (gpu_check.sh --smoke): what can run does. The job
    is refused before Ray starts (the message is printed), and the actor's decode path runs on the CPU
    against PIL."""
    from vlprep.pipelines.config import ConfigError
    from vlprep.pipelines.regions import check_image_decode

    try:
        check_image_decode(options.replace(device=None), local=True)  # no --device: the CUDA check
        refusal = None
    except ConfigError as exc:
        refusal = str(exc)
    print(f"--image-decode gpu on {args.device}: {'refused: ' + refusal if refusal else 'accepted'}")
    with tempfile.TemporaryDirectory(prefix="vlprep-nvjpeg-bench-") as tmp:
        paths = make_images(Path(tmp), args.images or 4, 48, 64)
        values = decoder_difference(paths, "cpu")
    values["refused before Ray without CUDA"] = float(refusal is not None)
    report("pipeline-nvjpeg", [], {}, values)


def fused_check(extractor, images: list, args: argparse.Namespace, bare_loop) -> dict:
    """The bare extractor with cuDNN's fused conv + bias + ReLU against the same model without: images/s
    ratio and the largest feature difference on one batch (where cuDNN refuses, e.g. on CPU, the
    extractor warns and runs unfused: the ratio is then ~1 and `on` 0)."""
    import warnings

    from vlprep.extractors.regions import RegionExtractor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fused = RegionExtractor(
            extractor.model,
            weights_info=extractor.weights_info,
            policy=extractor.policy,
            boxes=(extractor.min_boxes, extractor.max_boxes),
            device=args.device,
            precision=args.precision,
            min_size=extractor.min_size,
            max_size=extractor.max_size,
            rpn_pre_nms=extractor.rpn.pre_nms,
            rpn_post_nms=extractor.rpn.post_nms,
            fused_convs=True,
        )
    batch = images[: args.batch_size]
    diff = max(
        float(np.abs(np.asarray(a["features"], np.float32) - np.asarray(b["features"], np.float32)).max())
        for a, b in zip(extractor.extract(batch), fused.extract(batch))
    )
    plain_s = bare_loop()
    fused_s = bare_loop(fused)
    print(
        f"fused_convs {'on' if fused.fused_convs else 'declined (no cuDNN)'}: "
        f"{len(images) / fused_s:.2f} vs {len(images) / plain_s:.2f} img/s plain, max |diff| {diff:.3g}"
    )
    return {"ratio": round(plain_s / fused_s, 3), "max_diff": diff, "on": fused.fused_convs}


if __name__ == "__main__":
    main()
