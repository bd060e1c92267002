"""A time limit for one blocking call in a worker (an image decode that never returns: a file on a hung
network mount, a pipe). SIGALRM interrupts even a blocking read; it only works in a process's main
thread, which is where Ray runs a task, and elsewhere the call simply runs without a limit."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class DeadlineExceeded(TimeoutError):
    """The call took longer than its limit."""


@contextlib.contextmanager
def deadline(seconds: float | None, what: str = "the call") -> Iterator[None]:
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):  # noqa: ARG001 - the signal handler's signature
        raise DeadlineExceeded(f"{what} took longer than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
