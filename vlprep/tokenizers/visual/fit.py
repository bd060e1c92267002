"""Fit a hierarchical k-means codebook: k-means per node, level by level, on a sample of the features."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faiss
import numpy as np

from vlprep.tokenizers.visual.codebook import NORMALIZATIONS, Codebook, apply_normalization
from vlprep.tokenizers.visual.kmeans import EMPTY, TINY, NodeFit, fit_node, node_seed
from vlprep.tokenizers.visual.sampling import sample_rows

POINTS_PER_LEAF = 50  # default sample: about this many points per leaf on average


def default_sample_size(levels: int, branching: int) -> int:
    return POINTS_PER_LEAF * branching**levels


def _sample(features_source: Any, size: int, seed: int, progress: Any) -> tuple[np.ndarray, int]:
    if isinstance(features_source, np.ndarray) and features_source.ndim == 2:
        n = len(features_source)
        if n <= size:
            return np.ascontiguousarray(features_source, np.float32), n
        idx = np.sort(np.random.default_rng(seed).choice(n, size, replace=False))
        return np.ascontiguousarray(features_source[idx], np.float32), n
    return sample_rows(features_source, size, seed=seed, progress=progress)


def fit(
    features_source: Any,
    levels: int = 4,
    branching: int = 12,
    sample: int | None = None,
    iters: int = 20,
    seed: int = 0,
    normalize: str | None = None,
    *,
    n_init: int = 3,
    init_levels: int = 2,
    max_points_per_centroid: int = 256,
    init: str = "kmeans++",
    field: str = "features",
    threads: int | None = None,
    on_rows: Callable[[int], None] | None = None,
    on_level: Callable[[int, int], None] | None = None,
    on_node: Callable[[], None] | None = None,
) -> Codebook:
    """Fit a `levels`-deep, `branching`-way k-means tree.

    `features_source`: an array [n, d], an iterator of arrays (a store's rows:
    `vlprep.pipelines.tokens.store_rows`), or a list of these; `field` only names the source in the
    codebook's parameters. `sample` rows are drawn uniformly (default: about 50 per leaf); iterators are
    streamed, so memory is bounded by the sample. Nodes of a level are fitted by `threads` threads
    (default: faiss's OpenMP thread count); the result does not depend on it. The `init_levels` top levels
    run `n_init` k-means per node and keep the lowest error (the tree's shape depends most on them);
    deeper levels run once. Rows with NaN or inf are left out (and counted). Callbacks report progress:
    `on_rows(n)` while
    sampling, `on_level(level, nodes)` and `on_node()` while fitting.
    """
    if levels < 1 or branching < 2:
        raise ValueError("need levels >= 1 and branching >= 2")
    normalize = normalize or "none"
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"unknown normalisation {normalize!r}; choose one of {NORMALIZATIONS}")
    t0 = time.perf_counter()
    size = sample if sample is not None else default_sample_size(levels, branching)
    x, seen = _sample(features_source, size, seed, on_rows)
    finite = np.isfinite(x).all(axis=1)
    dropped = int(len(x) - finite.sum())
    if dropped:
        x = x[finite]
    if len(x) == 0:
        raise ValueError("no (finite) feature rows to fit")
    x = np.ascontiguousarray(apply_normalization(x, normalize), np.float32)
    n, d = x.shape
    sample_seconds = time.perf_counter() - t0

    # Points of node p at the current level are x[order[bounds[p]:bounds[p+1]]].
    order = np.arange(n, dtype=np.int64)
    bounds = np.array([0, n], dtype=np.int64)
    parent_centroids = x.mean(axis=0, dtype=np.float64).astype(np.float32)[None, :]
    parent_valid = np.ones(1, bool)
    centroids, valid, counts, errors = [], [], [], []
    stats: dict[str, list[int]] = {"tiny_nodes": [], "empty_nodes": [], "duplicated_nodes": []}
    level_seconds = []
    threads = threads or faiss.omp_get_max_threads()

    def fit_one(level: int, p: int) -> NodeFit | None:
        if not parent_valid[p]:
            return None  # a copy made to keep ids dense: never reached, so its children are copies too
        s, e = int(bounds[p]), int(bounds[p + 1])
        xp = x if (s == 0 and e == n) else x[order[s:e]]
        return fit_node(
            xp,
            branching,
            parent=parent_centroids[p],
            iters=iters,
            n_init=n_init if level <= init_levels else 1,
            seed=node_seed(seed, level, p),
            max_points_per_centroid=max_points_per_centroid,
            init=init,
        )

    # Nodes are fitted in parallel threads (faiss releases the GIL), each with one OpenMP thread: per node
    # the work is small, and OpenMP's synchronisation would cost more than it saves, badly so when the
    # machine's cores are shared.
    with ThreadPoolExecutor(threads, initializer=faiss.omp_set_num_threads, initargs=(1,)) as pool:
        for level in range(1, levels + 1):
            tl = time.perf_counter()
            parents = branching ** (level - 1)
            if on_level is not None:
                on_level(level, parents)
            c_level = np.empty((parents * branching, d), np.float32)
            v_level = np.zeros(parents * branching, bool)
            new_order = np.empty_like(order)
            new_bounds = np.empty(parents * branching + 1, np.int64)
            new_bounds[-1] = n
            sse = 0.0
            tiny = empty = duplicated = 0
            results = pool.map(lambda p, level=level: fit_one(level, p), range(parents))
            for p, node in enumerate(results):
                s, e = int(bounds[p]), int(bounds[p + 1])
                rows = slice(p * branching, (p + 1) * branching)
                if node is None:
                    c_level[rows] = parent_centroids[p]
                    new_bounds[rows] = s
                else:
                    c_level[rows] = node.centroids
                    v_level[rows] = node.valid
                    sse += node.sse
                    tiny += node.status == TINY
                    empty += node.status == EMPTY
                    duplicated += int((~node.valid).sum())
                    new_order[s:e] = order[s:e][np.argsort(node.labels, kind="stable")]
                    sizes = np.bincount(node.labels, minlength=branching)
                    new_bounds[rows] = s + np.concatenate([[0], np.cumsum(sizes)[:-1]])
                if on_node is not None:
                    on_node()
            centroids.append(c_level)
            valid.append(v_level)
            counts.append(np.diff(new_bounds))
            errors.append(sse / n)
            stats["tiny_nodes"].append(tiny)
            stats["empty_nodes"].append(empty)
            stats["duplicated_nodes"].append(duplicated)
            level_seconds.append(round(time.perf_counter() - tl, 3))
            order, bounds = new_order, new_bounds
            parent_centroids, parent_valid = c_level, v_level

    params = {
        "iters": iters,
        "seed": seed,
        "n_init": n_init,
        "init_levels": init_levels,
        "init": init,
        "max_points_per_centroid": max_points_per_centroid,
        "descent": "tree",
        "field": field,
        "dropped_nonfinite_rows": dropped,
        "sample_seconds": round(sample_seconds, 3),
        "level_seconds": level_seconds,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return Codebook(
        centroids=centroids,
        valid=valid,
        counts=counts,
        branching=branching,
        normalize=normalize,
        error=errors,
        sample_size=n,
        points_seen=seen,
        params=params,
        stats=stats,
    )
