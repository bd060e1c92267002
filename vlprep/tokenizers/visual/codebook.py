"""The fitted tree of centroids and the mapping from feature vectors to token ids.

Level `l` (1-based) holds `branching**l` centroids; the children of node `p` at level `l-1` are rows
`p*branching ... p*branching + branching-1` of level `l`. A token id is therefore the descent path read as a
base-`branching` number, level 1 most significant: `id // branching**(levels-1)` is the level-1 cluster.
Descent always picks the nearest *valid* child (copies made for tiny nodes are invalid) and breaks exact
ties by the lowest index, so a codebook maps a vector to one id, always.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import h5py
import numpy as np

FORMAT = "vlprep-codebook"
VERSION = 1
NORMALIZATIONS = ("none", "l2")
_BATCH_BYTES = 64 * 1024 * 1024  # per batch of rows on the CPU
_GATHER_BYTES = 1024 * 1024 * 1024  # per batch of gathered child centroids on a GPU


class CodebookError(ValueError):
    """A codebook that cannot be used for these features, or a file that is not a codebook."""


def l2_normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def apply_normalization(x: np.ndarray, normalize: str) -> np.ndarray:
    if normalize == "l2":
        return l2_normalize(x).astype(np.float32, copy=False)
    if normalize == "none":
        return x
    raise CodebookError(f"unknown normalisation {normalize!r}; choose one of {NORMALIZATIONS}")


def token_paths(ids: np.ndarray, levels: int, branching: int) -> np.ndarray:
    """[n] token ids -> [n, levels] child index chosen at each level (level 1 first)."""
    ids = np.asarray(ids, np.int64)
    powers = branching ** np.arange(levels - 1, -1, -1, dtype=np.int64)
    return (ids[:, None] // powers[None, :]) % branching


@dataclass
class Codebook:
    centroids: list[np.ndarray]  # level l -> [branching**l, dim] float32
    valid: list[np.ndarray]  # level l -> [branching**l] bool
    counts: list[np.ndarray]  # level l -> [branching**l] training points per node
    branching: int
    normalize: str = "none"
    error: list[float] = field(
        default_factory=list
    )  # mean squared quantisation error of the sample per level
    sample_size: int = 0
    points_seen: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, list[int]] = field(default_factory=dict)  # per level: tiny, empty, duplicated nodes

    def __post_init__(self) -> None:
        if self.normalize not in NORMALIZATIONS:
            raise CodebookError(f"unknown normalisation {self.normalize!r}; choose one of {NORMALIZATIONS}")
        for level, c in enumerate(self.centroids, start=1):
            if c.shape[0] != self.branching**level:
                raise CodebookError(
                    f"level {level} has {c.shape[0]} centroids, expected {self.branching**level}"
                )
        self._cache: dict[str, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        # Ray ships codebooks to workers; tensors cached for one device stay behind.
        return {k: v for k, v in self.__dict__.items() if k != "_cache"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._cache = {}

    @property
    def levels(self) -> int:
        return len(self.centroids)

    @property
    def dim(self) -> int:
        return int(self.centroids[0].shape[1])

    @property
    def vocab_size(self) -> int:
        return self.branching**self.levels

    def check_dim(self, dim: int, what: str = "features") -> None:
        if dim != self.dim:
            raise CodebookError(
                f"{what} have dimension {dim} but the codebook was fitted on {self.dim}-d vectors"
            )

    def _squared_norms(self) -> list[np.ndarray]:
        if "norms" not in self._cache:
            norms = []
            for c, v in zip(self.centroids, self.valid, strict=True):
                n2 = np.einsum("ij,ij->i", c, c, dtype=np.float64).astype(np.float32)
                # An invalid child is never the nearest: its squared norm is made infinite.
                n2[~v] = np.inf
                norms.append(n2)
            self._cache["norms"] = norms
        return self._cache["norms"]

    def _invalid_masks(self) -> list[np.ndarray]:
        """Per level, 0 for a valid centroid and inf for a copy, added to distances."""
        if "masks" not in self._cache:
            self._cache["masks"] = [np.where(v, 0.0, np.inf).astype(np.float32) for v in self.valid]
        return self._cache["masks"]

    def _tensors(self, device: str) -> tuple[list, list]:
        import torch

        key = f"torch:{device}"
        if key not in self._cache:
            self._cache[key] = (
                [torch.from_numpy(np.ascontiguousarray(c, np.float32)).to(device) for c in self.centroids],
                [torch.from_numpy(n2).to(device) for n2 in self._squared_norms()],
            )
        return self._cache[key]

    def assign(
        self, x: np.ndarray, batch_size: int | None = None, device: str = "cpu", threads: int | None = None
    ) -> np.ndarray:
        """Token ids (int32 [n]) of the rows of `x` [n, dim] by descent of the tree.

        On the CPU the rows of a batch are grouped by node and each group meets its node's children in one
        small distance computation; batches run on `threads` threads (default: faiss's OpenMP thread count),
        one OpenMP thread each. On a GPU (`device="cuda"`) every row gathers its children's centroids, which
        suits the GPU's memory bandwidth better than many small products. Both pick the nearest valid
        child, lowest index on exact ties."""
        x = np.asarray(x)
        if x.ndim != 2:
            raise CodebookError(f"expected a 2-D array [n, {self.dim}], got shape {x.shape}")
        self.check_dim(x.shape[1])
        # torch is imported only for a GPU: Ray workers and the CLI start faster without it.
        on_cpu = str(device).split(":")[0] == "cpu"
        if batch_size is None:
            batch_size = (
                max(4096, _BATCH_BYTES // 2 // (4 * self.dim))
                if on_cpu
                else max(1, _GATHER_BYTES // (4 * self.branching * self.dim))
            )

        def prepared(s: int) -> np.ndarray:
            xb = apply_normalization(np.asarray(x[s : s + batch_size], np.float32), self.normalize)
            return np.ascontiguousarray(xb)

        starts = range(0, len(x), batch_size)
        if on_cpu:
            threads = max(1, min(threads or faiss.omp_get_max_threads(), len(starts)))
            with ThreadPoolExecutor(threads, initializer=faiss.omp_set_num_threads, initargs=(1,)) as pool:
                parts = list(pool.map(lambda s: self._descend_grouped(prepared(s)), starts))
        else:
            parts = [self._descend_gather(prepared(s), device) for s in starts]
        out = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        return out.astype(np.int32) if self.vocab_size <= np.iinfo(np.int32).max else out

    def _descend_grouped(self, x: np.ndarray) -> np.ndarray:
        # faiss computes the distances: its BLAS obeys the calling thread's one-OpenMP-thread setting, where
        # numpy's would start threads of its own, which only contend with the batches running beside it.
        b = self.branching
        node = np.zeros(len(x), np.int64)
        for c, mask in zip(self.centroids, self._invalid_masks(), strict=True):
            if len(c) == b:
                node = (faiss.pairwise_distances(x, c) + mask[None, :]).argmin(axis=1)
                continue
            order = np.argsort(node, kind="stable")
            parents, starts = np.unique(node[order], return_index=True)
            ends = np.append(starts[1:], len(x))
            xs = x[order]
            child = np.empty(len(x), np.int64)
            for p, s, e in zip(parents.tolist(), starts.tolist(), ends.tolist(), strict=True):
                rows = slice(p * b, (p + 1) * b)
                dist = faiss.pairwise_distances(xs[s:e], c[rows]) + mask[None, rows]
                child[order[s:e]] = dist.argmin(axis=1)
            node = node * b + child
        return node

    def _descend_gather(self, x: np.ndarray, device: str) -> np.ndarray:
        import torch

        cents, sq = self._tensors(device)
        b = self.branching
        with torch.inference_mode():
            xt = torch.from_numpy(x).to(device)
            offsets = torch.arange(b, device=device)
            node = torch.zeros(len(xt), dtype=torch.long, device=device)
            for c, n2 in zip(cents, sq, strict=True):
                children = node[:, None] * b + offsets[None, :]  # [m, b]
                if c.shape[0] <= 4 * b:
                    # Few centroids: one product against all of them beats gathering.
                    dots = torch.gather(xt @ c.T, 1, children)
                else:
                    dots = torch.bmm(c[children], xt[:, :, None])[:, :, 0]
                node = node * b + (n2[children] - 2 * dots).argmin(1)
            return node.cpu().numpy()

    def quantization_error(self, x: np.ndarray, level: int | None = None) -> float:
        """Mean over rows of the squared distance to the centroid of the row's node at `level`
        (default: the leaves)."""
        level = self.levels if level is None else level
        ids = self.assign(x).astype(np.int64) // self.branching ** (self.levels - level)
        xn = apply_normalization(np.asarray(x, np.float32), self.normalize)
        total = 0.0
        for s in range(0, len(xn), 65536):
            diff = xn[s : s + 65536] - self.centroids[level - 1][ids[s : s + 65536]]
            total += float(np.einsum("ij,ij->", diff, diff, dtype=np.float64))
        return total / max(1, len(xn))

    def paths(self, ids: np.ndarray) -> np.ndarray:
        return token_paths(ids, self.levels, self.branching)

    def summary(self) -> dict[str, Any]:
        leaves_used = int((self.counts[-1] > 0).sum()) if self.counts else 0
        return {
            "levels": self.levels,
            "branching": self.branching,
            "dim": self.dim,
            "vocab_size": self.vocab_size,
            "normalize": self.normalize,
            "sample_size": self.sample_size,
            "points_seen": self.points_seen,
            "leaves_used": leaves_used,
            "error": list(self.error),
            **{k: list(v) for k, v in self.stats.items()},
            "params": dict(self.params),
        }

    def save(self, path: str | Path) -> Path:
        """Write one HDF5 file atomically (a .tmp renamed into place)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["version"] = VERSION
            f.attrs["levels"] = self.levels
            f.attrs["branching"] = self.branching
            f.attrs["dim"] = self.dim
            f.attrs["normalize"] = self.normalize
            f.attrs["sample_size"] = self.sample_size
            f.attrs["points_seen"] = self.points_seen
            f.attrs["params"] = json.dumps(self.params, sort_keys=True)
            f.create_dataset("error", data=np.asarray(self.error, np.float64))
            for name, values in self.stats.items():
                f.create_dataset(f"stats/{name}", data=np.asarray(values, np.int64))
            for level in range(1, self.levels + 1):
                g = f.create_group(f"level_{level}")
                g.create_dataset("centroids", data=np.asarray(self.centroids[level - 1], np.float32))
                g.create_dataset("valid", data=np.asarray(self.valid[level - 1], bool))
                g.create_dataset("counts", data=np.asarray(self.counts[level - 1], np.int64))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Codebook:
        path = Path(path)
        if not path.is_file():
            raise CodebookError(f"no codebook at {path}")
        if not h5py.is_hdf5(path):
            raise CodebookError(f"{path} is not a codebook (not HDF5); make one with `vlprep tokens fit`")
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != FORMAT:
                raise CodebookError(f"{path} is not a vlprep codebook")
            if int(f.attrs["version"]) > VERSION:
                raise CodebookError(
                    f"{path} has codebook version {f.attrs['version']}, newer than this vlprep"
                )
            levels = int(f.attrs["levels"])
            return cls(
                centroids=[f[f"level_{i}/centroids"][()] for i in range(1, levels + 1)],
                valid=[f[f"level_{i}/valid"][()].astype(bool) for i in range(1, levels + 1)],
                counts=[f[f"level_{i}/counts"][()] for i in range(1, levels + 1)],
                branching=int(f.attrs["branching"]),
                normalize=str(f.attrs["normalize"]),
                error=[float(e) for e in f["error"][()]],
                sample_size=int(f.attrs["sample_size"]),
                points_seen=int(f.attrs["points_seen"]),
                params=json.loads(f.attrs["params"]),
                stats={name: [int(v) for v in ds[()]] for name, ds in f.get("stats", {}).items()},
            )
