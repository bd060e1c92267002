"""Finding the image or video a record was extracted from."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class MediaMissingError(FileNotFoundError):
    """The file recorded for an item is no longer where extraction read it."""


def recorded_media(record: dict[str, Any], item_id: str, given: str | Path | None) -> Path | None:
    """`given` when set; else the `path` recorded at extraction, which must still exist; None for a
    record without a path (converted features, token stores)."""
    if given is not None:
        return Path(given)
    recorded = record.get("path")
    if not recorded:
        return None
    path = Path(str(recorded))
    if not path.is_file() and not _tar_member(path):
        raise MediaMissingError(
            f"{item_id}: the file recorded at extraction, {path}, is not there (moved or renamed?); "
            "give it with --image FILE"
        )
    return path


def _tar_member(path: Path) -> bool:
    from vlprep.corpora.webdataset import split_member_path

    return split_member_path(path) is not None
