"""Printing helpers shared by the commands: JSON output, the one-line summary, and keeping stdout for
them alone."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any

import click


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def bars_off(as_json: bool = False) -> bool | None:
    """tqdm's `disable`: off for --json and -q; None lets tqdm hide bars when stderr is not a terminal."""
    quiet = click.get_current_context(silent=True)
    if as_json or (quiet is not None and quiet.meta.get("vlprep.quiet")):
        return True
    return None


def fail(message: str, code: int = 1) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """While a job runs, anything printed to stdout (Ray's "(raylet) ..." lines, a library's print) goes
    to stderr, so that stdout holds only the command's result: `--json` output stays parseable."""
    with contextlib.redirect_stdout(sys.stderr):
        yield
