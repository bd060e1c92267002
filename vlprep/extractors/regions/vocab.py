"""Label names: `objects.txt` (1600 lines) and `attributes.txt` (400 lines), one name per line in class
order, as the bottom-up-attention repository ships `objects_vocab.txt` / `attributes_vocab.txt`.
A leading `__background__` / `__no_attribute__` line is accepted and dropped."""

from __future__ import annotations

from pathlib import Path

# The Visual Genome label set of the bottom-up-attention model (predictor.py sizes its heads by these).
NUM_CLASSES = 1600
NUM_ATTRIBUTES = 400

_PLACEHOLDERS = ("__background__", "__no_attribute__")


def read_names(path: str | Path, expected: int, what: str) -> list[str]:
    lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
    names = [line for line in lines if line]
    if names and names[0] in _PLACEHOLDERS:
        names = names[1:]
    if len(names) != expected:
        raise ValueError(
            f"{path}: {what} vocabulary needs {expected} names (one per line), found {len(names)}"
        )
    return names


def parse_vocab(spec) -> tuple[list[str] | None, list[str] | None]:
    """`"objects.txt,attributes.txt"`, a (objects, attributes) pair, or an objects path alone."""
    if spec is None:
        return None, None
    if isinstance(spec, (str, Path)):
        parts = [p for p in str(spec).split(",") if p]
    else:
        parts = [str(p) for p in spec if p]
    if not 1 <= len(parts) <= 2:
        raise ValueError(f"vocab must be OBJECTS[,ATTRIBUTES], got {spec!r}")
    objects = read_names(parts[0], NUM_CLASSES, "object")
    attributes = read_names(parts[1], NUM_ATTRIBUTES, "attribute") if len(parts) == 2 else None
    return objects, attributes
