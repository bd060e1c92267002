"""A cheap look at a checkpoint file before anything loads it: does it exist, is it empty, is it a zip
archive (torch.save) or a pickle (legacy torch.save, detectron2 .pkl)? Reading 4 bytes answers in
microseconds what torch.load answers after a model is built on a Ray worker, with an IndexError for an
empty file or a KeyError for a text file."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

ZIP_MAGIC = b"PK\x03\x04"
# Pickle protocol 2+ starts with PROTO (0x80); protocols 0/1 start with MARK, an empty dict or list.
_PICKLE_STARTS = (b"\x80", b"(", b"}", b"]")


class WeightsFileError(ValueError):
    """A --weights path that cannot be a checkpoint: missing, empty, a directory, or another kind of file."""


def sniff_container(path: str | os.PathLike) -> str:
    """The container format ("zip" or "pickle") of a file that may hold weights; raises WeightsFileError
    otherwise."""
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise WeightsFileError(f"{path}: checkpoint not found (no such file)") from None
    except OSError as exc:
        raise WeightsFileError(f"{path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise WeightsFileError(f"{path} is a directory; give the checkpoint file")
    if not stat.S_ISREG(info.st_mode):
        raise WeightsFileError(f"{path} is not a regular file")
    if info.st_size == 0:
        raise WeightsFileError(f"{path} is empty (0 bytes); the download or copy did not finish")
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise WeightsFileError(f"{path}: {exc.strerror or exc}") from None
    if head.startswith(ZIP_MAGIC):
        return "zip"
    if head.startswith(_PICKLE_STARTS):
        return "pickle"
    what = "it is text" if _looks_like_text(head) else "it is neither a zip archive nor a pickle"
    raise WeightsFileError(
        f"cannot read {path} as a checkpoint: {what}; expected a torch.save file (.pth/.pt/.bin) or a "
        "detectron2 pickle (.pkl)"
    )


def _looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(32 <= b < 127 or b in b"\t\r\n" for b in head)


def check_weights(spec: str, random_ok: bool = True) -> None:
    """Checks every file named by a --weights value ("random", a path, or "a,b" for two-stream models)."""
    if random_ok and spec == "random":
        return
    for part in (p for p in str(spec).split(",") if p):
        try:
            sniff_container(part)
        except WeightsFileError as exc:
            raise WeightsFileError(f"--weights: {exc}") from None


_TORCH_ADVICE = re.compile(r"weights_only|trust|safe_globals|documentation", re.IGNORECASE)


def torch_load_refusal(exc: BaseException) -> str:
    """torch.load(weights_only=True)'s refusal in vlprep's words. torch's own message advises retrying
    with weights_only=False: that would execute code from the file, which vlprep never does."""
    text = str(exc)
    named = re.search(r"GLOBAL ([\w.]+)", text)
    if named:
        detail = f"it references {named.group(1)}"
    else:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        useful = [line for line in lines if not _TORCH_ADVICE.search(line)]
        detail = useful[0] if useful else type(exc).__name__
    return (
        f"the file holds Python objects beyond tensors ({detail}); vlprep loads only plain tensor "
        "checkpoints and never runs code from one"
    )
