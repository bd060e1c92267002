"""What the video corpora share: videos are found anywhere under the root by file name (`ID.mp4`,
`.webm`, `.mkv`, ... — the stem is the id the annotations use), so the folder layout each download script
leaves is accepted as it is. Timed annotations become two parallel lists: `captions[i]` is said during
`segments[i]` = [start, end] in seconds."""

from __future__ import annotations

from .base import CorpusError, Tree


def no_videos(dataset: str, tree: Tree, expected: str) -> None:
    if not tree.videos:
        raise CorpusError(f"{dataset}: no videos under {tree.root} (expected {expected})")
