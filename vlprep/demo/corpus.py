"""The demo's generated corpus: images with drawn objects laid out as MS-COCO 2014 is (split folders of
`COCO_SPLIT_NUMBER.jpg` and `annotations/captions_SPLIT.json`, so the demo lists them with `vlprep manifest
coco2014` as a user of the real corpus does), short videos of moving shapes, a caption text corpus, and a
few broken files that the job must record and step over."""

from __future__ import annotations

import json
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
BROKEN_EMPTY, BROKEN_TRUNCATED = 999998, 999999  # COCO numbers of the two broken images


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


def coco_name(split: str, number: int) -> str:
    return f"COCO_{split}_{number:012d}.jpg"


def write_images(directory: Path, count: int, seed: int) -> list[str]:
    """`count` images in `train2014/` and `val2014/` (every fourth one) with two captions each in
    `annotations/captions_SPLIT.json`, the fields COCO's files have; returns the captions."""
    rng = random.Random(seed)
    captions = []
    docs = {split: {"images": [], "annotations": []} for split in ("train2014", "val2014")}
    for i in range(count):
        img, caption = _draw_scene(rng, rng.randint(200, 320), rng.randint(160, 240))
        split, number = ("val2014" if i % 4 == 3 else "train2014"), i + 1
        (directory / split).mkdir(parents=True, exist_ok=True)
        img.save(directory / split / coco_name(split, number))
        texts = [f"a {caption} {rng.choice(PLACES)}.", f"a picture of a {caption}."]
        _list_image(docs[split], number, coco_name(split, number), img.size, texts)
        captions += texts
    for split, doc in docs.items():
        _write_captions_json(directory, split, doc)
    return captions


def _list_image(doc: dict, number: int, file_name: str, size: tuple[int, int], texts: list[str]) -> None:
    doc["images"].append({"id": number, "file_name": file_name, "width": size[0], "height": size[1]})
    for text in texts:
        doc["annotations"].append({"id": len(doc["annotations"]) + 1, "image_id": number, "caption": text})


def _write_captions_json(directory: Path, split: str, doc: dict) -> None:
    (directory / "annotations").mkdir(parents=True, exist_ok=True)
    path = directory / "annotations" / f"captions_{split}.json"
    path.write_text(json.dumps({"info": {"description": "vlprep demo"}, **doc}), encoding="utf-8")


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
    corpus = DemoCorpus(root, root / "coco", root / "videos", root / "captions.txt")
    captions = write_images(corpus.images, images, seed)
    # Two broken images (listed in the captions file like the others) and one broken video: recorded as
    # errors, never fatal.
    val = json.loads((corpus.images / "annotations" / "captions_val2014.json").read_text(encoding="utf-8"))
    (corpus.images / "val2014").mkdir(exist_ok=True)  # fewer than four images put none in val2014
    empty = corpus.images / "val2014" / coco_name("val2014", BROKEN_EMPTY)
    empty.write_bytes(b"")
    truncated = corpus.images / "val2014" / coco_name("val2014", BROKEN_TRUNCATED)
    truncated.write_bytes((corpus.images / "train2014" / coco_name("train2014", 1)).read_bytes()[:300])
    for number, path in ((BROKEN_EMPTY, empty), (BROKEN_TRUNCATED, truncated)):
        _list_image(val, number, path.name, (0, 0), ["a broken picture."])
    _write_captions_json(corpus.images, "val2014", val)
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
