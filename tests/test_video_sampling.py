"""Sampling plans as pure functions, checked against brute-force definitions."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vlprep.extractors.decode.open import open_video
from vlprep.extractors.decode.sampling import (
    clip_timestamps,
    clip_windows,
    frame_indices_at,
    max_over_overlaps,
    overlapping,
    sample_frames,
    sample_times,
)
from vlprep.extractors.decode.video_torchcodec import torchcodec_problem
from vlprep.extractors.video.combine import combine_2d3d


@given(duration=st.floats(0.001, 600), rate=st.sampled_from([1.0, 16.0, 20.0, 24.0, 29.97, 0.5]))
@settings(max_examples=200, deadline=None)
def test_sample_times_cover_the_video_at_the_rate(duration, rate):
    times = sample_times(duration, rate)
    assert times[0] == 0.0
    assert np.all(times < duration + 1e-6)
    assert np.allclose(np.diff(times), 1 / rate)
    # one more sample would start at or after the end
    assert len(times) == 1 or len(times) / rate >= duration - 1e-6
    assert len(times) == max(1, math.ceil(duration * rate - 1e-6))


def test_sample_times_counts_of_the_recipes():
    assert len(sample_times(10.0, 20.0)) == 200  # s3d: 200 frames -> 7 clips of 30 (6 full + 1 padded)
    assert len(sample_times(10.0, 1.0)) == 10
    assert len(sample_times(10.0, 24.0)) == 240
    assert len(sample_times(0.2, 1.0)) == 1  # a short video still yields its first frame
    with pytest.raises(ValueError):
        sample_times(1.0, 0.0)


@given(
    gaps=st.lists(st.integers(1, 200), min_size=1, max_size=60),
    times=st.lists(st.floats(-1, 10), min_size=1, max_size=40),
)
@settings(max_examples=200, deadline=None)
def test_frame_at_t_is_the_last_frame_shown_at_or_before_t(gaps, times):
    pts = np.cumsum([0] + gaps[:-1]) / 1000.0  # millisecond presentation times, first at 0
    got = frame_indices_at(pts, np.array(times))
    for t, i in zip(times, got, strict=True):
        shown = [k for k, p in enumerate(pts) if p <= t + 1e-9]
        assert i == (shown[-1] if shown else 0)


def test_frame_exactly_at_t_wins_over_rounding():
    pts = np.arange(30) / 30.0  # 1/30 s frames
    times = np.arange(10) / 10.0  # 0.1 s = exactly frame 3, 0.3 s = frame 9 ...
    assert frame_indices_at(pts, times).tolist() == [0, 3, 6, 9, 12, 15, 18, 21, 24, 27]


@given(n=st.integers(0, 500), clip=st.integers(1, 40), stride=st.integers(1, 40))
@settings(max_examples=300, deadline=None)
def test_clip_windows(n, clip, stride):
    pad = clip_windows(n, clip, stride, "pad")
    drop = clip_windows(n, clip, stride, "drop")
    if n == 0:
        assert len(pad) == len(drop) == 0
        return
    assert np.all(pad[:, 1] - pad[:, 0] == clip)
    assert np.all(np.diff(pad[:, 0]) == stride)
    assert pad[0, 0] == 0
    # padded: the windows reach every sample that a stride step can start from, and no window is empty
    assert pad[-1, 1] >= n or pad[-1, 0] + stride > n - 1
    assert np.all(pad[:, 0] < n)
    assert len(pad) == min(max(1, math.ceil(max(n - clip, 0) / stride) + 1), math.ceil(n / stride))
    # dropped: full windows only, and as many as fit
    assert np.all(drop[:, 1] <= n)
    assert len(drop) == (0 if n < clip else (n - clip) // stride + 1)


def test_non_overlapping_recipe_counts():
    assert len(clip_windows(200, 30)) == 7  # s3d, 10 s at 20 fps
    assert len(clip_windows(200, 30, tail="drop")) == 6
    assert len(clip_windows(240, 16)) == 15  # resnext 3D, 10 s at 24 fps: 1.5 clips/s
    assert len(clip_windows(250, 16)) == 16
    assert clip_windows(5, 16).tolist() == [[0, 16]]


def test_clip_timestamps_end_at_the_duration():
    stamps = clip_timestamps(clip_windows(200, 30), 20.0, 10.0)
    assert stamps[0].tolist() == [0.0, 1.5]
    assert stamps[-1].tolist() == [9.0, 10.0]
    assert np.all(stamps[1:, 0] == stamps[:-1, 1])


@given(
    rows=st.integers(1, 30),
    rate=st.sampled_from([1.5, 1.0, 2.0, 0.75]),
    dim=st.integers(1, 5),
    seed=st.integers(0, 1000),
)
@settings(max_examples=100, deadline=None)
def test_max_over_overlaps_matches_brute_force(rows, rate, dim, seed):
    duration = rows - 0.25
    grid = clip_timestamps(clip_windows(rows, 1), 1.0, duration)
    n_clips = len(clip_windows(len(sample_times(duration, rate)), 1))
    clips = clip_timestamps(clip_windows(n_clips, 1), rate, duration)
    feats = np.random.default_rng(seed).normal(size=(n_clips, dim))
    got = max_over_overlaps(grid, clips, feats)
    for i, (s, e) in enumerate(grid):
        hit = [j for j, (cs, ce) in enumerate(clips) if cs < e and s < ce]
        assert hit, "clips tile the video, so every second overlaps one"
        np.testing.assert_array_equal(got[i], feats[hit].max(axis=0))


def test_touching_intervals_do_not_overlap():
    assert not overlapping([[0.0, 1.0]], [[1.0, 2.0]]).any()
    assert overlapping([[0.0, 1.0]], [[0.999, 2.0]]).all()


def test_combine_2d3d_rows_per_second():
    # 3 s of video: 3 rows of 2D; 3D clips of 16 frames at 24 fps are 2/3 s long
    t2d = clip_timestamps(clip_windows(3, 1), 1.0, 3.0)
    t3d = clip_timestamps(clip_windows(72, 16), 24.0, 3.0)  # 5 clips: 0-.67, .67-1.33, 1.33-2, 2-2.67, 2.67-3
    f2d = np.arange(6, dtype=np.float32).reshape(3, 2)
    f3d = np.array([[1, 0], [0, 5], [2, 2], [9, 0], [0, 1]], dtype=np.float32)
    features, pooled = combine_2d3d(f2d, t2d, f3d, t3d)
    assert features.shape == (3, 4)
    # second 0 overlaps clips 0, 1; second 1 overlaps 1, 2; second 2 overlaps 3, 4
    np.testing.assert_array_equal(pooled, [[1, 5], [2, 5], [9, 1]])
    np.testing.assert_array_equal(features[:, :2], f2d)


# -- the ffmpeg-fps rule against ffmpeg's own fps filter ------------------------------------------------


@pytest.fixture(scope="module")
def index_videos(tmp_path_factory):
    """Videos whose frames show their index: 25 fps, 29.97 fps with B-frames, 30 fps; about 3.3 s."""
    from vlprep.extractors.decode.synthetic_video import write_index_video

    root = tmp_path_factory.mktemp("fps-rule")
    videos = {}
    for name, rate, frames, bframes in (
        ("25", 25.0, 83, False),
        ("29.97", 30000 / 1001, 100, True),
        ("30", 30.0, 97, False),
    ):
        path = root / f"v{name}.mp4"
        write_index_video(path, num_frames=frames, fps=rate, width=64, height=48, bframes=bframes)
        videos[name] = path
    return videos


def _libavfilter_fps(path, rate: float) -> list[int]:
    """The source-frame indices that libavfilter's `fps` filter (the one the HowTo100M and UniVL
    extractors ran through ffmpeg) outputs at `rate`: an independent computation of the rule."""
    import av

    from vlprep.extractors.decode.synthetic_video import read_frame_index

    out: list[int] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        graph = av.filter.Graph()
        source, fps, sink = (
            graph.add_buffer(template=stream),
            graph.add("fps", f"fps={rate}"),
            graph.add("buffersink"),
        )
        source.link_to(fps)
        fps.link_to(sink)
        graph.configure()

        def drain() -> None:
            while True:
                try:
                    out.append(read_frame_index(graph.pull().to_ndarray(format="rgb24")))
                except (av.error.BlockingIOError, av.error.EOFError):
                    return

        for frame in container.decode(stream):
            graph.push(frame)
            drain()
        graph.push(None)
        drain()
    return out


@pytest.mark.parametrize("rate", [1.0, 16.0, 20.0, 24.0])
@pytest.mark.parametrize("video", ["25", "29.97", "30"])
def test_ffmpeg_fps_rule_matches_the_fps_filter(index_videos, video, rate):
    with open_video(index_videos[video], backend="pyav") as reader:
        pts, duration = reader.pts, reader.meta.duration
    times = sample_times(duration, rate, "ffmpeg-fps")
    got = sample_frames(pts, times, rate, "ffmpeg-fps").tolist()
    assert got == _libavfilter_fps(index_videos[video], rate)  # the frames, in order, and their count
    # the floor rule is not ffmpeg's: it differs in phase or count on these videos
    floor_times = sample_times(duration, rate, "floor")
    assert sample_frames(pts, floor_times, rate, "floor").tolist() != got


# torchcodec's cases run in CI always; elsewhere they are skipped when it cannot load (test_decode_video.py)
_TORCHCODEC_MISSING = None if os.environ.get("CI") else torchcodec_problem()


@pytest.mark.parametrize(
    "backend",
    [
        "decord",
        "pyav",
        pytest.param(
            "torchcodec",
            marks=pytest.mark.skipif(_TORCHCODEC_MISSING is not None, reason=str(_TORCHCODEC_MISSING)),
        ),
    ],
)
@pytest.mark.parametrize("rate", [1.0, 16.0, 20.0, 24.0])
def test_each_decoder_returns_the_fps_filter_frames(index_videos, backend, rate):
    """Decoded, not only planned: each backend's frames for the ffmpeg-fps plan show the indices that
    libavfilter's fps filter outputs (29.97 fps with B-frames)."""
    from vlprep.extractors.decode.synthetic_video import read_frame_index

    path = index_videos["29.97"]
    with open_video(path, backend=backend) as reader:
        times = sample_times(reader.meta.duration, rate, "ffmpeg-fps")
        frames = reader.get_frames(sample_frames(reader.pts, times, rate, "ffmpeg-fps"))
    assert [read_frame_index(f) for f in frames] == _libavfilter_fps(path, rate)


