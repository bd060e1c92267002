"""Real English text for the vocabulary tests: the docstrings of this Python's standard library, read
with `ast` (nothing is imported). Present wherever the tests run; the exact text follows the Python
version, which the tests do not depend on."""

from __future__ import annotations

import ast
import functools
import os
from pathlib import Path


@functools.cache
def stdlib_docstring_lines() -> tuple[str, ...]:
    """Non-empty docstring lines of the top-level stdlib modules, in file name order."""
    lines: list[str] = []
    for path in sorted(Path(os.__file__).parent.glob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc:
                    lines.extend(line.strip() for line in doc.splitlines() if line.strip())
    return tuple(lines)
