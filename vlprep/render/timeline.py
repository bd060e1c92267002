"""Drawing a token record: its token ids over time, one coloured block per row of the record, so that
repeated tokens (a static shot) and changes (a cut) show at a glance."""

from __future__ import annotations

import colorsys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from .regions import load_font

WIDTH, HEIGHT = 1200, 300
MARGIN = 60
TEXT, AXIS = (20, 20, 20), (90, 90, 90)


def token_colour(token: int) -> tuple[int, int, int]:
    """A stable colour per token id (golden-ratio hues), so the same id looks the same everywhere."""
    hue = (token * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.55, 0.92)
    return round(r * 255), round(g * 255), round(b * 255)


def render_token_timeline(record: dict[str, Any], out_png: str | Path, title: str = "") -> Path:
    """Token ids over time: a band of blocks (one per row, spanning its timestamps, labelled with its id
    where it fits) above a step plot of the id against time."""
    tokens = np.asarray(record["tokens"], dtype=np.int64).reshape(-1)
    spans = np.asarray(record["timestamps"], dtype=np.float64).reshape(-1, 2)
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    font, small = load_font(16), load_font(12)
    distinct = len(np.unique(tokens))
    draw.text((MARGIN, 10), f"{title}  {len(tokens)} tokens, {distinct} distinct", fill=TEXT, font=font)
    if len(tokens) == 0:
        draw.text((MARGIN, 60), "no tokens in this record", fill=TEXT, font=font)
        return _save(image, out_png)
    t0, t1 = float(spans.min()), float(spans.max())
    t1 = t1 if t1 > t0 else t0 + 1.0
    width = WIDTH - 2 * MARGIN

    def x(t: float) -> float:
        return MARGIN + (t - t0) / (t1 - t0) * width

    band_top, band_bottom = 44, 104
    for token, (a, b) in zip(tokens, spans, strict=True):
        xa, xb = x(a), max(x(b), x(a) + 1)
        draw.rectangle([xa, band_top, xb, band_bottom], fill=token_colour(int(token)), outline="white")
        label = str(int(token))
        left, _, right, _ = draw.textbbox((0, 0), label, font=small)
        if right - left + 4 < xb - xa:
            middle = ((xa + xb) / 2, (band_top + band_bottom) / 2)
            draw.text(middle, label, fill=TEXT, font=small, anchor="mm")
    plot_top, plot_bottom = 130, HEIGHT - 40
    low, high = int(tokens.min()), int(tokens.max())
    # half an id of room above and below, so no step lies on the axis
    span_low, span_high = low - 0.5, high + 0.5

    def y(token: float) -> float:
        return plot_bottom - (token - span_low) / (span_high - span_low) * (plot_bottom - plot_top)

    for token, (a, b) in zip(tokens, spans, strict=True):
        draw.line([(x(a), y(int(token))), (x(b), y(int(token)))], fill=token_colour(int(token)), width=4)
    draw.line([(MARGIN, plot_bottom), (MARGIN + width, plot_bottom)], fill=AXIS)
    draw.line([(MARGIN, plot_top), (MARGIN, plot_bottom)], fill=AXIS)
    draw.text((MARGIN - 6, y(high)), str(high), fill=TEXT, font=small, anchor="rm")
    if high != low:
        draw.text((MARGIN - 6, y(low)), str(low), fill=TEXT, font=small, anchor="rm")
    draw.text((MARGIN, plot_top - 16), "token id", fill=TEXT, font=small)
    for frac in (0, 0.25, 0.5, 0.75, 1):
        t = t0 + frac * (t1 - t0)
        draw.text((x(t), plot_bottom + 6), f"{t:.1f} s", fill=TEXT, font=small, anchor="ma")
    return _save(image, out_png)


def _save(image: Image.Image, out_png: str | Path) -> Path:
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    image.save(out_png, format="PNG")
    return out_png


def render_token_item(store: Any, item_id: str, out_png: str | Path) -> Path:
    return render_token_timeline(store[item_id], out_png, title=item_id)
