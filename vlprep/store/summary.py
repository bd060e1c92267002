"""`summarize(store)`: what `vlprep inspect STORE` prints, as a JSON-able dict."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from .layout import INDEX_FILE, META_FILE, SHARD_DIR


def summarize(store, top: int = 10) -> dict[str, Any]:
    shards = store.shards()
    errors = store.errors()
    on_disk = sum(p.stat().st_size for p in (store.path / SHARD_DIR).iterdir() if p.is_file())
    on_disk += sum((store.path / n).stat().st_size for n in (META_FILE, INDEX_FILE))
    meta = store.meta
    out: dict[str, Any] = {
        "path": str(store.path),
        "kind": meta["kind"],
        "items": len(store),
        "errors": len(errors),
        "errors_by_stage": dict(Counter(e["stage"] for e in errors)),
        "fields": {name: f.to_json() for name, f in store.schema.items()},
        "shards": len(shards),
        "bytes": on_disk,
        "dtype": meta.get("dtype"),
        "compression": meta.get("compression"),
        "producer": meta.get("producer"),
        "runs": len(meta.get("runs", [])),
        "last_run": (meta.get("runs") or [None])[-1],
        "created": meta.get("created"),
        "updated": meta.get("updated"),
        "vlprep_version": meta.get("vlprep_version"),
    }
    if any(f.ragged for f in store.schema.values()) and shards:
        lengths = np.concatenate([np.diff(store._reader(s["shard"]).offsets) for s in shards])
        out["rows_per_item"] = {
            "min": int(lengths.min()),
            "mean": float(lengths.mean()),
            "max": int(lengths.max()),
        }
    if "tokens" in store.schema:
        counts: Counter[int] = Counter()
        for _, tokens in store.iter_field("tokens"):
            counts.update(np.asarray(tokens).ravel().tolist())
        out["tokens"] = {
            "total": sum(counts.values()),
            "distinct": len(counts),
            "most_frequent": [[int(t), int(c)] for t, c in counts.most_common(top)],
        }
    return out


def format_summary(s: dict[str, Any]) -> str:
    lines = [
        f"store     {s['path']}",
        f"kind      {s['kind']}",
        f"items     {s['items']:,}   errors {s['errors']:,}"
        + (f" ({', '.join(f'{k}: {v}' for k, v in s['errors_by_stage'].items())})" if s["errors"] else ""),
        f"shards    {s['shards']:,}   {human_bytes(s['bytes'])} on disk   "
        f"dtype {s['dtype'] or 'as written'}   compression {s['compression']}",
        "fields",
    ]
    for name, spec in s["fields"].items():
        dims = ",".join("n" if d is None else str(d) for d in spec["shape"])
        lines.append(f"  {name:<16} {spec['dtype']}[{dims}]")
    if "rows_per_item" in s:
        r = s["rows_per_item"]
        lines.append(f"rows/item min {r['min']}  mean {r['mean']:.1f}  max {r['max']}")
    if "tokens" in s:
        t = s["tokens"]
        top = ", ".join(f"{tok}×{c}" for tok, c in t["most_frequent"])
        lines.append(f"tokens    {t['total']:,} total, {t['distinct']:,} distinct; most frequent: {top}")
    producer = s["producer"]
    if producer:
        lines.append("producer")
        items = producer.items() if isinstance(producer, dict) else [("value", producer)]
        lines.extend(f"  {k}: {v}" for k, v in items)
    if s["last_run"]:
        lines.append(f"last run  {s['last_run']}")
    return "\n".join(lines)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
