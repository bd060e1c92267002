"""What every corpus reader shares: one walk of the dataset folder, finding annotation files in it, and
collecting manifest rows while counting what does not line up (missing files, duplicate ids, files the
annotations do not list)."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlprep.pipelines.inputs import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

EXAMPLES = 5  # how many of each problem the summary names


class CorpusError(ValueError):
    """The folder is not a layout of the dataset asked for (exit 2), or an annotation file cannot be read
    (`data=True`, exit 1)."""

    def __init__(self, message: str, data: bool = False):
        super().__init__(message)
        self.data = data


class Tree:
    """The files under a dataset root (and optional extra annotation folders), walked once.

    Media files are kept as paths; every other file is indexed by name so that annotation files are found
    wherever the user unpacked them (`annotations/`, the root, a `caption_datasets/` folder...)."""

    def __init__(
        self,
        root: str | os.PathLike,
        annotation_dirs: Iterable[str | os.PathLike] = (),
        on_file: Callable[[int], None] | None = None,
    ):
        self.root = Path(os.path.abspath(root))
        if not self.root.is_dir():
            raise CorpusError(f"{root}: no such directory")
        self.images: list[Path] = []
        self.videos: list[Path] = []
        self.tars: list[Path] = []
        self._named: dict[str, list[Path]] = {}
        for top in [self.root, *(Path(os.path.abspath(d)) for d in annotation_dirs)]:
            if not top.is_dir():
                raise CorpusError(f"{top}: no such directory")
            self._walk(top, collect_media=top == self.root, on_file=on_file)

    def _walk(self, top: Path, collect_media: bool, on_file: Callable[[int], None] | None) -> None:
        for dirpath, dirnames, filenames in os.walk(top, followlinks=True):
            dirnames.sort()
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            base = Path(dirpath)
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                path = base / name
                suffix = path.suffix.lower()
                if collect_media and suffix in IMAGE_EXTENSIONS:
                    self.images.append(path)
                elif collect_media and suffix in VIDEO_EXTENSIONS:
                    self.videos.append(path)
                elif collect_media and suffix == ".tar":
                    self.tars.append(path)
                else:
                    self._named.setdefault(name, []).append(path)
            if on_file is not None:
                on_file(len(filenames))

    def find(self, *names: str) -> Path | None:
        """The first of `names` present, the one nearest the root when a name occurs more than once."""
        for name in names:
            found = self._named.get(name)
            if found:
                return min(found, key=lambda p: (len(p.parts), str(p)))
        return None

    def find_all(self, suffix: str) -> list[Path]:
        return sorted(p for paths in self._named.values() for p in paths if p.name.endswith(suffix))

    def require(self, dataset: str, names: Iterable[str], what: str) -> Path:
        names = list(names)
        found = self.find(*names)
        if found is None:
            shown = " or ".join(names)
            raise CorpusError(f"{dataset}: expected {shown} under {self.root} (or --annotations DIR): {what}")
        return found

    def relative(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()


def load_json(path: Path) -> Any:
    try:
        with open(path, "rb") as fh:
            return json.load(fh)
    except (OSError, ValueError) as exc:
        raise CorpusError(f"{path}: cannot read it as JSON ({exc})", data=True) from None


def expect(condition: bool, path: Path, what: str) -> None:
    """Refuses an annotation file whose structure is not the documented one."""
    if not condition:
        raise CorpusError(f"{path}: not the expected format: {what}", data=True)


@dataclass
class Collector:
    """Manifest rows in the order found, plus counts of everything that did not line up."""

    rows: list[dict] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    annotations: list[str] = field(default_factory=list)
    extra_missing: int = 0  # counted from download logs, without names (img2dataset's failed downloads)
    _ids: set[str] = field(default_factory=set)

    def add(self, item_id: str, path: Path | str, split: str, **fields: Any) -> None:
        """One image or video; a second row with an id already seen is counted, not written."""
        item_id = str(item_id)
        if item_id in self._ids:
            self.duplicates.append(f"{item_id} ({path})")
            return
        self._ids.add(item_id)
        row = {"id": item_id, "path": str(path), "split": split}
        row.update({k: v for k, v in fields.items() if v is not None})
        self.rows.append(row)

    def read(self, path: Path) -> Any:
        self.annotations.append(str(path))
        return load_json(path)

    def summary(self) -> dict:
        splits = Counter(row["split"] for row in self.rows)
        return {
            "items": len(self.rows),
            "splits": dict(splits),
            "captions": sum(len(row.get("captions", ())) for row in self.rows),
            "missing": len(self.missing) + self.extra_missing,
            "duplicates": len(self.duplicates),
            "unlisted": len(self.unlisted),
            "examples": {
                "missing": self.missing[:EXAMPLES],
                "duplicates": self.duplicates[:EXAMPLES],
                "unlisted": self.unlisted[:EXAMPLES],
            },
            "annotations": list(self.annotations),
            "notes": list(self.notes),
        }


def files_by_stem(paths: Iterable[Path]) -> dict[str, Path]:
    """Media files by name without extension; the first (sorted) wins when two share a stem."""
    out: dict[str, Path] = {}
    for path in paths:
        out.setdefault(path.stem, path)
    return out


def mark_unlisted(collector: Collector, tree: Tree, paths: Iterable[Path], used: set[Path]) -> None:
    collector.unlisted.extend(tree.relative(p) for p in paths if p not in used)
