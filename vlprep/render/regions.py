"""Drawing region records on their image: boxes with "attribute object score" labels."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Distinct, saturated colours; box k gets PALETTE[k % len]
PALETTE = [
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
    (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0), (0, 0, 128),
]  # fmt: skip
CANVAS_GRAY = 128


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


def render_regions(
    record: dict[str, Any],
    image_rgb: np.ndarray | None,
    out_png: str | Path,
    object_names: Sequence[str] | None = None,
    attribute_names: Sequence[str] | None = None,
    max_boxes: int | None = None,
) -> Path:
    """Draws the record's boxes and labels on `image_rgb` (uint8 [H, W, 3]; None draws on a gray canvas of
    the record's image size) and writes a PNG of the image's size. Boxes are in the record's image
    coordinates and are scaled if the given image has another size. The highest-scoring box is drawn last."""
    rec_h, rec_w = int(record["image_h"]), int(record["image_w"])
    if image_rgb is None:
        image = Image.new("RGB", (rec_w, rec_h), (CANVAS_GRAY,) * 3)
    else:
        image = Image.fromarray(np.ascontiguousarray(image_rgb, dtype=np.uint8)).convert("RGB")
    width, height = image.size
    boxes = np.asarray(record["boxes"], dtype=np.float64).reshape(-1, 4)
    boxes = boxes * np.array([width / rec_w, height / rec_h, width / rec_w, height / rec_h])
    scores = np.asarray(record.get("object_scores", np.zeros(len(boxes))), dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    if max_boxes is not None:
        order = order[:max_boxes]
    line = max(2, round(min(width, height) / 200))
    font = load_font(max(10, round(min(width, height) / 40)))
    draw = ImageDraw.Draw(image)
    for k in order[::-1]:
        colour = PALETTE[int(k) % len(PALETTE)]
        x1, y1, x2, y2 = (float(v) for v in boxes[k])
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=line)
        label = box_label(record, int(k), object_names, attribute_names)
        if not label:
            continue
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        tw, th = right - left, bottom - top
        ty = y1 - th - 2 if y1 - th - 2 >= 0 else y1 + line
        draw.rectangle([x1, ty, x1 + tw + 4, ty + th + 2], fill=colour)
        dark = sum(colour) > 3 * 150
        draw.text(
            (x1 + 2 - left, ty + 1 - top), label, fill=(0, 0, 0) if dark else (255, 255, 255), font=font
        )
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    image.save(out_png, format="PNG")
    return out_png


def label_names(store: Any, vocab: str | None = None) -> tuple[list[str] | None, list[str] | None]:
    """Label names for a store: `vocab` ("objects.txt,attributes.txt") when given, else the names the
    extraction recorded in the store's producer (from its --vocab), else None (ids are drawn)."""
    if vocab:
        from vlprep.extractors.regions.vocab import parse_vocab

        return parse_vocab(vocab)
    producer = store.meta.get("producer") or {}
    if not isinstance(producer, dict):
        return None, None
    objects, attributes = producer.get("object_names"), producer.get("attribute_names")
    if objects is None and isinstance(producer.get("vocab"), str):
        from vlprep.extractors.regions.vocab import parse_vocab

        try:
            return parse_vocab(producer["vocab"])
        except (OSError, ValueError):
            return None, None
    return objects, attributes


def render_region_item(
    store: Any,
    item_id: str,
    out_png: str | Path,
    image: str | Path | None = None,
    vocab: str | None = None,
    max_boxes: int | None = None,
) -> Path:
    """Renders one item of a regions store. The image is `image`, else the `path` recorded at extraction,
    decoded the way extraction decoded it (EXIF orientation applied); a store without paths (converted
    features) is drawn on a gray canvas."""
    record = store[item_id]
    source = image if image is not None else record.get("path")
    pixels = None
    if source:
        from vlprep.corpora.webdataset import media_source
        from vlprep.extractors.decode.image import decode_image

        pixels = decode_image(media_source(str(source)))
    objects, attributes = label_names(store, vocab)
    return render_regions(record, pixels, out_png, objects, attributes, max_boxes=max_boxes)
