"""Video decoding: frame-exact sampling with both backends on generated videos whose frames encode
their own index; metadata; rotation; windows; broken files; timeouts; the auto fallback."""

from __future__ import annotations

import time

import numpy as np
import pytest

from vlprep.extractors.decode import DecodeError, VideoReader, open_video
from vlprep.extractors.decode.sampling import sample_times
from vlprep.extractors.decode.synthetic_video import read_frame_index, write_audio_only, write_index_video
from vlprep.extractors.decode.video import call_with_timeout, probe_video

BACKENDS = ["decord", "pyav"]

# variable frame rate: bursts and gaps (ms precision)
VFR_TIMES = [0.0, 0.03, 0.1, 0.12, 0.3, 0.31, 0.32, 0.7, 0.75, 1.0, 1.02, 1.5, 1.55, 1.6, 2.2, 2.21]


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    files = {}
    files["cfr"] = d / "cfr.mp4"
    files["cfr_times"] = write_index_video(files["cfr"], num_frames=75, fps=25, width=96, height=64)
    files["vfr"] = d / "vfr.mp4"
    files["vfr_times"] = write_index_video(files["vfr"], times=VFR_TIMES, width=64, height=48)
    files["odd"] = d / "odd.mp4"
    files["odd_times"] = write_index_video(
        files["odd"], num_frames=40, fps=30, width=97, height=75, audio=True
    )
    files["ntsc"] = d / "ntsc.mp4"
    files["ntsc_times"] = write_index_video(
        files["ntsc"], num_frames=90, fps=30000 / 1001, width=64, height=48
    )
    for rot in (90, 180, 270):
        files[f"rot{rot}"] = d / f"rot{rot}.mp4"
        write_index_video(files[f"rot{rot}"], num_frames=20, fps=25, width=96, height=64, rotation=rot)
    # a long one: 2 minutes at 10 fps, GOP 50, so sparse sampling seeks
    files["long"] = d / "long.mp4"
    files["long_times"] = write_index_video(
        files["long"], num_frames=1200, fps=10, width=64, height=48, gop=50
    )
    return files


def expected_indices(written: list[float], times: np.ndarray) -> list[int]:
    """Brute force: the last frame written at or before t."""
    return [max(i for i, w in enumerate(written) if w <= t + 1e-9) for t in times]


