"""`vlprep demo OUT_DIR`: the main job end to end on an embedded default.

Until the extractors are wired in, the demo writes a region-like store of generated records and
summarises it. The numbers are random: the point is to see the machinery, not the features.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vlprep.store import FeatureStore, StoreWriter, summarize, verify


def generated_region_records(count: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    for i in range(count):
        h, w = int(rng.integers(240, 640)), int(rng.integers(240, 640))
        n = int(rng.integers(10, 101))
        x1 = rng.uniform(0, w * 0.8, n)
        y1 = rng.uniform(0, h * 0.8, n)
        boxes = np.stack([x1, y1, x1 + rng.uniform(8, w * 0.2, n), y1 + rng.uniform(8, h * 0.2, n)], 1)
        yield (
            f"generated/{i:04d}.jpg",
            {
                "features": rng.random((n, 2048), dtype=np.float32),
                "boxes": boxes.astype(np.float32),
                "object_ids": rng.integers(0, 1600, n),
                "object_scores": np.sort(rng.random(n, dtype=np.float32))[::-1].copy(),
                "attr_ids": rng.integers(0, 400, n),
                "attr_scores": rng.random(n, dtype=np.float32),
                "image_h": h,
                "image_w": w,
                "num_boxes": n,
            },
        )


def run_demo(out_dir: str | Path, items: int = 200) -> dict[str, Any]:
    out = Path(out_dir)
    store_path = out / "regions-generated"
    with StoreWriter(
        store_path,
        kind="regions",
        shard_size=50,
        producer={"model": "generated"},
        dtype="float16",
        overwrite=True,
    ) as writer:
        for item_id, record in generated_region_records(items):
            writer.add(item_id, record)
        writer.error("generated/broken.jpg", "generated", "decode", "demo: a deliberately broken input")
    store = FeatureStore(store_path)
    return {"store": str(store_path), "summary": summarize(store), "verify": verify(store).to_json()}
