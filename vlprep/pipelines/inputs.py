"""Turning command-line inputs (directories, globs, list files, manifests) into (id, path) items.

Ids default to the path relative to the input's root (the directory, the glob's fixed prefix, the list
file's directory), with forward slashes, so the same corpus gets the same ids wherever it is mounted."""

from __future__ import annotations

import csv
import glob
import json
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jfif", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
)
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ts"}
)
LIST_EXTENSIONS = frozenset({".txt", ".lst", ".list"})
MANIFEST_EXTENSIONS = frozenset({".csv", ".jsonl"})
TAR_EXTENSION = ".tar"


class InputError(ValueError):
    """The inputs cannot be listed: a missing path, a malformed manifest, duplicate ids."""


@dataclass(frozen=True)
class Item:
    id: str
    path: str


def _relative_id(path: Path, root: Path) -> str:
    # A file name that is not valid UTF-8 (`bad\xff.jpg`) gets an escaped, reversible id; its path is
    # kept as the operating system gave it, so the file is still processed.
    from vlprep.store.ids import escape_id

    try:
        return escape_id(path.relative_to(root).as_posix())
    except ValueError:
        return escape_id(path.as_posix())


def _walk(directory: Path, extensions: frozenset[str]) -> list[Item]:
    items = []
    for dirpath, dirnames, filenames in os.walk(directory, followlinks=True):
        dirnames.sort()
        for name in sorted(filenames):
            if Path(name).suffix.lower() in extensions and not name.startswith("."):
                path = Path(dirpath) / name
                items.append(Item(_relative_id(path, directory), str(path)))
    return items


def _glob_root(pattern: str) -> Path:
    parts = []
    for part in Path(pattern).parts:
        if glob.has_magic(part):
            break
        parts.append(part)
    return Path(*parts) if parts else Path(".")


def _tar_members(tar: Path, extensions: frozenset[str], prefix: str = "") -> list[Item]:
    """A webdataset/img2dataset shard read like a folder: its members with one of `extensions`, ids
    relative to the tar (after `prefix`), paths `SHARD.tar/MEMBER` that the decoders read in place."""
    from vlprep.corpora.webdataset import MemberError, iter_members, member_path

    try:
        return [
            Item(prefix + m.name, member_path(tar, m.name))
            for m, _ in iter_members(tar)
            if Path(m.name).suffix.lower() in extensions
        ]
    except MemberError as exc:
        raise InputError(str(exc)) from None


def _expand_glob(pattern: str, extensions: frozenset[str]) -> list[Item]:
    root = _glob_root(pattern)
    items = []
    for match in sorted(glob.glob(pattern, recursive=True)):
        path = Path(match)
        if path.is_dir():
            items.extend(Item(_relative_id(Path(i.path), root), i.path) for i in _walk(path, extensions))
        elif path.is_file() and path.suffix.lower() == TAR_EXTENSION and TAR_EXTENSION not in extensions:
            items.extend(_tar_members(path, extensions, prefix=_relative_id(path, root) + "/"))
        elif path.is_file():
            items.append(Item(_relative_id(path, root), str(path)))
    return items


def _resolve(entry: str, base: Path) -> Path:
    path = Path(entry).expanduser()
    return path if path.is_absolute() else base / path


def _read_list(list_file: Path) -> list[Item]:
    base = list_file.parent
    items = []
    with open(list_file, encoding="utf-8") as fh:
        for line in fh:
            entry = line.strip()
            if entry and not entry.startswith("#"):
                path = _resolve(entry, base)
                items.append(Item(_relative_id(path, base), str(path)))
    return items


def _manifest_item(row: dict, base: Path, where: str) -> Item:
    path_value = row.get("path")
    if path_value in (None, ""):
        raise InputError(f"{where}: no 'path'")
    path = _resolve(str(path_value), base)
    item_id = row.get("id")
    item_id = _relative_id(path, base) if item_id in (None, "") else str(item_id)
    return Item(item_id, str(path))


