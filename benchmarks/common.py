"""Small helpers shared by the benchmark scripts: timing and a uniform result line."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable


def timed(fn: Callable[[], object], repeat: int = 1) -> float:
    """Best wall time of `repeat` runs, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def machine() -> str:
    return f"{platform.machine()} {os.cpu_count()} cpus, python {platform.python_version()}"


def report(
    name: str, rows: list[dict], ratios: dict[str, float], values: dict[str, float] | None = None
) -> None:
    """Print a human table and one machine-readable RESULT line that `make bench` collects. `ratios` are
    shown as N.NNx; `values` (measurements that are not ratios, with their unit in the key) as they are."""
    if rows:
        keys = list(rows[0])
        widths = {k: max(len(k), *(len(_fmt(r[k])) for r in rows)) for k in keys}
        print("  ".join(k.ljust(widths[k]) for k in keys))
        for r in rows:
            print("  ".join(_fmt(r[k]).ljust(widths[k]) for k in keys))
    for key, value in ratios.items():
        print(f"{key}: {value:.2f}x")
    for key, value in (values or {}).items():
        print(f"{key}: {value:.3g}")
    result = {"benchmark": name, "ratios": ratios, "machine": machine(), "load": os.getloadavg()[0]}
    if values:
        result["values"] = values
    print("RESULT " + json.dumps(result))


def _fmt(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)
