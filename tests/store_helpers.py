"""Record generators shared by the store tests."""

from __future__ import annotations

import numpy as np

ODD_IDS = [
    "plain",
    "dir/sub/file.jpg",
    "../../etc/passwd",
    "..",
    "with space and\ttab",
    "ünïcødé/图片/😀.png",
    "/absolute/path",
    "x" * 300,
    "quote'\"and;semicolon",
    "ids",
    "offsets",
]


def region_record(rng: np.random.Generator, n: int | None = None, dim: int = 16) -> dict:
    n = int(rng.integers(1, 12)) if n is None else n
    x1 = rng.uniform(0, 300, n)
    y1 = rng.uniform(0, 200, n)
    boxes = np.stack([x1, y1, x1 + rng.uniform(1, 100, n), y1 + rng.uniform(1, 100, n)], 1).astype(np.float32)
    return {
        "features": rng.standard_normal((n, dim)).astype(np.float32),
        "boxes": boxes,
        "object_ids": rng.integers(0, 1600, n),
        "object_scores": rng.random(n).astype(np.float32),
        "image_h": 480,
        "image_w": 640,
        "num_boxes": n,
    }


CRASHED = 77


def crash_at(k: int, job) -> int:
    """Run `job()` in a forked child that `os._exit`s at the k-th store step (see vlprep.store.faults);
    returns the child's exit code: CRASHED if step k was reached, 0 if the job finished first."""
    import os
    import traceback

    from vlprep.store import faults

    pid = os.fork()
    if pid == 0:  # the child never returns into pytest
        count = 0

        def hook(name: str) -> None:
            nonlocal count
            if count == k:
                os._exit(CRASHED)
            count += 1

        faults.hook = hook
        try:
            job()
            code = 0
        except BaseException:
            traceback.print_exc()
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def trace_steps(job) -> list[str]:
    """The store steps `job()` goes through, in order."""
    from vlprep.store import faults

    steps: list[str] = []
    faults.hook = steps.append
    try:
        job()
    finally:
        faults.hook = None
    return steps
