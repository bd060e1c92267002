"""Item ids: what the store accepts, and the escaped form an unusable id is shown and recorded in.

An id is any non-empty string of valid UTF-8 (no lone surrogates) without NUL, at most MAX_ID_BYTES
bytes long once encoded. Slashes, dots, spaces and any other unicode are fine: ids never become paths."""

from __future__ import annotations

from .errors import InvalidIdError

MAX_ID_BYTES = 4096


def id_problem(item_id: object) -> str | None:
    """Why `item_id` cannot be stored, or None."""
    if not isinstance(item_id, str):
        return f"is a {type(item_id).__name__}, not a string"
    if not item_id:
        return "is empty"
    if "\0" in item_id:
        return "contains a NUL character"
    try:
        size = len(item_id.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid UTF-8 (it holds an undecodable byte or a lone surrogate)"
    if size > MAX_ID_BYTES:
        return f"is {size:,} bytes long; ids are at most {MAX_ID_BYTES:,} bytes of UTF-8"
    return None


def check_id(item_id: object) -> None:
    problem = id_problem(item_id)
    if problem:
        shown = escape_id(item_id) if isinstance(item_id, str) else repr(item_id)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        raise InvalidIdError(f"invalid item id {shown!r}: it {problem}")


def escape_id(item_id: str) -> str:
    """A storable, reversible spelling of any string: undecodable bytes (surrogate-escaped file names)
    become `\\xHH`, lone surrogates `\\uDXXX`, NUL `\\x00`. A valid id is returned unchanged."""
    if id_problem(item_id) is None or not item_id:
        return item_id
    raw = item_id.encode("utf-8", "surrogateescape") if _only_escapes(item_id) else None
    text = (
        raw.decode("utf-8", "backslashreplace")
        if raw is not None
        else item_id.encode("utf-8", "backslashreplace").decode("utf-8")
    )
    return text.replace("\0", "\\x00")


def _only_escapes(text: str) -> bool:
    # surrogateescape encodes only U+DC80..U+DCFF (the bytes os.fsdecode could not decode)
    return all(not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF for c in text)
