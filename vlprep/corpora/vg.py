"""Visual Genome: `VG_100K/` and `VG_100K_2/` (images.zip, images2.zip) with `image_data.json`.

`image_data.json` is a list of {"image_id" (v1.0: "id"), "url", "width", "height", "coco_id",
"flickr_id"}; the file name is the last part of `url`, `ID.jpg`. Id: the integer `image_id` as a decimal
string, `2354786`: what the VG scene-graph, region and QA files and the bottom-up-attention VG features
refer to. VG has no official split (`all`); `coco_id` and `flickr_id` are kept so that the images that are
also in COCO can be set aside, as LXMERT's pre-training set does."""

from __future__ import annotations

from .base import Collector, Tree, expect, mark_unlisted


def scan_vg(tree: Tree, collector: Collector) -> None:
    path = tree.require("vg", ["image_data.json"], "Visual Genome image metadata (image_data.json.zip)")
    entries = collector.read(path)
    expect(isinstance(entries, list), path, 'a list of {"image_id", "url", ...}')
    files = {p.name: p for p in tree.images}
    used = set()
    for entry in entries:
        expect(
            isinstance(entry, dict) and ("image_id" in entry or "id" in entry),
            path,
            'entries with "image_id"',
        )
        image_id = int(entry.get("image_id", entry.get("id")))
        url = entry.get("url") or ""
        name = url.rsplit("/", 1)[-1] if url else f"{image_id}.jpg"
        image = files.get(name) or files.get(f"{image_id}.jpg")
        if image is None:
            collector.missing.append(name)
            continue
        used.add(image)
        collector.add(
            str(image_id),
            image,
            "all",
            coco_id=entry.get("coco_id"),
            flickr_id=entry.get("flickr_id"),
            width=entry.get("width"),
            height=entry.get("height"),
        )
    mark_unlisted(collector, tree, tree.images, used)
