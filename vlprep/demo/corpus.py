"""The demo's generated corpus: images with drawn objects, short videos of moving shapes, captions,
and a few broken files that the job must record and step over."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 210, 40),
    "purple": (140, 60, 180),
    "orange": (240, 140, 30),
}
SHAPES = ("box", "ball", "kite", "plate", "sign", "window")
PLACES = ("on a table", "in a field", "near a wall", "under a tree", "on the street", "in a kitchen")
VERBS = ("sits", "lies", "stands", "rests", "waits", "hangs")


@dataclass
class DemoCorpus:
    root: Path
    images: Path
    videos: Path
    captions: Path
    broken: list[Path] = field(default_factory=list)


def _draw_scene(rng: random.Random, width: int, height: int) -> tuple[Image.Image, str]:
    background = tuple(rng.randint(150, 240) for _ in range(3))
    img = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(img)
    words = []
    for _ in range(rng.randint(2, 5)):
        colour = rng.choice(list(COLOURS))
        w, h = rng.randint(width // 8, width // 3), rng.randint(height // 8, height // 3)
        x, y = rng.randint(0, width - w), rng.randint(0, height - h)
        if rng.random() < 0.5:
            draw.rectangle([x, y, x + w, y + h], fill=COLOURS[colour], outline=(0, 0, 0), width=2)
            words.append(f"{colour} box")
        else:
            draw.ellipse([x, y, x + w, y + h], fill=COLOURS[colour], outline=(0, 0, 0), width=2)
            words.append(f"{colour} ball")
    return img, " and a ".join(words[:2])


def write_images(directory: Path, count: int, seed: int) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    captions = []
    for i in range(count):
        img, caption = _draw_scene(rng, rng.randint(200, 320), rng.randint(160, 240))
        sub = directory / ("indoor" if i % 2 else "outdoor")
        sub.mkdir(exist_ok=True)
        img.save(sub / f"scene_{i:03d}.{'png' if i % 3 == 0 else 'jpg'}")
        captions.append(f"a {caption} {rng.choice(PLACES)}.")
    return captions


def write_shapes_video(path: Path, seconds: float, fps: int, size: tuple[int, int], seed: int) -> None:
    """A ball and a box moving across a plain background, H.264 via PyAV."""
    import av

    rng = np.random.default_rng(seed)
    width, height = size
    colours = rng.choice(list(COLOURS.values()), 2)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23"}
        for i in range(int(seconds * fps)):
            t = i / (seconds * fps)
            img = Image.new("RGB", size, (200, 210, 220))
            draw = ImageDraw.Draw(img)
            x = int(t * (width - 40))
            draw.ellipse([x, height // 4, x + 30, height // 4 + 30], fill=tuple(colours[0]))
            y = int(t * (height - 40))
            draw.rectangle([width - 50, y, width - 20, y + 30], fill=tuple(colours[1]))
            frame = av.VideoFrame.from_ndarray(np.asarray(img), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode())


def write_captions(path: Path, seeds: list[str], count: int, seed: int) -> None:
    rng = random.Random(seed)
    lines = list(seeds)
    while len(lines) < count:
        colour, shape = rng.choice(list(COLOURS)), rng.choice(SHAPES)
        lines.append(f"a {colour} {shape} {rng.choice(VERBS)} {rng.choice(PLACES)}.")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def make_corpus(root: Path, images: int = 24, videos: int = 3, seed: int = 0) -> DemoCorpus:
    corpus = DemoCorpus(root, root / "images", root / "videos", root / "captions.txt")
    captions = write_images(corpus.images, images, seed)
    # Two broken images and one broken video: recorded as errors, never fatal.
    empty = corpus.images / "broken_empty.jpg"
    empty.write_bytes(b"")
    truncated = corpus.images / "broken_truncated.jpg"
    truncated.write_bytes((corpus.images / "outdoor" / "scene_002.jpg").read_bytes()[:300])
    corpus.videos.mkdir(parents=True, exist_ok=True)
    for i in range(videos):
        write_shapes_video(
            corpus.videos / f"clip_{i}.mp4", seconds=3.0, fps=20, size=(128, 96), seed=seed + i
        )
    not_video = corpus.videos / "broken.mp4"
    not_video.write_bytes(b"this is not a video " * 50)
    corpus.broken = [empty, truncated, not_video]
    write_captions(corpus.captions, captions, count=3000, seed=seed)
    return corpus
