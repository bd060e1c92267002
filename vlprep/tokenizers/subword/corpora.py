"""Streamed corpus readers: plain text (a sentence or caption per line), JSONL with a text field, COCO
captions JSON, each optionally gzipped.

Lines that are not valid UTF-8 (and JSONL records that do not parse) are counted and skipped rather than
ending the run: big scraped caption sets always have a few. Text is read in large binary blocks that
are decoded in one call; only a block that fails to decode is redone line by line.
"""

from __future__ import annotations

import gzip
import io
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

FORMATS = ("auto", "text", "jsonl", "coco")
_BLOCK_BYTES = 1 << 22


@dataclass
class CorpusStats:
    """What the readers saw. `lines` counts every input line or record, `invalid_lines` the skipped ones;
    `records` counts the JSONL records and COCO annotations among `lines`, and `texts` the texts read
    from them (a manifest record holds several captions)."""

    files: int = 0
    lines: int = 0
    invalid_lines: int = 0
    bytes: int = 0
    records: int = 0
    texts: int = 0


def detect_format(path: str | os.PathLike) -> str:
    name = os.fspath(path).lower()
    if name.endswith(".gz"):
        name = name[:-3]
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if name.endswith(".json"):
        return "coco"
    return "text"


def _open_binary(path: str | os.PathLike) -> io.BufferedIOBase:
    if os.fspath(path).lower().endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def _decode_lines(block: bytes, stats: CorpusStats) -> str:
    """Decode a block of whole lines; lines that are not UTF-8 are dropped and counted."""
    try:
        return block.decode("utf-8")
    except UnicodeDecodeError:
        good = []
        for raw in block.split(b"\n"):
            try:
                good.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                stats.invalid_lines += 1
        return "\n".join(good)


def _raw_blocks(path: str | os.PathLike, stats: CorpusStats, block_bytes: int) -> Iterator[bytes]:
    """Binary blocks that end at a line end (the last one possibly without)."""
    with _open_binary(path) as f:
        rest = b""
        while True:
            chunk = f.read(block_bytes)
            if not chunk:
                break
            stats.bytes += len(chunk)
            data = rest + chunk
            cut = data.rfind(b"\n")
            if cut < 0:
                rest = data
                continue
            rest = data[cut + 1 :]
            block = data[:cut]
            stats.lines += block.count(b"\n") + 1
            yield block
        if rest:
            stats.lines += 1
            yield rest


def _text_blocks(path: str | os.PathLike, stats: CorpusStats, block_bytes: int) -> Iterator[str]:
    for block in _raw_blocks(path, stats, block_bytes):
        yield _decode_lines(block, stats)


def _field_values(record: object, field: str) -> list[str]:
    value = record
    for part in field.split("."):
        if not isinstance(value, dict) or part not in value:
            return []
        value = value[part]
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):  # e.g. VATEX keeps ten captions per video in one record
        return [v for v in value if isinstance(v, str)]
    return []


def _jsonl_lines(path: str | os.PathLike, field: str, stats: CorpusStats, block_bytes: int) -> Iterator[str]:
    first_keys = None  # of the first record, to name the fields there are when `field` is in none
    found = False
    for block in _raw_blocks(path, stats, block_bytes):
        for raw in block.split(b"\n"):
            stats.records += 1
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                stats.invalid_lines += 1
                continue
            if first_keys is None and isinstance(record, dict):
                first_keys = sorted(record)
            values = _field_values(record, field)
            stats.texts += len(values)
            found = found or bool(values)
            yield from values
    if first_keys is not None and not found:
        # e.g. a `vlprep manifest` file (field "captions") read with the default --field caption
        raise ValueError(
            f"{os.fspath(path)}: no record has text in the field {field!r} (the first has: "
            f"{', '.join(first_keys)}); choose the field with --field"
        )


def _coco_lines(path: str | os.PathLike, stats: CorpusStats) -> Iterator[str]:
    # A COCO captions file is one JSON document; it is parsed whole (tens of MB for COCO itself).
    with _open_binary(path) as f:
        data = f.read()
    stats.bytes += len(data)
    doc = json.loads(data)
    annotations = doc.get("annotations", []) if isinstance(doc, dict) else []
    for ann in annotations:
        stats.lines += 1
        stats.records += 1
        caption = ann.get("caption") if isinstance(ann, dict) else None
        if isinstance(caption, str):
            stats.texts += 1
            yield caption
        else:
            stats.invalid_lines += 1


def iter_text_blocks(
    paths: Iterable[str | os.PathLike],
    *,
    field: str = "caption",
    fmt: str = "auto",
    stats: CorpusStats | None = None,
    block_bytes: int = _BLOCK_BYTES,
) -> Iterator[str]:
    """The corpus as strings of many lines joined by newlines (the fast path for word counting)."""
    stats = stats if stats is not None else CorpusStats()
    for path in paths:
        stats.files += 1
        kind = detect_format(path) if fmt == "auto" else fmt
        if kind == "text":
            yield from _text_blocks(path, stats, block_bytes)
            continue
        lines = _jsonl_lines(path, field, stats, block_bytes) if kind == "jsonl" else _coco_lines(path, stats)
        buf: list[str] = []
        size = 0
        for line in lines:
            buf.append(line)
            size += len(line)
            if size >= block_bytes:
                yield "\n".join(buf)
                buf, size = [], 0
        if buf:
            yield "\n".join(buf)


def iter_lines(
    paths: Iterable[str | os.PathLike],
    *,
    field: str = "caption",
    fmt: str = "auto",
    stats: CorpusStats | None = None,
    block_bytes: int = _BLOCK_BYTES,
) -> Iterator[str]:
    """The corpus one sentence at a time; empty lines are skipped (but counted in `stats.lines`)."""
    for block in iter_text_blocks(paths, field=field, fmt=fmt, stats=stats, block_bytes=block_bytes):
        for line in block.split("\n"):
            line = line.rstrip("\r")
            if line.strip():
                yield line


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, not {fmt!r}")
    return fmt
