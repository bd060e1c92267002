"""The one error type of the vocabulary jobs: a message in vlprep's words, one line, and whether the fix
is a different option (usage, exit 2) or different data (exit 1)."""

from __future__ import annotations


class VocabError(ValueError):
    def __init__(self, message: str, *, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage
