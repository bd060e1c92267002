"""Flickr30k: `flickr30k-images/ID.jpg` with Karpathy's `dataset_flickr30k.json` or the original
`results_20130124.token`.

- `dataset_flickr30k.json` (caption_datasets.zip, Karpathy & Fei-Fei 2015): {"images": [{"filename",
  "imgid", "split": "train"|"val"|"test", "sentences": [{"raw", "tokens", ...}], ...}], "dataset":
  "flickr30k"}. It gives the train/val/test split (29000/1014/1000) that retrieval and captioning papers
  report on.
- `results_20130124.token` (flickr30k.tar.gz): one caption per line, `1000092795.jpg#0<TAB>caption`, five
  per image; it has no split, so every image is in `all`.

Id: the file stem, the Flickr photo id (`1000092795`), as both annotation files and Flickr30k Entities
name the images."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from .base import Collector, CorpusError, Tree, expect, mark_unlisted


def _karpathy(collector: Collector, path: Path) -> list[tuple[str, str, list[str]]]:
    doc = collector.read(path)
    expect(
        isinstance(doc, dict) and isinstance(doc.get("images"), list), path, 'an object with an "images" list'
    )
    out = []
    for image in doc["images"]:
        expect(
            isinstance(image, dict) and "filename" in image, path, 'images with "filename" and "sentences"'
        )
        captions = [
            s["raw"].strip() for s in image.get("sentences", []) if isinstance(s, dict) and "raw" in s
        ]
        out.append((image["filename"], image.get("split", "all"), captions))
    return out


def _token_file(collector: Collector, path: Path) -> list[tuple[str, str, list[str]]]:
    collector.annotations.append(str(path))
    captions: dict[str, list[str]] = defaultdict(list)
    try:
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                key, sep, caption = line.rstrip("\n").partition("\t")
                if not sep or "#" not in key:
                    raise CorpusError(f"{path}:{n}: expected 'NAME.jpg#N<TAB>caption'", data=True)
                captions[key.rsplit("#", 1)[0]].append(caption.strip())
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path}: cannot read: {exc}", data=True) from None
    return [(name, "all", caps) for name, caps in captions.items()]


def scan_flickr30k(tree: Tree, collector: Collector) -> None:
    path = tree.require(
        "flickr30k",
        ["dataset_flickr30k.json", "results_20130124.token"],
        "Karpathy's split (caption_datasets.zip) or the captions of flickr30k.tar.gz",
    )
    entries = _karpathy(collector, path) if path.suffix == ".json" else _token_file(collector, path)
    files = {p.name: p for p in tree.images}
    used = set()
    for name, split, captions in entries:
        image = files.get(name)
        if image is None:
            collector.missing.append(name)
            continue
        used.add(image)
        collector.add(Path(name).stem, image, split, captions=captions)
    mark_unlisted(collector, tree, tree.images, used)
