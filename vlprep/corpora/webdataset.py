"""Webdataset tar shards read in place: members are listed and read straight from the tar, never
extracted to disk.

A member is named by the path `SHARD.tar/MEMBER` (the tar as if it were a folder), so manifests, error
records and the `path` stored with each record stay plain strings. Reading one member seeks to its data:
each process lists a tar's members once (headers only; the data is skipped) and keeps that index.

Only uncompressed tars (what img2dataset and webdataset's TarWriter write) can be read this way: a
compressed tar has no offsets to seek to."""

from __future__ import annotations

import functools
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath


class MemberError(OSError):
    """A tar member cannot be read: the tar is missing, compressed or damaged, or lacks the member."""


@dataclass(frozen=True)
class Member:
    name: str  # as stored in the tar, e.g. "000000031.jpg"
    offset: int  # where its data starts in the tar file
    size: int

    @property
    def key(self) -> str:
        """The webdataset sample key: the name up to the first dot of its last component."""
        path = PurePosixPath(self.name)
        stem = path.name.split(".", 1)[0]
        return str(path.parent / stem) if str(path.parent) != "." else stem

    @property
    def extension(self) -> str:
        """Everything after the key's dot, lower-cased ("jpg", "txt", "json", "seg.png")."""
        parts = PurePosixPath(self.name).name.split(".", 1)
        return parts[1].lower() if len(parts) == 2 else ""


def _open(tar_path: str) -> tarfile.TarFile:
    try:
        return tarfile.open(tar_path, mode="r:")
    except tarfile.ReadError as exc:
        raise MemberError(f"{tar_path}: not an uncompressed tar ({exc})") from None
    except OSError as exc:
        raise MemberError(f"{tar_path}: cannot read: {exc.strerror or exc}") from None


def iter_members(tar_path: str | os.PathLike) -> Iterator[tuple[Member, tarfile.TarFile]]:
    """Regular-file members in tar order, with the open tar for reading small ones (captions, JSON)."""
    with _open(os.fspath(tar_path)) as tf:
        try:
            for info in tf:
                if info.isfile():
                    # "./a.jpg" (tar cf x.tar .) is named "a.jpg", as the path that reads it back resolves
                    yield Member(PurePosixPath(info.name).as_posix(), info.offset_data, info.size), tf
        except tarfile.TarError as exc:
            raise MemberError(f"{tar_path}: damaged tar ({exc})") from None


def read_text(tf: tarfile.TarFile, member: Member) -> bytes:
    tf.fileobj.seek(member.offset)
    return tf.fileobj.read(member.size)


@functools.lru_cache(maxsize=16)
def _index(tar_path: str, mtime_ns: int, size: int) -> dict[str, tuple[int, int]]:
    # mtime and size are part of the key so that a rewritten tar is listed again
    return {m.name: (m.offset, m.size) for m, _ in iter_members(tar_path)}


def member_path(tar_path: str | os.PathLike, name: str) -> str:
    return f"{os.fspath(tar_path)}/{name}"


def split_member_path(path: str | os.PathLike) -> tuple[str, str] | None:
    """(tar, member) when `path` names a member of an existing tar file, else None."""
    path = os.fspath(path)
    if os.path.exists(path):
        return None
    parts = Path(path).parts
    for i in range(len(parts) - 1, 0, -1):
        head = os.path.join(*parts[:i])
        if head.lower().endswith(".tar") and os.path.isfile(head):
            return head, "/".join(parts[i:])
        if os.path.exists(head):
            return None
    return None


def read_member(tar_path: str, name: str) -> bytes:
    try:
        stat = os.stat(tar_path)
    except OSError as exc:
        raise MemberError(f"{tar_path}: cannot read: {exc.strerror or exc}") from None
    index = _index(tar_path, stat.st_mtime_ns, stat.st_size)
    if name not in index:
        raise MemberError(f"{tar_path}: no member {name!r}")
    offset, size = index[name]
    with open(tar_path, "rb") as fh:
        fh.seek(offset)
        data = fh.read(size)
    if len(data) != size:
        raise MemberError(f"{tar_path}: member {name!r} is cut short ({len(data)} of {size} bytes)")
    return data


def media_source(path: str | os.PathLike) -> str | bytes:
    """What a decoder should read for `path`: the path itself, or a tar member's bytes."""
    member = split_member_path(path)
    if member is None:
        return os.fspath(path)
    return read_member(*member)
