"""Known corpora: read a dataset folder as its authors laid it out and list every image or video with
the id the models that use the corpus look it up by, its split, and its captions.

`DATASETS` is the registry (name -> Corpus); `build_manifest` writes the JSONL manifest that every
command accepts as input."""

from __future__ import annotations

from .base import CorpusError
from .manifest import build_manifest
from .registry import DATASETS, Corpus

__all__ = ["DATASETS", "Corpus", "CorpusError", "build_manifest"]
