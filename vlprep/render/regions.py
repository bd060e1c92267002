"""Drawing region records on their image: the top-N boxes by score, each tagged with its rank, and a
legend naming them ("attribute object score").

Small images (detector inputs are often a few hundred pixels) are drawn enlarged so that boxes and text
are readable; huge ones are drawn reduced, so that a record claiming a 60000x60000 image costs no more
than a normal one."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Distinct, saturated colours; the box of rank r gets PALETTE[r % len]
PALETTE = [
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
    (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0), (0, 0, 128),
]  # fmt: skip
CANVAS_GRAY = 128
DEFAULT_TOP = 10
MIN_LONG_SIDE, MAX_LONG_SIDE = 640, 1600
LEGEND_WIDTH = 340
LEGEND_BACKGROUND = (250, 250, 250)
TEXT = (20, 20, 20)


class RecordError(ValueError):
    """A record that cannot be drawn (no image size); the message says what is wrong."""


def _name(names: Sequence[str] | None, index: int, prefix: str) -> str:
    if names is not None and 0 <= index < len(names):
        return names[index]
    return f"{prefix}{index}"


def box_label(
    record: dict[str, Any],
    k: int,
    object_names: Sequence[str] | None = None,
    attribute_names: Sequence[str] | None = None,
) -> str:
    """ "attr object score" for box k; ids (`a12`, `o345`) where no names are known."""
    parts = []
    if "attr_ids" in record:
        parts.append(_name(attribute_names, int(record["attr_ids"][k]), "a"))
    if "object_ids" in record:
        parts.append(_name(object_names, int(record["object_ids"][k]), "o"))
    if "object_scores" in record:
        parts.append(f"{float(record['object_scores'][k]):.2f}")
    return " ".join(parts)


def load_font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one fixed-size bitmap font
        return ImageFont.load_default()


def display_scale(width: int, height: int) -> float:
    """How much to enlarge (or reduce) an image so that its long side is readable but bounded."""
    long_side = max(width, height)
    if long_side < MIN_LONG_SIDE:
        return MIN_LONG_SIDE / long_side
    if long_side > MAX_LONG_SIDE:
        return MAX_LONG_SIDE / long_side
    return 1.0


def _overlaps(a: Sequence[float], b: Sequence[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def place_labels(
    boxes: np.ndarray, sizes: Sequence[tuple[int, int]], width: int, height: int
) -> list[tuple[float, float, float, float]]:
    """A rectangle for each label (w, h) near its box, inside the canvas and clear of the labels placed
    before it: above the box's top-left corner, else inside it, else below it, else along its sides.
    When every spot is taken the label goes to the free spot nearest its box on a coarse grid."""
    placed: list[tuple[float, float, float, float]] = []
    for (x1, y1, x2, y2), (w, h) in zip(boxes, sizes, strict=True):
        candidates = [
            (x1, y1 - h), (x1, y1), (x1, y2), (x1, y2 - h), (x2 - w, y1 - h), (x2 - w, y1), (x2 - w, y2),
            (x2 - w, y2 - h), (x2, y1), (x1 - w, y1),
        ]  # fmt: skip
        step = max(4, h)
        spots = [
            (gx, gy)
            for gy in range(0, max(1, height - h + 1), step)
            for gx in range(0, max(1, width - w + 1), step)
        ]
        grid = sorted(spots, key=lambda p: (p[0] - x1) ** 2 + (p[1] - y1) ** 2)
        chosen = None
        for cx, cy in [*candidates, *grid]:
            cx = min(max(cx, 0), max(0, width - w))
            cy = min(max(cy, 0), max(0, height - h))
            rect = (cx, cy, cx + w, cy + h)
            if not any(_overlaps(rect, other) for other in placed):
                chosen = rect
                break
        if chosen is None:  # no free spot at all: stack it at the top-left corner of its box
            cx, cy = min(max(x1, 0), max(0, width - w)), min(max(y1, 0), max(0, height - h))
            chosen = (cx, cy, cx + w, cy + h)
        placed.append(chosen)
    return placed


def _text_colour(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    return (0, 0, 0) if sum(colour) > 3 * 150 else (255, 255, 255)


def render_regions(
    record: dict[str, Any],
    image_rgb: np.ndarray | None,
    out_png: str | Path,
    object_names: Sequence[str] | None = None,
    attribute_names: Sequence[str] | None = None,
    max_boxes: int | None = DEFAULT_TOP,
    legend: bool = True,
    caption: str | None = None,
) -> Path:
    """Draws the record's `max_boxes` highest-scoring boxes on `image_rgb` (uint8 [H, W, 3]; None draws
    on a gray canvas of the record's image size), each tagged with its rank, plus a legend of their
    labels, and writes a PNG. Boxes are in the record's image coordinates and follow the image's size
    and the display scale (see display_scale)."""
    image = draw_regions(record, image_rgb, object_names, attribute_names, max_boxes, legend, caption)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    image.save(out_png, format="PNG")
    return out_png


def draw_regions(
    record: dict[str, Any],
    image_rgb: np.ndarray | None,
    object_names: Sequence[str] | None = None,
    attribute_names: Sequence[str] | None = None,
    max_boxes: int | None = DEFAULT_TOP,
    legend: bool = True,
    caption: str | None = None,
) -> Image.Image:
    """The picture render_regions writes, as a PIL image."""
    rec_h, rec_w = int(record["image_h"]), int(record["image_w"])
    if rec_h < 1 or rec_w < 1:
        raise RecordError(f"the record's image size is {rec_w}x{rec_h}; nothing to draw on")
    if image_rgb is None:
        scale = display_scale(rec_w, rec_h)
        size = (max(1, round(rec_w * scale)), max(1, round(rec_h * scale)))
        image = Image.new("RGB", size, (CANVAS_GRAY,) * 3)
    else:
        image = Image.fromarray(np.ascontiguousarray(image_rgb, dtype=np.uint8)).convert("RGB")
        scale = display_scale(*image.size)
        if scale != 1.0:
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            image = image.resize(size, Image.BICUBIC if scale > 1 else Image.LANCZOS)
    width, height = image.size
    boxes = np.asarray(record["boxes"], dtype=np.float64).reshape(-1, 4)
    boxes = boxes * np.array([width / rec_w, height / rec_h, width / rec_w, height / rec_h])
    finite = np.isfinite(boxes).all(axis=1)
    scores = np.asarray(record.get("object_scores", np.zeros(len(boxes))), dtype=np.float64).reshape(-1)
    if len(scores) != len(boxes):
        raise RecordError(f"the record has {len(boxes)} boxes but {len(scores)} scores")
    scores = np.where(np.isfinite(scores), scores, -np.inf)
    order = [int(k) for k in np.argsort(-scores, kind="stable") if finite[k]]
    shown = order[:max_boxes] if max_boxes is not None else order

    line = max(2, round(min(width, height) / 250))
    font = load_font(max(12, round(min(width, height) / 45)))
    draw = ImageDraw.Draw(image)
    tags = [str(rank + 1) for rank in range(len(shown))]
    sizes = []
    for tag in tags:
        left, top, right, bottom = draw.textbbox((0, 0), tag, font=font)
        sizes.append((right - left + 6, bottom - top + 4))
    # The highest-scoring box is drawn last (on top); its tag is placed first (nearest its box).
    for rank in reversed(range(len(shown))):
        x1, y1, x2, y2 = boxes[shown[rank]]
        draw.rectangle([x1, y1, x2, y2], outline=PALETTE[rank % len(PALETTE)], width=line)
    rects = place_labels(boxes[shown], sizes, width, height) if shown else []
    for rank, (rect, tag) in enumerate(zip(rects, tags, strict=True)):
        colour = PALETTE[rank % len(PALETTE)]
        draw.rectangle(rect, fill=colour)
        draw.text((rect[0] + 3, rect[1] + 2), tag, fill=_text_colour(colour), font=font, anchor="la")
    if not legend:
        return image
    entries = [box_label(record, k, object_names, attribute_names) for k in shown]
    title = f"top {len(shown)} of {len(boxes)} boxes by score"
    if (~finite).any():
        title += f"; {int((~finite).sum())} with non-finite coordinates not drawn"
    return _with_legend(image, title, entries, caption)


def _with_legend(image: Image.Image, title: str, entries: list[str], caption: str | None) -> Image.Image:
    font, small = load_font(16), load_font(13)
    row = 24
    header = 2 + (caption is not None)
    height = max(image.height, (len(entries) + header) * row + 20)
    canvas = Image.new("RGB", (image.width + LEGEND_WIDTH, height), LEGEND_BACKGROUND)
    canvas.paste(image, (0, 0))
    draw = ImageDraw.Draw(canvas)
    x = image.width + 14
    y = 10
    if caption is not None:
        draw.text((x, y), caption, fill=TEXT, font=font)
        y += row
    draw.text((x, y), title, fill=TEXT, font=small)
    y += row + 4
    for rank, entry in enumerate(entries):
        colour = PALETTE[rank % len(PALETTE)]
        draw.rectangle([x, y, x + 26, y + row - 6], fill=colour)
        draw.text(
            (x + 13, y + (row - 6) // 2), str(rank + 1), fill=_text_colour(colour), font=small, anchor="mm"
        )
        draw.text((x + 36, y), entry or "(no label)", fill=TEXT, font=font)
        y += row
    return canvas


def label_names(store: Any, vocab: str | None = None) -> tuple[list[str] | None, list[str] | None]:
    """Label names for a store: `vocab` ("objects.txt,attributes.txt") when given, else the names the
    extraction recorded in the store's producer (from its --vocab), else None (ids are drawn)."""
    from vlprep.extractors.regions.vocab import parse_vocab

    if vocab:
        return parse_vocab(vocab)
    producer = store.meta.get("producer") or {}
    if not isinstance(producer, dict):
        return None, None
    objects, attributes = producer.get("object_names"), producer.get("attribute_names")
    if objects is None and isinstance(producer.get("vocab"), str):
        try:
            return parse_vocab(producer["vocab"])
        except (OSError, ValueError):
            return None, None
    return objects, attributes


def region_pixels(record: dict[str, Any], item_id: str, image: str | Path | None) -> np.ndarray | None:
    """The pixels to draw `record` on: `image`, else the `path` recorded at extraction (decoded as
    extraction decoded it, EXIF orientation applied), else None (a gray canvas: converted features)."""
    from .media import recorded_media

    source = recorded_media(record, item_id, image)
    if source is None:
        return None
    from vlprep.corpora.webdataset import media_source
    from vlprep.extractors.decode.image import decode_image

    return decode_image(media_source(str(source)))  # a tar member's bytes are read in place


def render_region_item(
    store: Any,
    item_id: str,
    out_png: str | Path,
    image: str | Path | None = None,
    vocab: str | None = None,
    max_boxes: int | None = DEFAULT_TOP,
    names: tuple[list[str] | None, list[str] | None] | None = None,
) -> Path:
    """Renders one item of a regions store on its image (see region_pixels); `names` (objects,
    attributes) are label names already read, else they come from `vocab` or the store (label_names)."""
    record = store[item_id]
    objects, attributes = names if names is not None else label_names(store, vocab)
    pixels = region_pixels(record, item_id, image)
    return render_regions(record, pixels, out_png, objects, attributes, max_boxes=max_boxes, caption=item_id)
