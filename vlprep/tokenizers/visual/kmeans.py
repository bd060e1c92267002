"""k-means of one tree node into `k` children, with faiss.

Every node gets exactly `k` children so that token ids stay dense (any base-k path names a node). A node with
fewer distinct points than `k` keeps one child per distinct point and fills the remaining slots with copies;
copies are marked invalid so that descent never picks them and ties can never make assignment ambiguous.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np

FITTED = "fitted"
TINY = "tiny"  # fewer distinct points than k: children are the points themselves plus copies
EMPTY = "empty"  # reachable node without training points: one child, a copy of the node's centroid

INITS = ("kmeans++", "random")  # greedy k-means++ (ours), or faiss's random pick of points


@dataclass
class NodeFit:
    centroids: np.ndarray  # [k, d] float32
    valid: np.ndarray  # [k] bool; False for copies, which descent must skip
    labels: np.ndarray  # [n] int64, the child of each point
    sse: float  # sum over the points of the squared distance to their child's centroid
    status: str


def node_seed(seed: int, level: int, node: int) -> int:
    """A seed per node that depends on the node's place in the tree only, not on visiting order."""
    return int(np.random.SeedSequence([seed, level, node]).generate_state(1)[0] & 0x7FFFFFFF)


def nearest(x: np.ndarray, centroids: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest valid centroid of each row and its squared distance."""
    cand = np.flatnonzero(valid)
    if len(x) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    index = faiss.IndexFlatL2(centroids.shape[1])
    index.add(np.ascontiguousarray(centroids[cand]))
    dist, idx = index.search(x, 1)
    return cand[idx[:, 0]], np.maximum(dist[:, 0], 0.0)


def _duplicate_rows(c: np.ndarray) -> np.ndarray:
    """True for each row equal to an earlier row."""
    dup = np.zeros(len(c), bool)
    for i in range(1, len(c)):
        dup[i] = bool((c[:i] == c[i]).all(axis=1).any())
    return dup


def _fill_with_points(x: np.ndarray, k: int, parent: np.ndarray, status: str) -> NodeFit:
    distinct = np.unique(x, axis=0) if len(x) else parent[None, :]
    centroids = np.repeat(distinct[:1], k, axis=0)
    centroids[: len(distinct)] = distinct
    valid = np.zeros(k, bool)
    valid[: len(distinct)] = True
    labels, dist = nearest(x, centroids, valid)
    return NodeFit(centroids.astype(np.float32), valid, labels, float(dist.sum(dtype=np.float64)), status)


def fit_node(
    x: np.ndarray,
    k: int,
    *,
    parent: np.ndarray,
    iters: int = 20,
    n_init: int = 1,
    seed: int = 0,
    max_points_per_centroid: int = 256,
    init: str = "kmeans++",
) -> NodeFit:
    """Split the points `x` [n, d] (float32, C-contiguous) of one node into `k` children.

    `parent` is the node's own centroid, used to fill the children of a node without points. `n_init` runs
    of k-means are made and the one with the lowest error kept. faiss runs with the calling thread's OpenMP
    setting; `fit` calls this from worker threads set to one OpenMP thread each. faiss trains on at most
    `max_points_per_centroid * k` points (a random subset), then every point is assigned.
    """
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; choose one of {INITS}")
    n, d = x.shape
    if n == 0:
        return _fill_with_points(x, k, parent, EMPTY)
    if n < k or (n < 4 * k and len(np.unique(x, axis=0)) < k):
        return _fill_with_points(x, k, parent, TINY)
    rng = np.random.default_rng(seed)
    best: NodeFit | None = None
    for _ in range(max(1, n_init)):
        # Train on a random subset (the centroids of a k-means barely move past a few hundred points per
        # centroid), then assign all of the node's points; each run is judged by its error on all of them.
        train = x
        if n > max_points_per_centroid * k:
            train = x[np.sort(rng.choice(n, max_points_per_centroid * k, replace=False))]
        init_centroids = greedy_kmeans_pp(train, k, rng) if init == "kmeans++" else None
        km = faiss.Kmeans(
            d,
            k,
            niter=iters,
            seed=int(rng.integers(2**31 - 1)),
            verbose=False,
            # faiss warns below 39 points per centroid (deep nodes are small by design) and would subsample
            # again above its own limit.
            min_points_per_centroid=1,
            max_points_per_centroid=len(train) // k + 1,
        )
        km.train(train, init_centroids=init_centroids)
        centroids = np.ascontiguousarray(km.centroids, dtype=np.float32)
        valid = ~_duplicate_rows(centroids)
        labels, dist = nearest(x, centroids, valid)
        candidate = NodeFit(centroids, valid, labels, float(dist.sum(dtype=np.float64)), FITTED)
        if best is None or candidate.sse < best.sse:
            best = candidate
    return best


def greedy_kmeans_pp(
    x: np.ndarray, k: int, rng: np.random.Generator, candidates: int | None = None
) -> np.ndarray:
    """Greedy k-means++ seeding (as scikit-learn's default): each new centre is the best, by the potential it
    leaves, of `candidates` points drawn with probability proportional to the squared distance to the
    centres so far. Plain k-means++ (faiss's) often puts two seeds in one well-separated group when k
    equals the number of groups, the very case of a tree node."""
    n = len(x)
    candidates = candidates or 2 + int(np.log(k))
    # faiss computes the distances so that the worker thread's one-OpenMP-thread setting holds (numpy's BLAS
    # would start its own threads).
    chosen = [int(rng.integers(n))]
    d2 = np.maximum(faiss.pairwise_distances(x[chosen], x)[0], 0)
    for _ in range(k - 1):
        total = float(d2.sum(dtype=np.float64))
        if total <= 0:  # fewer distinct points than k: the rest are copies, dropped later as duplicates
            chosen.append(chosen[-1])
            continue
        cum = np.cumsum(d2, dtype=np.float64)
        cand = np.minimum(np.searchsorted(cum, rng.random(candidates) * total), n - 1)
        dc = np.maximum(faiss.pairwise_distances(np.ascontiguousarray(x[cand]), x), 0)
        potential = np.minimum(d2[None, :], dc).sum(axis=1, dtype=np.float64)
        best = int(potential.argmin())
        chosen.append(int(cand[best]))
        d2 = np.minimum(d2, dc[best])
    return np.ascontiguousarray(x[chosen], np.float32)
