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
    from vlprep.render.video import CAPTION_HEIGHT, FRAME_HEIGHT, render_video_item

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
    assert png.shape == (FRAME_HEIGHT + CAPTION_HEIGHT, round(64 * FRAME_HEIGHT / 48), 3)
    assert not (png[:FRAME_HEIGHT] == 96).all()


def test_decoding_beside_the_model_gives_the_records_of_extract_file(tmp_path, monkeypatch):
    """The video job's prefetch thread decodes the next clips while the model embeds: same records as
    the extractor's own sequential extract_file, a broken file between good ones fails alone, and a
    video longer than the prefetch queue streams through in windows."""
    import torch

    from vlprep.extractors.decode.synthetic_video import write_index_video
    from vlprep.extractors.video import VideoExtractor
    from vlprep.pipelines import video as job
    from vlprep.pipelines.inputs import Item
    from vlprep.pipelines.runner import Failure

    write_index_video(tmp_path / "a.mp4", num_frames=30, fps=20.0, width=64, height=48)
    write_index_video(tmp_path / "long.mp4", num_frames=90, fps=20.0, width=48, height=40)
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        extractor = VideoExtractor.from_weights(
            model="s3d", weights="random", device="cpu", batch_size=1, decoder="pyav"
        )
        paths = [tmp_path / "a.mp4", tmp_path / "broken.mp4", tmp_path / "long.mp4"]
        items = [Item(p.name, str(p)) for p in paths]
        # 4.5 s of video at 20 fps in 1.5 s clips, one clip per batch: 3 batches through a queue of 1
        monkeypatch.setattr(job, "PREFETCH_BATCHES", 1)
        results = job.run_batch(extractor, [(item, item) for item in items])
        expected = [extractor.extract_file(paths[0]), None, extractor.extract_file(paths[2])]
    finally:
        torch.set_num_threads(threads)
    assert isinstance(results[1], Failure) and results[1].stage == "decode"
    for got, want in ((results[0], expected[0]), (results[2], expected[2])):
        assert set(got) == set(want)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])
    assert results[2]["features"].shape == (3, 1024)
