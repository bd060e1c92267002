"""Named steps of a store commit, for deterministic fault injection in tests.

Every file write, fsync, rename, SQL statement and `store.json` save of a shard commit and of
`add_field` calls `step(name)` before it happens. Production code never sets `hook`; a test sets it to a
function that stops the process (`os._exit` in a forked child) or raises `OSError(ENOSPC)` at the k-th
step, then checks that resuming gives the store an uninterrupted run gives."""

from __future__ import annotations

from collections.abc import Callable

hook: Callable[[str], None] | None = None


def step(name: str) -> None:
    if hook is not None:
        hook(name)
