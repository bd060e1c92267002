"""`vlprep video` on a local Ray: two tiny generated videos and broken files, then rendering."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner
from PIL import Image

from vlprep.cli import cli
from vlprep.store import FeatureStore


def test_video_job_records_broken_files_and_renders(ray_local, tmp_path):
    from vlprep.extractors.decode.synthetic_video import write_audio_only, write_index_video
    from vlprep.render.video import render_video_item

    corpus = tmp_path / "videos"
    (corpus / "b").mkdir(parents=True)
    write_index_video(corpus / "a.mp4", num_frames=30, fps=20.0, width=64, height=48)
    write_index_video(corpus / "b" / "c.mkv", num_frames=36, fps=24.0, width=48, height=40)
    (corpus / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 definitely not a video")
    write_audio_only(corpus / "audio.mp4", seconds=0.5)
    out = tmp_path / "store"
    args = ["video", str(corpus), "--out", str(out), "--model", "s3d", "--weights", "random"]
    result = CliRunner().invoke(cli, [*args, "--cpus-per-worker", "1", "--decoder", "pyav", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["ok"], summary["failed"]) == (2, 2) and summary["failed_by_stage"] == {"decode": 2}
    assert abs(summary["video_seconds"] - 3.0) < 0.1

    store = FeatureStore(out)
    assert store.kind == "video" and set(store.ids()) == {"a.mp4", "b/c.mkv"}
    assert {e["id"] for e in store.errors()} == {"broken.mp4", "audio.mp4"}
    rec = store["a.mp4"]
    assert rec["features"].shape == (1, 1024) and np.allclose(rec["timestamps"], [[0.0, 1.5]])
    assert rec["path"].endswith("a.mp4") and float(rec["duration"]) == 1.5

    png = np.asarray(Image.open(render_video_item(store, "a.mp4", tmp_path / "a.png")).convert("RGB"))
    assert png.shape == (96 + 34, 128, 3) and not (png[:96] == 96).all()
