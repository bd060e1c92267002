"""MSR-VTT: `train_val_videodatainfo.json` (and `test_videodatainfo.json` for the test videos) hold
{"info", "videos": [{"id", "video_id": "video0", "category", "url", "start time", "end time", "split":
"train"|"validate"|"test"}], "sentences": [{"sen_id", "video_id", "caption"}]}, 20 captions per video;
videos are `TrainValVideo/video0.mp4` ... `TestVideo/video9999.mp4`. Id: `video0` ... `video9999`, the
name every MSR-VTT model (CLIP4Clip, Frozen, the 1k-A split lists) uses; split: the JSON's `split`."""

from __future__ import annotations

from .base import Collector, Tree, expect, files_by_stem, mark_unlisted
from .videos import no_videos


def scan_msrvtt(tree: Tree, collector: Collector) -> None:
    path = tree.require("msrvtt", ["train_val_videodatainfo.json"], "the MSR-VTT train/val annotations")
    no_videos("msrvtt", tree, "TrainValVideo/video0.mp4 ... TestVideo/video9999.mp4")
    sources = [path]
    test_path = tree.find("test_videodatainfo.json")
    if test_path is None:
        collector.notes.append(
            "no test_videodatainfo.json: the test videos (video7010-video9999) are not listed"
        )
    else:
        sources.append(test_path)
    videos = files_by_stem(tree.videos)
    used = set()
    for source in sources:
        doc = collector.read(source)
        expect(
            isinstance(doc, dict)
            and isinstance(doc.get("videos"), list)
            and isinstance(doc.get("sentences"), list),
            source,
            'an object with "videos" and "sentences" lists',
        )
        captions: dict[str, list[str]] = {}
        for sentence in doc["sentences"]:
            if isinstance(sentence, dict) and isinstance(sentence.get("caption"), str):
                captions.setdefault(str(sentence.get("video_id")), []).append(sentence["caption"].strip())
        for entry in doc["videos"]:
            expect(isinstance(entry, dict) and "video_id" in entry, source, 'videos with "video_id"')
            video_id = str(entry["video_id"])
            video = videos.get(video_id)
            if video is None:
                collector.missing.append(video_id)
                continue
            used.add(video)
            collector.add(
                video_id,
                video,
                str(entry.get("split", "all")),
                captions=captions.get(video_id, []),
                category=entry.get("category"),
                url=entry.get("url"),
                start=entry.get("start time"),
                end=entry.get("end time"),
            )
    mark_unlisted(collector, tree, tree.videos, used)
