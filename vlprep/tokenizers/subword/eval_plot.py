"""A PNG of `vlprep vocab eval`'s table, drawn with Pillow: one bar chart per measure, one bar per
vocabulary in the same colour across panels, the value written on each bar."""

from __future__ import annotations

import os
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

from vlprep.tokenizers.subword.evaluate import METRICS, VocabEval

PANEL_W, PANEL_H, COLS = 420, 300, 3
COLOURS = [(52, 101, 164), (204, 80, 30), (78, 154, 6), (117, 80, 123), (193, 125, 17), (6, 152, 154)]
AXIS, TEXT, BG = (80, 80, 80), (20, 20, 20), (255, 255, 255)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size
        return ImageFont.load_default()


def plot(results: Sequence[VocabEval], out: str | os.PathLike) -> None:
    rows = -(-len(METRICS) // COLS)
    legend_h = 24 * len(results) + 16
    img = Image.new("RGB", (PANEL_W * COLS, PANEL_H * rows + legend_h), BG)
    draw = ImageDraw.Draw(img)
    font, small = _font(15), _font(12)
    for i, (label, attr, fmt, better) in enumerate(METRICS):
        x0, y0 = (i % COLS) * PANEL_W, (i // COLS) * PANEL_H
        title = label + (f" ({better} is better)" if better else "")
        draw.text((x0 + PANEL_W // 2, y0 + 14), title, fill=TEXT, font=font, anchor="mm")
        values = [float(getattr(r, attr)) for r in results]
        top = max(max(values), 0.0)
        bottom = min(min(values), 0.0)  # log-likelihoods are negative: bars hang from the zero line
        span = (top - bottom) or 1.0
        plot_top, plot_bottom = y0 + 40, y0 + PANEL_H - 30
        zero = plot_bottom - (0.0 - bottom) / span * (plot_bottom - plot_top)
        left, right = x0 + 30, x0 + PANEL_W - 30
        draw.line([(left, zero), (right, zero)], fill=AXIS)
        slot = (right - left) / len(results)
        for j, v in enumerate(values):
            bx0 = left + j * slot + slot * 0.15
            bx1 = left + (j + 1) * slot - slot * 0.15
            y = plot_bottom - (v - bottom) / span * (plot_bottom - plot_top)
            draw.rectangle([bx0, min(y, zero), bx1, max(y, zero)], fill=COLOURS[j % len(COLOURS)])
            text = fmt.format(int(v) if fmt == "{:d}" else v)
            ty = min(y, zero) - 9 if v >= 0 else max(y, zero) + 9
            draw.text(((bx0 + bx1) / 2, ty), text, fill=TEXT, font=small, anchor="mm")
    ly = PANEL_H * rows + 8
    for j, r in enumerate(results):
        draw.rectangle([20, ly + 24 * j + 4, 36, ly + 24 * j + 18], fill=COLOURS[j % len(COLOURS)])
        draw.text(
            (44, ly + 24 * j + 11), f"{r.name}  ({r.kind}, {r.path})", fill=TEXT, font=font, anchor="lm"
        )
    img.save(out)
