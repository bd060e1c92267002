"""Hierarchical k-means (vlprep tokens) against faiss flat k-means with the same number of leaves.

One run, one data set: fit time and mean squared quantisation error of each, then assignment throughput
(tree descent vs a flat nearest-leaf search). Default: 3 levels x 12 = 1,728 leaves on 100,000 x 256 vectors.
`--full` adds the VideoBERT-size fit (12^4 = 20,736 leaves on 1,000,000 x 1024; time and peak memory),
`--quick` is a few-second smoke run. The data are synthetic "feature-like" vectors: a mixture of many
clusters whose centres and spreads have a decaying spectrum (as CNN features do), not isotropic noise, on
which any clustering is as good as any other.

    python benchmarks/tokens_bench.py [--quick] [--full] [--device cuda] [--iters 20]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import report  # noqa: E402

from vlprep.tokenizers.visual import fit  # noqa: E402


def feature_like(n: int, d: int, clusters: int, seed: int = 0, chunk: int = 100_000) -> np.ndarray:
    """n x d float32: mixture of `clusters` anisotropic clusters with a power-law spectrum."""
    rng = np.random.default_rng(seed)
    spectrum = (1.0 + np.arange(d)) ** -0.75
    centres = (rng.standard_normal((clusters, d)) * spectrum * 4).astype(np.float32)
    weights = rng.dirichlet(np.full(clusters, 2.0))
    spread = (rng.uniform(0.5, 1.5, clusters)).astype(np.float32)
    x = np.empty((n, d), np.float32)
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        which = rng.choice(clusters, m, p=weights)
        noise = rng.standard_normal((m, d), dtype=np.float32) * spectrum.astype(np.float32)
        x[s : s + m] = centres[which] + noise * spread[which, None]
    return x


def flat_mse(x: np.ndarray, centroids: np.ndarray) -> float:
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(np.ascontiguousarray(centroids, np.float32))
    dist, _ = index.search(x, 1)
    return float(np.maximum(dist, 0).mean(dtype=np.float64))


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def compare(
    n: int, d: int, levels: int, branching: int, iters: int, device: str, seed: int, flat_threads: int | None
) -> dict:
    leaves = branching**levels
    x = feature_like(n, d, clusters=4 * leaves, seed=seed)
    out: dict = {"n": n, "d": d, "levels": levels, "branching": branching, "leaves": leaves, "iters": iters}

    t = time.perf_counter()
    codebook = fit(x, levels=levels, branching=branching, sample=n, iters=iters, seed=seed)
    out["hier_fit_s"] = time.perf_counter() - t
    out["hier_mse"] = codebook.quantization_error(x)
    out["hier_level_s"] = codebook.params["level_seconds"]

    default_threads = faiss.omp_get_max_threads()
    if flat_threads:
        faiss.omp_set_num_threads(flat_threads)
    out["flat_threads"] = faiss.omp_get_max_threads()
    t = time.perf_counter()
    km = faiss.Kmeans(d, leaves, niter=iters, seed=seed, verbose=False)
    km.train(x)
    out["flat_fit_s"] = time.perf_counter() - t
    faiss.omp_set_num_threads(default_threads)
    out["flat_mse"] = flat_mse(x, km.centroids)

    out["fit_speedup"] = out["flat_fit_s"] / out["hier_fit_s"]
    out["mse_ratio"] = out["hier_mse"] / out["flat_mse"]

    codebook.assign(x[:1000], device=device)  # warm-up (device transfer of the centroids)
    t = time.perf_counter()
    ids = codebook.assign(x, device=device)
    out["assign_tree_rows_per_s"] = n / (time.perf_counter() - t)
    index = faiss.IndexFlatL2(d)
    index.add(codebook.centroids[-1])
    t = time.perf_counter()
    _, flat_ids = index.search(x, 1)
    out["assign_flat_leaves_rows_per_s"] = n / (time.perf_counter() - t)
    out["assign_speedup"] = out["assign_tree_rows_per_s"] / out["assign_flat_leaves_rows_per_s"]
    # How often a flat search over the leaves disagrees with the tree (the public reproduction's mapping).
    out["flat_vs_tree_disagree"] = float((flat_ids[:, 0] != ids).mean())
    if device != "cpu":
        t = time.perf_counter()
        cpu_ids = codebook.assign(x)
        out["assign_cpu_rows_per_s"] = n / (time.perf_counter() - t)
        out["device_vs_cpu_agree"] = float((cpu_ids == ids).mean())
    return out


def full(n: int, d: int, levels: int, branching: int, iters: int, device: str, seed: int) -> dict:
    leaves = branching**levels
    t = time.perf_counter()
    x = feature_like(n, d, clusters=2 * leaves, seed=seed, chunk=10_000)
    gen_s = time.perf_counter() - t
    rss_data = peak_rss_gib()
    t = time.perf_counter()
    codebook = fit(x, levels=levels, branching=branching, sample=n, iters=iters, seed=seed)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    m = min(n, 200_000)
    codebook.assign(x[:m], device=device)
    assign_rate = m / (time.perf_counter() - t)
    return {
        "n": n,
        "d": d,
        "levels": levels,
        "branching": branching,
        "leaves": leaves,
        "iters": iters,
        "data_gen_s": gen_s,
        "fit_s": fit_s,
        "level_s": codebook.params["level_seconds"],
        "error_per_level": codebook.error,
        "leaves_used": int((codebook.counts[-1] > 0).sum()),
        "tiny_nodes": codebook.stats["tiny_nodes"],
        "duplicated_nodes": codebook.stats["duplicated_nodes"],
        "data_gib": x.nbytes / 1024**3,
        "peak_rss_after_data_gib": rss_data,
        "peak_rss_gib": peak_rss_gib(),
        "assign_rows_per_s": assign_rate,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run in a few seconds")
    ap.add_argument("--full", action="store_true", help="also fit 12^4 on 1,000,000 x 1024")
    ap.add_argument("--full-n", type=int, default=1_000_000)
    ap.add_argument("--device", default="cpu", help="torch device for assignment (cpu, cuda)")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--flat-threads",
        type=int,
        default=None,
        help="flat baseline's OpenMP threads",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    print(f"faiss threads {faiss.omp_get_max_threads()}, device {args.device}", file=sys.stderr)

    if args.quick:
        r = compare(10_000, 64, 2, 12, args.iters, args.device, args.seed, args.flat_threads)
    else:
        r = compare(100_000, 256, 3, 12, args.iters, args.device, args.seed, args.flat_threads)
    results = {"compare": r}
    print(
        f"{r['leaves']} leaves on {r['n']:,}x{r['d']}: "
        f"fit hier {r['hier_fit_s']:.2f} s vs flat {r['flat_fit_s']:.2f} s ({r['flat_threads']} threads) "
        f"-> {r['fit_speedup']:.1f}x faster (goal >= 10x); "
        f"MSE hier {r['hier_mse']:.4g} vs flat {r['flat_mse']:.4g} "
        f"-> ratio {r['mse_ratio']:.3f} (goal <= 1.25)"
    )
    print(
        f"assign: tree descent {r['assign_tree_rows_per_s']:,.0f} rows/s vs flat leaf search "
        f"{r['assign_flat_leaves_rows_per_s']:,.0f} rows/s -> {r['assign_speedup']:.1f}x; "
        f"flat search disagrees with the tree on {100 * r['flat_vs_tree_disagree']:.1f}% of rows"
    )
    if "device_vs_cpu_agree" in r:
        print(
            f"{args.device}: {r['assign_tree_rows_per_s']:,.0f} rows/s "
            f"vs cpu {r['assign_cpu_rows_per_s']:,.0f}; "
            f"ids agree with the cpu descent on {100 * r['device_vs_cpu_agree']:.3f}% of rows"
        )
    if args.full:
        f = full(args.full_n, 1024, 4, 12, args.iters, args.device, args.seed)
        results["full"] = f
        print(
            f"full: {f['leaves']:,} leaves on {f['n']:,}x{f['d']}: "
            f"fit {f['fit_s']:.1f} s (levels {f['level_s']}), {f['leaves_used']:,} leaves used, "
            f"data {f['data_gib']:.2f} GiB, peak RSS {f['peak_rss_gib']:.2f} GiB "
            f"(after data {f['peak_rss_after_data_gib']:.2f}), assign {f['assign_rows_per_s']:,.0f} rows/s"
        )
    if args.json:
        print(json.dumps(results, indent=2))
    ratios = {
        "hierarchical vs flat k-means fit time": r["fit_speedup"],
        "flat / hierarchical quantisation error": 1 / r["mse_ratio"],
        "tree descent vs flat leaf search assignment": r["assign_speedup"],
    }
    report("tokens", [], ratios)


if __name__ == "__main__":
    main()
