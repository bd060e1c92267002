"""A uniform sample of feature rows from arrays or iterators of arrays, read as a stream. Stores are
read by the caller (`vlprep.pipelines.tokens.store_rows`): this module knows nothing of them.

Memory stays bounded by the sample (`size` x dim float32) plus one item: rows are drawn by reservoir sampling
(Algorithm R), vectorised over each item's rows, so the total number of rows need not be known in advance.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np


class Reservoir:
    """A uniform random sample of `size` rows of everything passed to `add`."""

    def __init__(self, size: int, seed: int = 0) -> None:
        if size <= 0:
            raise ValueError("sample size must be positive")
        self.size = int(size)
        self.seen = 0
        self.dim: int | None = None
        self._rng = np.random.default_rng(seed)
        self._rows: np.ndarray | None = None

    def add(self, rows: np.ndarray) -> None:
        rows = np.asarray(rows)
        if rows.ndim == 1:
            rows = rows[None, :]
        if rows.ndim != 2:
            raise ValueError(f"feature rows must be 1-D or 2-D, got shape {rows.shape}")
        if self.dim is None:
            self.dim = rows.shape[1]
            self._rows = np.empty((self.size, self.dim), np.float32)
        elif rows.shape[1] != self.dim:
            raise ValueError(f"feature rows of dimension {rows.shape[1]} after rows of dimension {self.dim}")
        n = len(rows)
        if n == 0:
            return
        fill = min(n, max(0, self.size - self.seen))
        if fill:
            self._rows[self.seen : self.seen + fill] = rows[:fill]
        rest = rows[fill:]
        if len(rest):
            # Row j (0-based over everything seen) replaces slot r ~ U[0, j] when r < size.
            j = self.seen + fill + np.arange(len(rest))
            r = (self._rng.random(len(rest)) * (j + 1)).astype(np.int64)
            keep = np.flatnonzero(r < self.size)
            if len(keep):
                slots = r[keep]
                # Sequential semantics: of several rows that hit one slot, the last one stays.
                _, last = np.unique(slots[::-1], return_index=True)
                chosen = keep[::-1][last]
                self._rows[r[chosen]] = rest[chosen]
        self.seen += n

    @property
    def sample(self) -> np.ndarray:
        if self._rows is None:
            raise ValueError("no feature rows were read")
        return self._rows[: min(self.seen, self.size)]


def iter_rows(sources: Any) -> Iterator[np.ndarray]:
    """2-D row blocks from: an array [n, d] (or [d], or [..., d]); a list or tuple of sources; or any
    iterable of arrays (a store's field, as `vlprep.pipelines.tokens.store_rows` reads it)."""
    if isinstance(sources, np.ndarray):
        yield sources if sources.ndim == 2 else sources.reshape(-1, sources.shape[-1])
        return
    if isinstance(sources, (list, tuple)):
        for source in sources:
            yield from iter_rows(source)
        return
    if isinstance(sources, Iterable) and not isinstance(sources, (str, bytes)):
        for block in sources:
            yield from iter_rows(np.asarray(block))
        return
    raise TypeError(
        f"cannot read features from {type(sources).__name__}: pass arrays or an iterator of them "
        "(a store: vlprep.pipelines.tokens.store_rows)"
    )


def sample_rows(sources: Any, size: int, seed: int = 0, progress: Any = None) -> tuple[np.ndarray, int]:
    """(uniform sample of at most `size` rows as float32 [m, d], number of rows seen)."""
    reservoir = Reservoir(size, seed)
    for block in iter_rows(sources):
        reservoir.add(block)
        if progress is not None:
            progress(len(block))
    return reservoir.sample, reservoir.seen