def decoded_indices(frames: np.ndarray, rotation: int = 0) -> list[int]:
    return [read_frame_index(np.rot90(f, -(rotation // 90))) for f in frames]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["cfr", "vfr", "odd", "ntsc"])
@pytest.mark.parametrize("rate", [1.0, 16.0, 20.0, 24.0])
def test_frames_at_times_are_exact(media, backend, name, rate):
    with open_video(media[name], backend=backend) as reader:
        assert reader.backend == backend
        times = sample_times(reader.meta.duration, rate)
        frames = reader.frames_at(times)
        assert frames.dtype == np.uint8 and frames.shape[1:] == (reader.meta.height, reader.meta.width, 3)
        assert decoded_indices(frames) == expected_indices(media[f"{name}_times"], times)


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_frame_in_order_and_shuffled(media, backend):
    with open_video(media["vfr"], backend=backend) as reader:
        n = len(reader)
        assert decoded_indices(reader.get_frames(range(n))) == list(range(n))
        order = np.random.default_rng(0).permutation(n).tolist() + [3, 3, 0]
        assert decoded_indices(reader.get_frames(order)) == order


def test_metadata(media):
    meta, index = probe_video(media["cfr"])
    assert (meta.num_frames, meta.width, meta.height, meta.rotation) == (75, 96, 64, 0)
    assert meta.duration == pytest.approx(3.0)
    assert meta.fps == pytest.approx(25.0) and meta.stream_fps == pytest.approx(25.0)
    assert not meta.variable_frame_rate
    np.testing.assert_allclose(index.pts, media["cfr_times"], atol=1e-6)

    meta, index = probe_video(media["vfr"])
    assert meta.variable_frame_rate and meta.num_frames == len(VFR_TIMES)
    np.testing.assert_allclose(index.pts, VFR_TIMES, atol=1e-6)
    assert meta.duration > VFR_TIMES[-1]

    meta, _ = probe_video(media["odd"])  # with an audio stream next to the video
    assert (meta.width, meta.height, meta.num_frames) == (97, 75, 40)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_applied(media, backend, rotation):
    with open_video(media[f"rot{rotation}"], backend=backend) as reader:
        assert reader.meta.rotation == rotation
        upright = (64, 96) if rotation == 180 else (96, 64)
        assert (reader.meta.height, reader.meta.width) == upright
        frames = reader.get_frames([1, 2, 5, 6, 11])
        assert frames.shape[1:3] == upright
        # frames 1, 2, 5, 6, 11 are asymmetric codes: read back only when un-rotated the right way
        assert decoded_indices(frames, rotation) == [1, 2, 5, 6, 11]


@pytest.mark.parametrize("backend", BACKENDS)
def test_long_video_read_in_windows(media, backend):
    with open_video(media["long"], backend=backend) as reader:
        assert reader.meta.duration == pytest.approx(120.0)
        times = sample_times(reader.meta.duration, 1.0)  # sparse: the PyAV reader seeks between keyframes
        expected = expected_indices(media["long_times"], times)
        got = []
        for window in reader.iter_frames(reader.indices_at(times), window=16):
            assert len(window) <= 16
            got += decoded_indices(window)
        assert got == expected
        # going back in time after reading forward
        assert decoded_indices(reader.get_frames([5, 1100, 7])) == [5, 1100, 7]


def test_both_backends_give_the_same_pixels(media):
    with open_video(media["odd"], backend="decord") as a, open_video(media["odd"], backend="pyav") as b:
        fa, fb = a.get_frames(range(0, 40, 3)), b.get_frames(range(0, 40, 3))
    diff = np.abs(fa.astype(int) - fb.astype(int))
    assert diff.mean() < 0.5 and diff.max() <= 8


def test_auto_uses_decord_and_falls_back_to_pyav(media, monkeypatch):
    with open_video(media["cfr"]) as reader:
        assert reader.backend == "auto" and reader.active.backend == "decord"
        assert decoded_indices(reader.get_frames([0, 10])) == [0, 10]

    from vlprep.extractors.decode import video_decord

    def broken(self, indices):
        raise DecodeError("simulated decord failure")

    monkeypatch.setattr(video_decord.DecordReader, "_read", broken)
    with open_video(media["cfr"]) as reader:
        assert decoded_indices(reader.get_frames([0, 10, 74])) == [0, 10, 74]
        assert reader.active.backend == "pyav" and "simulated" in reader.fallback_reason
    with pytest.raises(DecodeError, match="simulated"), open_video(media["cfr"], backend="decord") as reader:
        reader.get_frames([0])


def test_a_stuck_decoder_times_out(media, monkeypatch):
    from vlprep.extractors.decode import video_pyav

    monkeypatch.setattr(video_pyav.PyAVReader, "_read", lambda self, idx: time.sleep(30))
    reader = open_video(media["cfr"], backend="pyav", timeout=0.5)
    start = time.monotonic()
    with pytest.raises(DecodeError, match="timed out after 0.5 s"):
        reader.get_frames([0])
    assert time.monotonic() - start < 5
    with pytest.raises(DecodeError, match="timed out"):
        call_with_timeout(lambda: time.sleep(5), 0.2, "sleeping")
    assert call_with_timeout(lambda: 7, 1.0, "quick") == 7


@pytest.mark.parametrize("backend", ["auto", "decord", "pyav"])
def test_broken_files_raise_decode_error_with_reason(media, tmp_path, backend):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    truncated = tmp_path / "truncated.mp4"
    data = media["cfr"].read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    cut = tmp_path / "cut_faststart.mp4"  # the index survives, the frame data does not
    write_index_video(cut, num_frames=100, fps=25, width=64, height=48, faststart=True)
    cut.write_bytes(cut.read_bytes()[: int(cut.stat().st_size * 0.6)])
    audio = tmp_path / "audio.m4a"
    write_audio_only(audio)
    cases = {
        empty: "empty file",
        text: "not a readable media file",
        truncated: "not a readable media file",
        cut: "truncated",
        audio: "no video stream",
        tmp_path / "missing.mp4": "no such file",
        tmp_path: "directory",
    }
    for path, reason in cases.items():
        with pytest.raises(DecodeError, match=reason):
            open_video(path, backend=backend)


def test_reader_interface_and_errors(media):
    with open_video(media["cfr"], backend="pyav") as reader:
        assert isinstance(reader, VideoReader)
        assert "frames=75" in repr(reader)
        assert reader.get_frames([]).shape == (0, 64, 96, 3)
        with pytest.raises(IndexError):
            reader.get_frames([75])
    with pytest.raises(ValueError, match="unknown decoder"):
        open_video(media["cfr"], backend="ffmpeg")
