"""Conceptual Captions (cc3m) and SBU Captions as img2dataset downloads them.

img2dataset (rom1504/img2dataset, `writer.py`) writes shards named by a zero-padded shard number:
- `--output_format files`: a folder per shard, `00000/KEY.jpg` with `KEY.txt` (the caption) and `KEY.json`
  (the row's metadata: "url", "caption", "key", "status", "width", "height", ...);
- `--output_format webdataset`: a tar per shard, `00000.tar` holding the same three members per sample;
  tars are read in place (see `webdataset.py`);
and beside each shard `00000.parquet` and `00000_stats.json` ({"count", "successes",
"failed_to_download", "failed_to_resize", ...}). Failed downloads leave no files, so the stats files are
how they are counted: missing = count - successes, summed over shards.

Id: the sample key (`000000031`; the shard number followed by the row's index in the shard), the name every
file of the sample shares and what webdataset loaders expose as `__key__`. Separate downloads (CC3M's
training and validation TSVs) restart the keys at 0, so when shards sit in a subfolder of the root that
folder is the split and prefixes the id (`validation/000000031`); shards directly in the root are in split
`all` with the bare key."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from .base import Collector, CorpusError, Tree, load_json
from .webdataset import Member, MemberError, iter_members, member_path, read_text

_IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")


def _split_of(tree: Tree, shard_parent: Path) -> str:
    rel = tree.relative(shard_parent)
    return "all" if rel in ("", ".") else rel


def _item_id(split: str, key: str) -> str:
    return key if split == "all" else f"{split}/{key}"


def _caption(text: bytes | None, meta: dict | None) -> str | None:
    if text is not None:
        caption = text.decode("utf-8", errors="replace").strip()
        if caption:
            return caption
    if isinstance(meta, dict) and isinstance(meta.get("caption"), str) and meta["caption"].strip():
        return meta["caption"].strip()
    return None


def _meta(raw: bytes | None) -> dict | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _add(collector: Collector, item_id: str, path: Path | str, split: str, text, raw_meta) -> None:
    meta = _meta(raw_meta)
    caption = _caption(text, meta)
    collector.add(
        item_id,
        path,
        split,
        captions=[caption] if caption else None,
        url=meta.get("url") if meta else None,
    )


def _scan_tar(tree: Tree, collector: Collector, tar: Path) -> None:
    split = _split_of(tree, tar.parent)
    samples: dict[str, dict[str, Member]] = defaultdict(dict)
    texts: dict[tuple[str, str], bytes] = {}
    try:
        for member, tf in iter_members(tar):
            ext = member.extension
            samples[member.key][ext] = member
            if ext in ("txt", "json"):
                texts[(member.key, ext)] = read_text(tf, member)
    except MemberError as exc:
        raise CorpusError(str(exc), data=True) from None
    for key, members in samples.items():
        image = next((members[e] for e in _IMAGE_EXTENSIONS if e in members), None)
        if image is None:
            collector.unlisted.append(f"{tree.relative(tar)}/{key} (no image member)")
            continue
        _add(
            collector,
            _item_id(split, key),
            member_path(tar, image.name),
            split,
            texts.get((key, "txt")),
            texts.get((key, "json")),
        )


def _read_optional(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _scan(dataset: str, tree: Tree, collector: Collector) -> None:
    if not tree.tars and not tree.images:
        raise CorpusError(
            f"{dataset}: no img2dataset shards under {tree.root} (expected 00000.tar, 00001.tar, ... or "
            "folders 00000/, 00001/, ... holding KEY.jpg with KEY.txt and KEY.json)"
        )
    for tar in tree.tars:
        _scan_tar(tree, collector, tar)
    for image in tree.images:
        split = "all" if image.parent == tree.root else _split_of(tree, image.parent.parent)
        _add(
            collector,
            _item_id(split, image.stem),
            image,
            split,
            _read_optional(image.with_suffix(".txt")),
            _read_optional(image.with_suffix(".json")),
        )
    for stats_path in tree.find_all("_stats.json"):
        stats = load_json(stats_path)
        if isinstance(stats, dict) and isinstance(stats.get("count"), int):
            collector.annotations.append(str(stats_path))
            collector.extra_missing += max(0, stats["count"] - int(stats.get("successes") or 0))


def scan_cc3m(tree: Tree, collector: Collector) -> None:
    _scan("cc3m", tree, collector)


def scan_sbu(tree: Tree, collector: Collector) -> None:
    _scan("sbu", tree, collector)
