"""YouCook2 (youcookii_annotations_trainval.tar.gz): {"database": {VIDEO_ID: {"subset": "training"|
"validation", "recipe_type", "duration", "video_url", "annotations": [{"id", "segment": [start, end],
"sentence"}]}}}; the optional `youcookii_annotations_test_segments_only.json` has the testing videos'
segments without sentences. Videos: `raw_videos/SUBSET/RECIPE_TYPE/VIDEO_ID.mp4` as the official
download script leaves them. Id: the YouTube video id, as UniVL, VideoBERT and MIL-NCE evaluations key
YouCook2 features; split: the annotation's `subset`."""

from __future__ import annotations

from .base import Collector, Tree, expect, files_by_stem, mark_unlisted
from .videos import no_videos


def scan_youcook2(tree: Tree, collector: Collector) -> None:
    path = tree.require(
        "youcook2",
        ["youcookii_annotations_trainval.json"],
        "the annotations of youcookii_annotations_trainval.tar.gz",
    )
    no_videos("youcook2", tree, "raw_videos/training/101/VIDEO_ID.mp4 and so on")
    videos = files_by_stem(tree.videos)
    used = set()
    sources = [path]
    test_path = tree.find("youcookii_annotations_test_segments_only.json")
    if test_path is not None:
        sources.append(test_path)
    for source in sources:
        doc = collector.read(source)
        expect(
            isinstance(doc, dict) and isinstance(doc.get("database"), dict),
            source,
            'an object with "database"',
        )
        for video_id, entry in doc["database"].items():
            expect(isinstance(entry, dict), source, "database entries are objects")
            video = videos.get(video_id)
            if video is None:
                collector.missing.append(video_id)
                continue
            used.add(video)
            annotations = [a for a in entry.get("annotations", []) if isinstance(a, dict)]
            sentences = [a["sentence"].strip() for a in annotations if isinstance(a.get("sentence"), str)]
            collector.add(
                video_id,
                video,
                entry.get("subset", "testing"),
                captions=sentences or None,
                segments=[list(map(float, a["segment"])) for a in annotations if "segment" in a] or None,
                recipe_type=entry.get("recipe_type"),
                duration=entry.get("duration"),
            )
    mark_unlisted(collector, tree, tree.videos, used)
