"""The output directory of a vocabulary job appears whole or not at all.

Files are written into a fresh sibling, `OUT.tmp-<pid>-<n>`, which is renamed to OUT at the end (or, where
OUT already exists, its files are moved in one by one: a user's directory is never replaced or deleted).
On any failure the staging directory, and any parent directories this job created for it, are removed:
only what the job can prove it made.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vlprep.tokenizers.subword.errors import VocabError


def check_out_dir(out: str | os.PathLike) -> Path:
    """Refuse an OUT that cannot become a directory, before any work is done."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise VocabError(f"--out {out} exists and is not a directory", usage=True)
    return out


@contextmanager
def staged_dir(out: str | os.PathLike) -> Iterator[Path]:
    out = check_out_dir(out)
    made: list[Path] = []  # parents created here, deepest last
    parent = out.parent.absolute()
    missing = []
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for p in reversed(missing):
        p.mkdir()
        made.append(p)
    for n in itertools.count():
        tmp = out.parent / f"{out.name}.tmp-{os.getpid()}-{n}"
        try:
            tmp.mkdir()
            break
        except FileExistsError:
            continue
    try:
        yield tmp
        if out.is_dir():
            for f in tmp.iterdir():
                os.replace(f, out / f.name)
            tmp.rmdir()
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for p in reversed(made):
            try:
                p.rmdir()
            except OSError:
                break
        raise
