"""`vlprep demo`: every stage of vlprep end to end on a generated corpus and random weights."""

from .job import DemoReport, run_demo

__all__ = ["DemoReport", "run_demo"]
