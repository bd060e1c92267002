"""A PNG of a token store's token usage, drawn with Pillow: counts per token id and the rank-frequency curve,
both on a log scale, so that a collapsed codebook (few tokens carrying most of the mass) shows at a glance."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from .regions import load_font

WIDTH, HEIGHT = 1200, 720
MARGIN_LEFT, MARGIN_RIGHT = 70, 20
BAR, UNUSED, CURVE, AXIS, TEXT = (52, 101, 164), (240, 200, 200), (204, 80, 30), (80, 80, 80), (20, 20, 20)


def token_counts(store: Any, field: str = "tokens") -> tuple[np.ndarray, int]:
    """(count per token id over the whole store, number of items)."""
    counts = np.zeros(0, np.int64)
    items = 0
    for _, tokens in store.iter_field(field):
        t = np.asarray(tokens, np.int64).ravel()
        items += 1
        if t.size == 0:
            continue
        if t.min() < 0:
            raise ValueError("negative token ids")
        c = np.bincount(t)
        if len(c) > len(counts):
            counts = np.pad(counts, (0, len(c) - len(counts)))
        counts[: len(c)] += c
    return counts, items


def vocab_size_of(store: Any, counts: np.ndarray) -> int:
    producer = (store.meta or {}).get("producer") or {}
    if isinstance(producer, dict) and "levels" in producer and "branching" in producer:
        return max(int(producer["branching"]) ** int(producer["levels"]), len(counts))
    return max(1, len(counts))


def usage_stats(counts: np.ndarray, vocab_size: int) -> dict[str, float]:
    total = int(counts.sum())
    p = counts[counts > 0] / max(1, total)
    entropy = float(-(p * np.log(p)).sum()) if total else 0.0
    return {
        "total": total,
        "distinct": int((counts > 0).sum()),
        "vocab_size": vocab_size,
        "top_share": float(counts.max() / total) if total else 0.0,
        "perplexity": math.exp(entropy),
    }


def _log_height(value: float, top: float, height: int) -> float:
    return height * math.log10(1 + value) / math.log10(1 + top) if top > 0 else 0.0


def _y_axis(draw: ImageDraw.ImageDraw, font, x0: int, y_bottom: int, height: int, top: float) -> None:
    draw.line([(x0, y_bottom - height), (x0, y_bottom)], fill=AXIS)
    power = 0
    while 10**power <= max(top, 1):
        y = y_bottom - _log_height(10**power, top, height)
        draw.line([(x0 - 4, y), (x0, y)], fill=AXIS)
        draw.text(
            (x0 - 8, y), f"1e{power}" if power > 2 else str(10**power), fill=TEXT, font=font, anchor="rm"
        )
        power += 1


def _panel_by_id(draw, font, counts: np.ndarray, vocab: int, box: Sequence[int]) -> None:
    x0, y0, x1, y1 = box
    width, height = x1 - x0, y1 - y0
    padded = np.zeros(vocab, np.int64)
    padded[: len(counts)] = counts
    # Each pixel column shows the busiest token among the ids it covers, over a background whose redness
    # is the share of those ids never used (full red: all unused).
    edges = np.linspace(0, vocab, width + 1).astype(np.int64)
    top = float(padded.max())
    for col in range(width):
        a, b = edges[col], max(edges[col + 1], edges[col] + 1)
        ids = padded[a:b]
        x = x0 + col
        unused = float((ids == 0).mean()) if len(ids) else 0.0
        if unused > 0:
            shade = tuple(round(255 + (u - 255) * unused) for u in UNUSED)
            draw.line([(x, y0), (x, y1)], fill=shade)
        peak = ids.max() if len(ids) else 0
        if peak > 0:
            draw.line([(x, y1), (x, y1 - _log_height(peak, top, height))], fill=BAR)
    _y_axis(draw, font, x0, y1, height, top)
    draw.line([(x0, y1), (x1, y1)], fill=AXIS)
    for frac in (0, 0.25, 0.5, 0.75, 1):
        tid = int(frac * (vocab - 1))
        x = x0 + frac * (width - 1)
        draw.text((x, y1 + 4), str(tid), fill=TEXT, font=font, anchor="ma")
    draw.text(
        (x0, y0 - 16),
        "count per token id (log); red: share of ids never used",
        fill=TEXT,
        font=font,
    )


def _panel_by_rank(draw, font, counts: np.ndarray, vocab: int, box: Sequence[int]) -> None:
    x0, y0, x1, y1 = box
    width, height = x1 - x0, y1 - y0
    ranked = np.sort(counts[counts > 0])[::-1]
    top = float(ranked[0]) if len(ranked) else 0.0
    points = []
    for col in range(width):
        rank = int(col * vocab / width)
        value = ranked[rank] if rank < len(ranked) else 0
        points.append((x0 + col, y1 - _log_height(float(value), top, height)))
    draw.line(points, fill=CURVE, width=2)
    _y_axis(draw, font, x0, y1, height, top)
    draw.line([(x0, y1), (x1, y1)], fill=AXIS)
    for frac in (0, 0.25, 0.5, 0.75, 1):
        x = x0 + frac * (width - 1)
        draw.text((x, y1 + 4), str(int(frac * vocab)), fill=TEXT, font=font, anchor="ma")
    draw.text((x0, y0 - 16), "tokens sorted by count: rank vs count (log)", fill=TEXT, font=font)


def render_tokens(store: Any, out_png: str | Path, field: str = "tokens") -> Path:
    """Draw the token usage histogram of a token store (a FeatureStore or its path) to `out_png`."""
    if isinstance(store, (str, Path)):
        from vlprep.store import FeatureStore

        store = FeatureStore(store)
    counts, items = token_counts(store, field)
    vocab = vocab_size_of(store, counts)
    stats = usage_stats(counts, vocab)
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    # A scalable font: the fixed bitmap font squeezes spaces to a pixel ("tokenssorted").
    font = load_font(14)
    draw.text(
        (MARGIN_LEFT, 12),
        f"{stats['total']:,} tokens in {items:,} item{'s' if items != 1 else ''}; "
        f"{stats['distinct']:,} of {vocab:,} ids used "
        f"({100 * stats['distinct'] / vocab:.1f}%); most frequent id {100 * stats['top_share']:.1f}% of all; "
        f"perplexity {stats['perplexity']:,.0f}",
        fill=TEXT,
        font=font,
    )
    right = WIDTH - MARGIN_RIGHT
    _panel_by_id(draw, font, counts, vocab, (MARGIN_LEFT, 60, right, 360))
    _panel_by_rank(draw, font, counts, vocab, (MARGIN_LEFT, 420, right, HEIGHT - 40))
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out, format="PNG")
    return out
