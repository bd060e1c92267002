"""Where log lines go: stderr, always (stdout is for results and `--json`), at a level set by -v/-q.

Ray's INFO lines ("Started a local Ray instance", ...) are noise to a user of vlprep; they show with -v.
Ray configures its logger when it initialises, so the level travels to `ray.init` through an environment
variable that `vlprep.pipelines.runner.ray_log_options` reads (and Ray workers inherit)."""

from __future__ import annotations

import logging
import os
import sys


class _Stderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time of the record (a test runner may swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def configure_logging(verbose: int = 0, quiet: bool = False) -> None:
    level = logging.ERROR if quiet else logging.INFO if verbose else logging.WARNING
    handler = _Stderr()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    vlprep_logger = logging.getLogger("vlprep")
    vlprep_logger.handlers[:] = [handler]
    vlprep_logger.setLevel(level)
    vlprep_logger.propagate = False
    from vlprep.pipelines.runner import RAY_LOG_LEVEL_VARIABLE

    os.environ[RAY_LOG_LEVEL_VARIABLE] = logging.getLevelName(level)
