"""VATEX: `vatex_training_v1.0.json`, `vatex_validation_v1.0.json`, `vatex_public_test_english_v1.1.json`,
`vatex_private_test_without_annotations.json`, each a list of {"videoID": "Ptf_2VRj-V0_000122_000132",
"enCap": [10 English captions], "chCap": [10 Chinese captions]} (test files lack some). Videos are the
10-second clips named by videoID. Id: the videoID, i.e. the YouTube id with the clip's `_start_end`
seconds (6 digits each) appended, as the VATEX challenge and the published I3D features name clips;
`youtube_id`, `start` and `end` are split out of it. Split: from the file (train, val, public_test,
private_test)."""

from __future__ import annotations

from .base import Collector, CorpusError, Tree, expect, files_by_stem, mark_unlisted
from .videos import no_videos

VATEX_FILES = {
    "vatex_training_v1.0.json": "train",
    "vatex_validation_v1.0.json": "val",
    "vatex_public_test_english_v1.1.json": "public_test",
    "vatex_private_test_without_annotations.json": "private_test",
}


def scan_vatex(tree: Tree, collector: Collector) -> None:
    found = [(tree.find(name), split) for name, split in VATEX_FILES.items()]
    found = [(path, split) for path, split in found if path is not None]
    if not found:
        raise CorpusError(
            f"vatex: expected vatex_training_v1.0.json, vatex_validation_v1.0.json or the test JSON "
            f"files under {tree.root} (or --annotations DIR)"
        )
    no_videos("vatex", tree, "clips named by videoID, e.g. Ptf_2VRj-V0_000122_000132.mp4")
    videos = files_by_stem(tree.videos)
    used = set()
    for source, split in found:
        entries = collector.read(source)
        expect(isinstance(entries, list), source, 'a list of {"videoID", "enCap", "chCap"}')
        for entry in entries:
            expect(isinstance(entry, dict) and "videoID" in entry, source, 'entries with "videoID"')
            video_id = str(entry["videoID"])
            video = videos.get(video_id)
            if video is None:
                collector.missing.append(video_id)
                continue
            used.add(video)
            youtube_id, start, end = _vatex_parts(video_id)
            collector.add(
                video_id,
                video,
                split,
                captions=entry.get("enCap"),
                captions_zh=entry.get("chCap"),
                youtube_id=youtube_id,
                start=start,
                end=end,
            )
    mark_unlisted(collector, tree, tree.videos, used)


def _vatex_parts(video_id: str) -> tuple[str | None, int | None, int | None]:
    # YouTube ids may contain "_", so the two time fields are split off from the right.
    parts = video_id.rsplit("_", 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        return parts[0], int(parts[1]), int(parts[2])
    return None, None, None