@given(duration=st.floats(0.001, 600), rate=st.sampled_from([1.0, 16.0, 20.0, 24.0, 29.97, 0.5]))
@settings(max_examples=200, deadline=None)
def test_ffmpeg_fps_count_rounds(duration, rate):
    n = len(sample_times(duration, rate, "ffmpeg-fps"))
    assert n == max(1, math.floor(duration * rate + 0.5 + 1e-6))
    assert n <= len(sample_times(duration, rate, "floor"))


def test_ffmpeg_fps_rule_by_hand():
    pts = np.arange(100) / 25.0  # 25 fps, 4.0 s
    times = sample_times(4.0, 1.0, "ffmpeg-fps")
    # sample k: the last frame before k + 0.5 s; a frame exactly at k + 0.5 s belongs to the next sample
    assert sample_frames(pts, times, 1.0, "ffmpeg-fps").tolist() == [12, 37, 62, 87]
    assert sample_frames(pts, times, 1.0, "floor").tolist() == [0, 25, 50, 75]
    assert len(sample_times(4.004, 1.0, "ffmpeg-fps")) == 4 and len(sample_times(4.004, 1.0, "floor")) == 5
    with pytest.raises(ValueError, match="sampling rule"):
        sample_times(4.0, 1.0, "nearest")
