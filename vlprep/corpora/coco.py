"""MS-COCO 2014 and 2017: images in split folders, captions in `annotations/captions_SPLIT.json`.

Captions files (annotations_trainval2014.zip / annotations_trainval2017.zip) are one JSON object with
`images` ([{"id", "file_name", "width", "height", ...}]) and `annotations` ([{"id", "image_id",
"caption"}]); a caption belongs to the image whose `id` is its `image_id`.

Ids:
- coco2014: the file stem, `COCO_val2014_000000000042`: the `img_id` of LXMERT's feature TSVs and of
  the bottom-up-attention features most 2014-era models (LXMERT, VisualBERT, ViLBERT) read. The split is
  in the name (`train2014`, `val2014`, `test2014`, `test2015` — the VQA test images).
- coco2017: the COCO `image_id` as a decimal string, `139` (the 2017 file name is that number padded to 12
  digits): what pycocotools and the COCO evaluation results files key images by. The split is the
  folder (`train2017`, `val2017`, `test2017`, `unlabeled2017`).

Splits without a captions file (the test splits) are listed from their folder, without captions. When a
captions file is present it is the list of its split: images it names that are not on disk are counted as
missing, images on disk it does not name as unlisted (and left out)."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from .base import Collector, CorpusError, Tree, expect, mark_unlisted

_COCO2014_NAME = re.compile(r"^COCO_((?:train|val|test)(?:2014|2015))_(\d{12})\.jpg$")
_COCO2017_NAME = re.compile(r"^(\d{12})\.jpg$")
_SPLITS2017 = ("train2017", "val2017", "test2017", "unlabeled2017")
_CAPTIONED = {"coco2014": ("train2014", "val2014"), "coco2017": ("train2017", "val2017")}


def _captions_by_file(collector: Collector, path: Path) -> tuple[dict[str, int], dict[int, list[str]]]:
    doc = collector.read(path)
    expect(
        isinstance(doc, dict)
        and isinstance(doc.get("images"), list)
        and isinstance(doc.get("annotations"), list),
        path,
        'a COCO captions file has "images" and "annotations" lists',
    )
    ids = {str(img["file_name"]): int(img["id"]) for img in doc["images"] if isinstance(img, dict)}
    captions: dict[int, list[str]] = defaultdict(list)
    for ann in doc["annotations"]:
        if isinstance(ann, dict) and isinstance(ann.get("caption"), str):
            captions[int(ann["image_id"])].append(ann["caption"].strip())
    return ids, captions


def _scan(dataset: str, tree: Tree, collector: Collector) -> None:
    by_split: dict[str, dict[str, Path]] = defaultdict(dict)
    for path in tree.images:
        if dataset == "coco2014":
            match = _COCO2014_NAME.match(path.name)
            split = match.group(1) if match else None
        else:
            split = path.parent.name if _COCO2017_NAME.match(path.name) else None
            split = split if split in _SPLITS2017 else None
        if split is None:
            collector.unlisted.append(tree.relative(path))
        else:
            by_split[split].setdefault(path.name, path)
    if not by_split:
        year = dataset[-4:]
        layout = (
            "train2014/COCO_train2014_000000000009.jpg, val2014/COCO_val2014_000000000042.jpg, ..."
            if year == "2014"
            else "train2017/000000000009.jpg, val2017/000000000139.jpg, ..."
        )
        raise CorpusError(f"{dataset}: no COCO {year} images under {tree.root} (expected {layout})")

    def item_id(file_name: str, image_id: int) -> str:
        return Path(file_name).stem if dataset == "coco2014" else str(image_id)

    for split in sorted(by_split):
        files = by_split[split]
        captions_file = tree.find(f"captions_{split}.json") if split in _CAPTIONED[dataset] else None
        if captions_file is None:
            if split in _CAPTIONED[dataset]:
                collector.notes.append(
                    f"no captions_{split}.json (annotations_trainval{split[-4:]}.zip): {split} listed "
                    "from its folder, without captions"
                )
            for name, path in files.items():
                number = int(Path(name).stem[-12:])
                collector.add(item_id(name, number), path, split, coco_id=number)
            continue
        ids, captions = _captions_by_file(collector, captions_file)
        used = set()
        for name, image_id in ids.items():
            path = files.get(name)
            if path is None:
                collector.missing.append(f"{split}/{name}")
                continue
            used.add(path)
            collector.add(
                item_id(name, image_id), path, split, coco_id=image_id, captions=captions.get(image_id, [])
            )
        mark_unlisted(collector, tree, files.values(), used)


def scan_coco2014(tree: Tree, collector: Collector) -> None:
    _scan("coco2014", tree, collector)


def scan_coco2017(tree: Tree, collector: Collector) -> None:
    _scan("coco2017", tree, collector)
