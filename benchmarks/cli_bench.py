"""How fast the CLI answers a first-time user: a usage error (a text file as --weights) must come back in
well under a second, before Ray or a model start; drawing with `--vocab` must cost about what drawing
without it does (the label names load without torch). Wall times of whole `vlprep` processes, as ratios
against `vlprep --version` (interpreter and click start-up) and against the render without --vocab.

    python benchmarks/cli_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import report  # noqa: E402

from vlprep.store import StoreWriter  # noqa: E402

VLPREP = [sys.executable, "-m", "vlprep"]


def wall(args: list[str], repeat: int, expect: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run([*VLPREP, *args], capture_output=True, text=True)
        best = min(best, time.perf_counter() - start)
        if proc.returncode != expect:
            raise SystemExit(f"vlprep {' '.join(args)}: exit {proc.returncode}\n{proc.stderr}")
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    repeat = 1 if args.quick else 5
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rng = np.random.default_rng(0)
        store = root / "regions"
        with StoreWriter(store, kind="regions", producer={"model": "bench"}) as writer:
            n = 36
            x1, y1 = rng.uniform(0, 400, n), rng.uniform(0, 300, n)
            writer.add(
                "img",
                {
                    "features": rng.standard_normal((n, 2048)).astype(np.float32),
                    "boxes": np.stack([x1, y1, x1 + 120, y1 + 90], 1).astype(np.float32),
                    "object_ids": rng.integers(0, 1600, n),
                    "attr_ids": rng.integers(0, 400, n),
                    "object_scores": rng.random(n).astype(np.float32),
                    "image_h": 480,
                    "image_w": 640,
                    "num_boxes": n,
                },
            )
        (root / "objects.txt").write_text("\n".join(f"object{i}" for i in range(1600)))
        (root / "attributes.txt").write_text("\n".join(f"attribute{i}" for i in range(400)))
        (root / "images").mkdir()
        (root / "images" / "a.jpg").write_bytes(b"\xff\xd8\xff")  # listed, never read: the weights fail first
        (root / "weights.pth").write_text("this is not a checkpoint\n")
        vocab = f"{root / 'objects.txt'},{root / 'attributes.txt'}"
        render = ["inspect", str(store), "--id", "img", "--render", str(root / "r.png")]
        bad_weights = ["regions", str(root / "images"), "--out", str(root / "s")]
        bad_weights += ["--weights", str(root / "weights.pth")]
        times = {
            "version": wall(["--version"], repeat, 0),
            "inspect summary": wall(["inspect", str(store)], repeat, 0),
            "render": wall(render, repeat, 0),
            "render --vocab": wall([*render, "--vocab", vocab], repeat, 0),
            "bad --weights (usage error)": wall(bad_weights, repeat, 2),
        }
    rows = [{"command": k, "seconds": v} for k, v in times.items()]
    report(
        "cli",
        rows,
        {
            "render_vocab_vs_render": times["render --vocab"] / times["render"],
            "bad_weights_vs_version": times["bad --weights (usage error)"] / times["version"],
        },
    )


if __name__ == "__main__":
    main()
