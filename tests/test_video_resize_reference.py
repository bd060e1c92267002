"""What the HowTo100M/UniVL resize is, measured: their ffmpeg `scale` filter (swscale bicubic from the
YUV frame, converted to rgb24 in the same call) against PyAV's `VideoFrame.reformat` and vlprep's torch
resize (docs/video.md, "Resize: a known difference")."""

from __future__ import annotations

import numpy as np
import pytest

av = pytest.importorskip("av")


@pytest.fixture(scope="module")
def colour_video(tmp_path_factory):
    """yuv420p H.264 with sharp colour edges, gradients and noise (chroma siting matters here)."""
    path = tmp_path_factory.mktemp("scale") / "colour.mp4"
    rng = np.random.default_rng(0)
    h, w = 120, 160
    yy, xx = np.mgrid[0:h, 0:w]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(4):
            img = np.stack([(xx * 255 / w + 9 * i) % 256, yy * 255 / h, ((xx + yy) % 32) * 8], axis=-1)
            img[(xx // 8 + yy // 8) % 2 == 0] //= 2
            img = np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode())
    return path


def _scale_filter(path, width: int, height: int, options: str = "") -> tuple[list, list[np.ndarray]]:
    """(decoded frames, libavfilter `scale=W:H` + `format=rgb24` output): the reference pipeline."""
    frames, outputs = [], []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        graph = av.filter.Graph()
        chain = [graph.add_buffer(template=stream), graph.add("scale", f"{width}:{height}{options}")]
        chain += [graph.add("format", "rgb24"), graph.add("buffersink")]
        for a, b in zip(chain, chain[1:]):
            a.link_to(b)
        graph.configure()
        for frame in container.decode(stream):
            frames.append(frame)
            graph.push(frame)
            outputs.append(graph.pull().to_ndarray())
    return frames, outputs


@pytest.mark.parametrize("size", [(149, 112), (224, 168)])  # the reference truncates the long side
def test_swscale_bicubic_is_ffmpegs_scale_with_left_sited_chroma(colour_video, size):
    from vlprep.extractors.video.preprocess import resize_crop

    width, height = size
    frames, left = _scale_filter(colour_video, width, height, ":in_chroma_loc=left")
    _, default = _scale_filter(colour_video, width, height)
    _, bicubic = _scale_filter(colour_video, width, height, ":flags=bicubic")
    assert all(np.array_equal(a, b) for a, b in zip(default, bicubic))  # the filter's default is bicubic
    reformat = [f.reformat(width, height, "rgb24", interpolation="BICUBIC").to_ndarray() for f in frames]
    assert all(np.array_equal(a, b) for a, b in zip(reformat, left))  # byte-identical
    assert max(np.abs(a.astype(int) - b.astype(int)).max() for a, b in zip(reformat, default)) > 0
    # vlprep's resize (torch, from the full-size RGB frame) is not the reference's: a documented gap
    full = np.stack([f.to_ndarray(format="rgb24") for f in frames])
    ours = resize_crop(full, min(width, height), None).numpy()
    assert ours.shape[1:3] == (height, width)
    assert np.abs(ours.astype(int) - np.stack(left).astype(int)).mean() > 0.5
