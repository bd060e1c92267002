"""What the `vlprep` command prints when a command fails: one line on stderr in vlprep's words and an
exit code (2: the user asked for something that cannot work, 1: the data or the job failed). The
traceback only with `vlprep -v`.

The project's error classes are named here by module and class rather than imported: an exception can
only be an instance of a class whose module is already loaded, so mapping costs no import (importing
torch or ray to classify an error would take seconds)."""

from __future__ import annotations

import contextlib
import os
import sys
import traceback

import click

USAGE = 2
DATA = 1
INTERRUPTED = 130

# First match wins, so subclasses come before their bases.
KNOWN_ERRORS: tuple[tuple[str, str, int], ...] = (
    ("vlprep.store.errors", "NotAStoreError", USAGE),
    ("vlprep.store.errors", "StoreMismatchError", USAGE),
    ("vlprep.store.errors", "StoreError", DATA),
    ("vlprep.pipelines.inputs", "InputError", USAGE),
    ("vlprep.pipelines.config", "ConfigError", USAGE),
    ("vlprep.weights_files", "WeightsFileError", USAGE),
    ("vlprep.extractors.regions.checkpoints", "CheckpointError", USAGE),
    ("vlprep.extractors.video.checkpoints", "CheckpointError", USAGE),
    ("vlprep.render", "RenderError", USAGE),
    ("vlprep.tokenizers.visual.codebook", "CodebookError", USAGE),
    ("vlprep.interop.lxmert_tsv", "TsvFormatError", DATA),
    ("vlprep.pipelines.runner", "PipelineError", DATA),
    ("vlprep.extractors.decode.errors", "DecoderUnavailableError", USAGE),
    ("vlprep.extractors.decode.errors", "DecodeError", DATA),
    ("vlprep.extractors.video.extractor", "NonFiniteFeaturesError", DATA),
)

# A path the user named that is not there or not readable is a usage problem.
_USAGE_OS_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def classify(exc: BaseException) -> tuple[int, str] | None:
    """(exit code, message) for an error vlprep knows how to explain, else None (a bug)."""
    for module_name, class_name, code in KNOWN_ERRORS:
        cls = getattr(sys.modules.get(module_name), class_name, None)
        if isinstance(cls, type) and isinstance(exc, cls):
            # vlprep's own messages are written to be shown whole (a store mismatch lists each parameter);
            # store errors carry their own exit code (a damaged store is 2: run `vlprep repair`)
            return getattr(exc, "exit_code", code), str(exc).strip() or type(exc).__name__
    if isinstance(exc, OSError):
        where = exc.filename if exc.filename is not None else ""
        reason = exc.strerror or _first_line(str(exc))
        code = USAGE if isinstance(exc, _USAGE_OS_ERRORS) else DATA
        return code, f"{where}: {reason}" if where else reason
    return None


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def report(exc: BaseException, verbose: int) -> int:
    """Prints `exc` the vlprep way and returns the exit code."""
    if isinstance(exc, BrokenPipeError):
        # `vlprep inspect ... | head`: the reader left; say nothing, and keep Python from complaining
        # when it flushes stdout at exit (the recipe of Python's signal docs).
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return DATA
    if isinstance(exc, KeyboardInterrupt):
        click.echo("error: interrupted; committed items are kept, run the same command to resume", err=True)
        return INTERRUPTED
    known = classify(exc)
    if verbose:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    if known is not None:
        code, message = known
        click.echo(f"error: {message}", err=True)
        return code
    hint = "" if verbose else " (run `vlprep -v ...` for the traceback)"
    click.echo(f"error: unexpected {type(exc).__name__}: {_first_line(str(exc))}{hint}", err=True)
    return DATA
