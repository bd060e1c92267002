"""Video decoding: frame-exact sampling with every backend (decord, PyAV, torchcodec) on generated
videos whose frames encode their own index; metadata; rotation; windows; broken files; timeouts; the
auto fallback; identical pixels; the unavailable-torchcodec error."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from vlprep.extractors.decode import DecodeError, VideoReader, open_video
from vlprep.extractors.decode.sampling import sample_times
from vlprep.extractors.decode.synthetic_video import read_frame_index, write_audio_only, write_index_video
from vlprep.extractors.decode.video import call_with_timeout, probe_video
from vlprep.extractors.decode.video_torchcodec import torchcodec_problem

# torchcodec runs wherever vlprep's test environment is built (`make venv`; `.ci/run` installs its FFmpeg
# libraries): in CI its cases always run. Only on a user's machine without it or its FFmpeg libraries
# are they skipped, with the reason.
TORCHCODEC_MISSING = None if os.environ.get("CI") else torchcodec_problem()
TORCHCODEC = pytest.param(
    "torchcodec", marks=pytest.mark.skipif(TORCHCODEC_MISSING is not None, reason=str(TORCHCODEC_MISSING))
)
BACKENDS = ["decord", "pyav", TORCHCODEC]

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


def write_colour_video(path, width, height, pix_fmt, frames=6):
    """Random colours with gradients: every RGB value the colour conversion can produce, not only the
    black and white of the index videos."""
    import av

    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.options = {"crf": "18"}
        yy, xx = np.mgrid[:height, :width]
        for _ in range(frames):
            noise = rng.integers(0, 256, (height, width, 3))
            ramp = np.stack([xx * 255 // width, yy * 255 // height, (xx + yy) * 127 // (width + height)], -1)
            img = ((noise + ramp) // 2).astype(np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode())


@pytest.mark.parametrize("size", [(96, 64, "yuv420p"), (97, 75, "yuv444p")])
def test_backends_give_identical_pixels(tmp_path, size):
    """All three convert YUV to RGB with FFmpeg's swscale at its defaults, so `auto`'s choice does not
    change stored features: measured equal to the last grey level (docs/video.md)."""
    width, height, pix_fmt = size
    path = tmp_path / "colour.mp4"
    write_colour_video(path, width, height, pix_fmt)
    backends = ["decord", "pyav"] + (["torchcodec"] if TORCHCODEC_MISSING is None else [])
    frames = {}
    for backend in backends:
        with open_video(path, backend=backend) as reader:
            frames[backend] = reader.get_frames(range(6)).astype(int)
    assert frames["pyav"].std() > 40  # colourful, not flat
    for backend in backends[1:]:
        diff = np.abs(frames[backend] - frames["decord"])
        assert diff.max() == 0, f"{backend} vs decord: max {diff.max()}, mean {diff.mean():.3f}"


def test_auto_takes_pyav_and_falls_back_in_order(media, monkeypatch):
    from vlprep.extractors.decode import open as open_module
    from vlprep.extractors.decode import video_decord, video_pyav, video_torchcodec

    assert open_module.AUTO_ORDER == ("pyav", "torchcodec", "decord")
    with open_video(media["cfr"]) as reader:
        assert reader.backend == "auto" and reader.active.backend == "pyav"
        assert decoded_indices(reader.get_frames([0, 10])) == [0, 10]

    def broken(self, indices):
        raise DecodeError(f"simulated {self.backend} failure")

    # each failure hands the rest of the file to the next backend of AUTO_ORDER
    monkeypatch.setattr(video_pyav.PyAVReader, "_read", broken)
    second = "torchcodec" if TORCHCODEC_MISSING is None else "decord"
    with open_video(media["cfr"]) as reader:
        assert decoded_indices(reader.get_frames([0, 10, 74])) == [0, 10, 74]
        assert reader.active.backend == second and "simulated pyav" in reader.fallback_reason
    monkeypatch.setattr(video_torchcodec.TorchCodecReader, "_read", broken)
    with open_video(media["cfr"]) as reader:
        assert decoded_indices(reader.get_frames([0, 10, 74])) == [0, 10, 74]
        assert reader.active.backend == "decord" and "simulated pyav" in reader.fallback_reason
    monkeypatch.setattr(video_decord.DecordReader, "_read", broken)
    with pytest.raises(DecodeError, match="simulated decord"), open_video(media["cfr"]) as reader:
        reader.get_frames([0])
    with pytest.raises(DecodeError, match="simulated"), open_video(media["cfr"], backend="pyav") as reader:
        reader.get_frames([0])

    # without torchcodec (not installed, or no FFmpeg libraries) auto goes from PyAV to decord
    monkeypatch.undo()
    monkeypatch.setattr(video_pyav.PyAVReader, "_read", broken)
    monkeypatch.setattr(open_module, "torchcodec_problem", lambda: "torchcodec is not installed")
    with open_video(media["cfr"]) as reader:
        assert decoded_indices(reader.get_frames([3])) == [3] and reader.active.backend == "decord"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_stuck_decoder_times_out(media, monkeypatch, backend):
    from vlprep.extractors.decode import open as open_module

    reader_class = {"decord": "DecordReader", "pyav": "PyAVReader", "torchcodec": "TorchCodecReader"}[backend]
    monkeypatch.setattr(getattr(open_module, reader_class), "_read", lambda self, idx: time.sleep(30))
    reader = open_video(media["cfr"], backend=backend, timeout=0.5)
    start = time.monotonic()
    with pytest.raises(DecodeError, match="timed out after 0.5 s"):
        reader.get_frames([0])
    assert time.monotonic() - start < 5


def test_windows_read_ahead_fall_back_mid_file_and_stop_early(media, monkeypatch):
    """iter_frames reads the next window while the caller holds this one; a backend failing at a later
    window hands over from that window; a caller that stops early leaves no read running into close()."""
    from vlprep.extractors.decode import video_pyav

    wanted = list(range(0, 75, 3))
    with open_video(media["cfr"]) as reader:
        windows = [decoded_indices(w) for w in reader.iter_frames(wanted, window=4)]
    assert sum(windows, []) == wanted and len(windows) == 7

    calls = []
    original = video_pyav.PyAVReader._read

    def fails_later(self, indices):
        calls.append(len(calls))
        if len(calls) >= 3:
            raise DecodeError("simulated pyav failure at a later window")
        return original(self, indices)

    monkeypatch.setattr(video_pyav.PyAVReader, "_read", fails_later)
    with open_video(media["cfr"]) as reader:
        got = sum((decoded_indices(w) for w in reader.iter_frames(wanted, window=4)), [])
        assert got == wanted and reader.active.backend != "pyav"
        assert "later window" in reader.fallback_reason
    monkeypatch.undo()

    reader = open_video(media["cfr"], backend="pyav")
    frames = reader.iter_frames(wanted, window=4)
    assert decoded_indices(next(frames)) == wanted[:4]
    reader.close()  # the second window was being read ahead: close waits for it, then frees the decoder
    frames.close()


def test_timeout_helper():
    with pytest.raises(DecodeError, match="timed out"):
        call_with_timeout(lambda: time.sleep(5), 0.2, "sleeping")
    assert call_with_timeout(lambda: 7, 1.0, "quick") == 7


@pytest.mark.parametrize("backend", ["auto", *BACKENDS])
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


@pytest.mark.parametrize(
    "breakage",
    [
        "sys.modules['torchcodec'] = None",  # not installed: the import fails
        pytest.param(  # installed, but no FFmpeg libraries loaded
            "import torchcodec._core as core; core.ffmpeg_major_version = None",
            marks=pytest.mark.skipif(TORCHCODEC_MISSING is not None, reason=str(TORCHCODEC_MISSING)),
        ),
    ],
)
def test_decoder_torchcodec_unavailable_is_one_usage_line(tmp_path, breakage):
    """`--decoder torchcodec` where it cannot run: exit 2, one line naming what to install, before Ray,
    a model or the store."""
    import subprocess
    import sys

    (tmp_path / "videos").mkdir()
    write_index_video(tmp_path / "videos" / "a.mp4", num_frames=10, fps=10, width=32, height=32)
    out = tmp_path / "store"
    args = ["video", str(tmp_path / "videos"), "--out", str(out), "--model", "s3d", "--weights", "random"]
    code = (
        f"import sys; {breakage}; sys.argv = ['vlprep', *{args!r}, '--decoder', 'torchcodec']; "
        "from vlprep.cli import main; main()"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr and len(lines) <= 3, proc.stderr  # click: usage, hint, error
    error = lines[-1]
    assert "--decoder" in error and "torchcodec" in error and "apt-get install libavcodec" in error
    assert not out.exists()


def test_a_reader_decodes_on_one_pooled_thread(media, monkeypatch):
    """Every decoder call of a reader runs on one worker thread (not a new thread per call, which cost
    torchcodec 1.3-1.5x), and a closed reader's worker serves the next reader."""
    import threading

    from vlprep.extractors.decode import video_pyav

    threads = []
    read = video_pyav.PyAVReader._read

    def recording(self, indices):
        threads.append(threading.get_ident())
        return read(self, indices)

    monkeypatch.setattr(video_pyav.PyAVReader, "_read", recording)
    with open_video(media["cfr"], backend="pyav") as reader:
        assert decoded_indices(np.concatenate(list(reader.iter_frames(range(75), window=10)))) == list(
            range(75)
        )
    assert len(threads) == 8 and len(set(threads)) == 1 and threads[0] != threading.get_ident()
    with open_video(media["cfr"], backend="pyav") as reader:
        reader.get_frames([1])
    assert threads[-1] == threads[0]


@pytest.mark.skipif(TORCHCODEC_MISSING is not None, reason=str(TORCHCODEC_MISSING))
def test_torchcodec_on_cuda_or_back_on_the_cpu(media, monkeypatch):
    """With a CUDA model device torchcodec decodes on NVDEC; where CUDA cannot decode (here: no GPU)
    the reader opens on the CPU instead, says why, and the frames are the same."""
    import torch

    from vlprep.extractors.decode import video_torchcodec

    assert video_torchcodec.decode_device("cpu") == "cpu" and video_torchcodec.decode_device(None) == "cpu"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert video_torchcodec.decode_device("cuda") == expected
    monkeypatch.setattr(video_torchcodec, "decode_device", lambda device: "cuda")  # as if a GPU were seen
    with open_video(media["vfr"], backend="torchcodec", device="cuda") as reader:
        assert decoded_indices(reader.get_frames(range(len(reader)))) == list(range(len(reader)))
        if not torch.cuda.is_available():
            assert reader.device == "cpu" and "CUDA" in reader.device_fallback_reason
