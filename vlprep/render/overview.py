"""A picture of a whole store: its first few items drawn side by side (regions) or stacked (video),
captioned with their ids, for `vlprep inspect STORE --render OUT.png` without --id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from .regions import load_font

TILES = 6
TILE_WIDTH = 420
BACKGROUND = (245, 245, 245)


def render_overview(store: Any, out_png: str | Path, names=None, top: int = 10, tiles: int = TILES) -> Path:
    ids = store.ids()[:tiles]
    pictures = [_item_picture(store, item_id, names, top) for item_id in ids]
    font = load_font(18)
    header = 40
    if store.kind == "regions":
        columns = min(3, len(pictures))
        rows = -(-len(pictures) // columns)
        cell_h = max(p.height for p in pictures)
        sheet = Image.new("RGB", (columns * TILE_WIDTH, header + rows * cell_h), BACKGROUND)
        for n, picture in enumerate(pictures):
            sheet.paste(picture, ((n % columns) * TILE_WIDTH, header + (n // columns) * cell_h))
    else:
        width = max(p.width for p in pictures)
        sheet = Image.new("RGB", (width, header + sum(p.height + 8 for p in pictures)), BACKGROUND)
        y = header
        for picture in pictures:
            sheet.paste(picture, (0, y))
            y += picture.height + 8
    title = f"{store.path}: {store.kind} store, {len(store):,} items; the first {len(ids)} shown"
    ImageDraw.Draw(sheet).text((10, 10), title, fill=(20, 20, 20), font=font)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out_png, format="PNG")
    return out_png


def _item_picture(store: Any, item_id: str, names, top: int) -> Image.Image:
    from .media import MediaMissingError

    record = store[item_id]
    if store.kind == "regions":
        from .regions import draw_regions, label_names, region_pixels

        objects, attributes = names if names is not None else label_names(store)
        try:
            pixels = region_pixels(record, item_id, None)
        except MediaMissingError:
            pixels = None  # the overview still shows the boxes, on gray
        picture = draw_regions(record, pixels, objects, attributes, max_boxes=top, legend=False)
        scale = (TILE_WIDTH - 10) / picture.width
        picture = picture.resize((TILE_WIDTH - 10, max(1, round(picture.height * scale))), Image.LANCZOS)
        cell = Image.new("RGB", (TILE_WIDTH, picture.height + 30), BACKGROUND)
        cell.paste(picture, (5, 0))
        ImageDraw.Draw(cell).text((5, picture.height + 6), item_id, fill=(20, 20, 20), font=load_font(14))
        return cell
    from .video import draw_video

    try:
        return draw_video(record, record.get("path") or None, caption=item_id)
    except Exception:  # noqa: BLE001 - an unreadable or moved video is drawn as gray tiles in an overview
        return draw_video(record, None, caption=item_id)