def _read_csv(manifest: Path) -> list[Item]:
    with open(manifest, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or "path" not in reader.fieldnames:
            raise InputError(f"{manifest}: a CSV manifest needs a header with a 'path' column (and 'id')")
        return [_manifest_item(row, manifest.parent, f"{manifest}:{n + 2}") for n, row in enumerate(reader)]


def _read_jsonl(manifest: Path) -> list[Item]:
    items = []
    with open(manifest, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{manifest}:{n}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise InputError(f"{manifest}:{n}: expected an object with 'id' and 'path'")
            items.append(_manifest_item(row, manifest.parent, f"{manifest}:{n}"))
    return items


def list_items(
    inputs: Sequence[str] | str, extensions: Iterable[str], *, tar_members: bool = True
) -> list[Item]:
    """All items named by `inputs`, in a deterministic order.

    Each input is a directory (walked recursively, keeping files with one of `extensions`), a glob, a list
    file (.txt/.lst/.list: one path per line, relative to the list file), a manifest (.csv with a header,
    or .jsonl such as `vlprep manifest` writes; columns `path` and optional `id`, other fields ignored), a
    webdataset tar (its members with one of `extensions`, read in place; refused when `tar_members` is
    False) or a single media file. Raises InputError for a missing input or two items with the same id."""
    if isinstance(inputs, str):
        inputs = [inputs]
    extensions = frozenset(e.lower() if e.startswith(".") else "." + e.lower() for e in extensions)
    items: list[Item] = []
    for spec in inputs:
        path = Path(spec).expanduser()
        suffix = path.suffix.lower()
        if path.is_dir():
            items.extend(_walk(path, extensions))
        elif path.is_file() and suffix == TAR_EXTENSION and suffix not in extensions:
            if not tar_members:
                raise InputError(f"{spec}: reading media from a tar is supported for images only; extract it")
            items.extend(_tar_members(path, extensions))
        elif path.is_file() and suffix in MANIFEST_EXTENSIONS:
            items.extend(_read_csv(path) if suffix == ".csv" else _read_jsonl(path))
        elif path.is_file() and suffix in LIST_EXTENSIONS and suffix not in extensions:
            items.extend(_read_list(path))
        elif path.is_file():
            items.append(Item(path.name, str(path)))
        elif glob.has_magic(spec):
            matched = _expand_glob(spec, extensions)
            if not matched:
                raise InputError(f"{spec}: the pattern matches nothing")
            items.extend(matched)
        else:
            raise InputError(f"{spec}: no such file or directory")
    _check_unique(items)
    if not items:
        where = ", ".join(str(i) for i in inputs)
        raise InputError(f"no {_media_word(extensions)} found in {where}; looked for {_shown(extensions)}")
    return dedupe(items)


def _media_word(extensions: frozenset[str]) -> str:
    if extensions <= IMAGE_EXTENSIONS:
        return "images"
    return "videos" if extensions <= VIDEO_EXTENSIONS else "files"


def _shown(extensions: frozenset[str]) -> str:
    ordered = sorted(extensions)
    return " ".join(ordered[:6]) + (f" ... ({len(ordered)} extensions)" if len(ordered) > 6 else "")


def check_regular_file(path: str) -> None:
    """Only regular files are read: a FIFO named `pipe.jpg` would block its reader for ever, a device
    would stream for ever. Raises InputError, which the job records as the item's error."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a directory" if stat.S_ISDIR(mode) else "a special file"
        raise InputError(f"{path} is {kind}, not a regular file; only regular files are read")


def _check_unique(items: list[Item]) -> None:
    seen: dict[str, str] = {}
    clashes = []
    for item in items:
        if item.id in seen and seen[item.id] != item.path:
            clashes.append(f"{item.id!r} ({seen[item.id]} and {item.path})")
        seen.setdefault(item.id, item.path)
    if clashes:
        shown = "; ".join(clashes[:5]) + (f"; ... {len(clashes) - 5} more" if len(clashes) > 5 else "")
        raise InputError(f"{len(clashes)} duplicate ids across the inputs: {shown}. Use a manifest with ids.")


def dedupe(items: list[Item]) -> list[Item]:
    """Drops repeats of the same (id, path), keeping the first."""
    seen = set()
    out = []
    for item in items:
        if item.id not in seen:
            seen.add(item.id)
            out.append(item)
    return out
