"""HowTo100M (HowTo100M.zip): `HowTo100M_v1.csv` lists every video, columns video_id, category_1,
category_2, rank, task_id; `caption.json` maps each video_id to {"start": [...], "end": [...],
"text": [...]}, the ASR captions with their times. Id: the YouTube video id (the file stem), what
MIL-NCE and the published HowTo100M features use. No official split: `all`."""

from __future__ import annotations

import csv

from .base import Collector, CorpusError, Tree, expect, files_by_stem, mark_unlisted
from .videos import no_videos


def scan_howto100m(tree: Tree, collector: Collector) -> None:
    csv_path = tree.require("howto100m", ["HowTo100M_v1.csv"], "the video list from HowTo100M.zip")
    no_videos("howto100m", tree, "VIDEO_ID.mp4 files, e.g. videos/-0Fg9ThJ_Ss.mp4")
    collector.annotations.append(str(csv_path))
    captions_path = tree.find("caption.json", "raw_caption.json")
    captions = collector.read(captions_path) if captions_path else {}
    if captions_path is None:
        collector.notes.append("no caption.json (HowTo100M.zip): videos listed without their ASR captions")
    expect(isinstance(captions, dict), captions_path or csv_path, "caption.json maps video ids to captions")
    videos = files_by_stem(tree.videos)
    used = set()
    try:
        with open(csv_path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            expect("video_id" in (reader.fieldnames or ()), csv_path, "a header with a video_id column")
            for row in reader:
                video_id = row["video_id"]
                path = videos.get(video_id)
                if path is None:
                    collector.missing.append(video_id)
                    continue
                used.add(path)
                cap = captions.get(video_id)
                texts = segments = None
                if isinstance(cap, dict) and isinstance(cap.get("text"), list):
                    texts = [str(t) for t in cap["text"]]
                    segments = [
                        [float(s), float(e)] for s, e in zip(cap.get("start", []), cap.get("end", []))
                    ]
                collector.add(
                    video_id,
                    path,
                    "all",
                    captions=texts,
                    segments=segments,
                    task_id=row.get("task_id"),
                    category_1=row.get("category_1"),
                    category_2=row.get("category_2"),
                )
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CorpusError(f"{csv_path}: cannot read: {exc}", data=True) from None
    mark_unlisted(collector, tree, tree.videos, used)
