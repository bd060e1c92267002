"""Store vs one .npz per item: random reads and sequential iteration of region-like records,
plus the compression choices and the time to open a large store.

    python benchmarks/store_bench.py [--quick] [--items 2000]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import report  # noqa: E402

from vlprep.store import FeatureStore, StoreWriter  # noqa: E402


def records(n_items: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    for i in range(n_items):
        n = int(rng.integers(10, 101))
        yield (
            f"coco/train2014/COCO_train2014_{i:012d}.jpg",
            {
                "features": rng.random((n, 2048), dtype=np.float32),
                "boxes": (rng.random((n, 4), dtype=np.float32) * 600),
                "object_ids": rng.integers(0, 1600, n),
                "object_scores": rng.random(n, dtype=np.float32),
                "image_h": 480,
                "image_w": 640,
                "num_boxes": n,
            },
        )


def write_npz_dir(root: Path, items) -> None:
    root.mkdir()
    for item_id, rec in items:
        np.savez(root / (item_id.replace("/", "__") + ".npz"), **rec)


def read_npz(root: Path, item_id: str) -> dict:
    with np.load(root / (item_id.replace("/", "__") + ".npz")) as z:
        return {k: z[k] for k in z.files}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--reads", type=int, default=2000)
    ap.add_argument("--open-items", type=int, default=100_000)
    ap.add_argument("--quick", action="store_true", help="tiny smoke run")
    args = ap.parse_args()
    if args.quick:
        args.items, args.reads, args.open_items = 40, 100, 2000

    with tempfile.TemporaryDirectory(prefix="vlprep-store-bench-") as tmp:
        run(Path(tmp), args)


def run(tmp: Path, args: argparse.Namespace) -> None:
    items = list(records(args.items))
    ids = [i for i, _ in items]
    rng = random.Random(0)
    sample = [rng.choice(ids) for _ in range(args.reads)]

    start = time.perf_counter()
    write_npz_dir(tmp / "npz", items)
    npz_write = time.perf_counter() - start
    npz_bytes = sum(p.stat().st_size for p in (tmp / "npz").iterdir())

    rows = []
    results = {}
    for compression in ("none", "lzf", "gzip"):
        path = tmp / f"store-{compression}"
        start = time.perf_counter()
        with StoreWriter(path, kind="regions", shard_size=500, compression=compression) as w:
            for item_id, rec in items:
                w.add(item_id, rec)
        write_s = time.perf_counter() - start
        size = sum(p.stat().st_size for p in (path / "shards").iterdir())
        store = FeatureStore(path)
        start = time.perf_counter()
        for item_id in sample:
            store[item_id]
        random_s = time.perf_counter() - start
        start = time.perf_counter()
        for _ in store:
            pass
        seq_s = time.perf_counter() - start
        results[compression] = (random_s, seq_s)
        rows.append(
            {
                "layout": f"store/{compression}",
                "write s": write_s,
                "MiB": size / 2**20,
                "random reads/s": args.reads / random_s,
                "sequential items/s": args.items / seq_s,
            }
        )

    start = time.perf_counter()
    for item_id in sample:
        read_npz(tmp / "npz", item_id)
    npz_random = time.perf_counter() - start
    start = time.perf_counter()
    for item_id in ids:
        read_npz(tmp / "npz", item_id)
    npz_seq = time.perf_counter() - start
    rows.append(
        {
            "layout": "npz per item",
            "write s": npz_write,
            "MiB": npz_bytes / 2**20,
            "random reads/s": args.reads / npz_random,
            "sequential items/s": args.items / npz_seq,
        }
    )

    # Opening a large store reads store.json and the index, never the shards.
    big = tmp / "big"
    with StoreWriter(big, kind="tokens", shard_size=1000) as w:
        for i in range(args.open_items):
            w.add(f"video/{i:07d}.mp4", {"tokens": np.array([i % 20736], np.int32)})
    start = time.perf_counter()
    store = FeatureStore(big)
    n = len(store)
    assert "video/0000042.mp4" in store
    store["video/0000042.mp4"]
    open_s = time.perf_counter() - start
    print(f"open + len + one read of a {n:,}-item store: {open_s * 1000:.1f} ms")

    report(
        "store",
        rows,
        {
            "random read, store(none) vs npz": npz_random / results["none"][0],
            "sequential, store(none) vs npz": npz_seq / results["none"][1],
            "random read, store(lzf) vs npz": npz_random / results["lzf"][0],
            "random read, store(gzip) vs npz": npz_random / results["gzip"][0],
        },
    )


if __name__ == "__main__":
    main()
