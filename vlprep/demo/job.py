"""The demo job: every stage on the generated corpus, timed, on one local Ray."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .corpus import make_corpus

RANDOM_WARNING = (
    "RANDOM WEIGHTS: every model here is randomly initialised, so the features, boxes, labels and tokens\n"
    "are meaningless numbers. The decoding, models, Ray pipeline, stores and tokenizers that produce them\n"
    "are the real ones; give real checkpoints (docs/weights.md) to get real features."
)

REAL_DATA_COMMANDS = """\
vlprep manifest coco2014 /data/coco --out coco.jsonl --split val2014
vlprep regions coco.jsonl --out coco-36 --weights faster_rcnn_from_caffe_attr.pkl \\
    --recipe butd-caffe-36 --vocab objects_vocab.txt,attributes_vocab.txt --device cuda
vlprep video /data/howto100m --out howto-s3d --recipe videobert --weights S3D_kinetics400.pt --device cuda
vlprep tokens fit howto-s3d --levels 4 --branching 12 --out codebook.h5
vlprep tokens assign howto-s3d --codebook codebook.h5 --out howto-tokens
vlprep vocab wordpiece coco.jsonl --field captions --vocab-size 30522 --out vocab-wp
vlprep inspect coco-36 --verify"""


@dataclass
class Stage:
    name: str
    items: int
    errors: int
    seconds: float
    output: str


@dataclass
class DemoReport:
    out_dir: Path
    stages: list[Stage] = field(default_factory=list)
    deliberate_errors: list[dict[str, str]] = field(default_factory=list)
    verified: dict[str, bool] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)  # what -> path, every file the demo made

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)

    def to_json(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "stages": [s.__dict__ for s in self.stages],
            "deliberate_errors": self.deliberate_errors,
            "verified": self.verified,
            "outputs": self.outputs,
            "seconds": self.seconds,
        }


def _timed(
    report: DemoReport,
    name: str,
    output: Path,
    body: Callable[[], tuple[int, int]],
    progress: Callable[[str], None] | None = None,
) -> None:
    start = time.perf_counter()
    items, errors = body()
    stage = Stage(name, items, errors, time.perf_counter() - start, str(output))
    report.stages.append(stage)
    if progress is not None:
        progress(f"    {name}: {items} items, {errors} errors in {stage.seconds:.1f} s -> {output}")


def run_demo(
    out_dir: str | Path,
    progress: Callable[[str], None] = print,
    images: int = 24,
    videos: int = 3,
    bars: bool = False,
) -> DemoReport:
    """Generate a corpus in OUT_DIR/corpus and run every stage on it with random weights. `progress`
    gets a line as each stage starts and ends; `bars` shows the Ray stages' progress bars (items done /
    total, rate) on stderr."""
    from vlprep.corpora import build_manifest
    from vlprep.extractors.regions.config import RegionConfig
    from vlprep.extractors.video.config import video_config
    from vlprep.interop.stores import export_store
    from vlprep.pipelines.regions import run_regions
    from vlprep.pipelines.runner import RunOptions, ray_session
    from vlprep.pipelines.tokens import assign_store, store_rows
    from vlprep.pipelines.video import run_video
    from vlprep.render import render
    from vlprep.store import FeatureStore, verify
    from vlprep.tokenizers.subword.build import build_sentencepiece, build_wordpiece
    from vlprep.tokenizers.visual.fit import fit

    out = Path(out_dir)
    report = DemoReport(out)
    stores = {name: out / name for name in ("regions", "video", "video-tokens")}

    def corpus_stage() -> tuple[int, int]:
        nonlocal corpus
        corpus = make_corpus(out / "corpus", images=images, videos=videos)
        return images + videos + 1 + len(corpus.broken), 0

    corpus = None
    progress("generating the corpus (COCO-style images and captions, videos, three broken files)")
    _timed(report, "corpus", out / "corpus", corpus_stage, progress)

    manifest = out / "coco.jsonl"

    def manifest_stage() -> tuple[int, int]:
        summary = build_manifest("coco2014", corpus.images, manifest)
        return summary["items"], summary["missing"] + summary["duplicates"] + summary["unlisted"]

    progress(f"vlprep manifest coco2014 {corpus.images} --out {manifest}: ids, splits and captions")
    _timed(report, "manifest", manifest, manifest_stage, progress)

    # One worker on two cores: 1.5 CPUs for the model, the rest for decoding tasks.
    run = RunOptions(
        workers=1, cpus_per_worker=1.5, threads_per_worker=2, shard_size=16, overwrite=True, progress=bars
    )
    with ray_session(num_cpus=2):

        def regions_stage() -> tuple[int, int]:
            options = RegionConfig(
                weights="random", boxes=(36, 36), min_size=192, max_size=320, rpn_pre_nms=600, rpn_post_nms=48
            )
            summary = run_regions([str(manifest)], stores["regions"], options, run, batch_size=4)
            return summary["ok"], summary["failed"]

        progress("region features: bottom-up-attention Faster R-CNN, 36 boxes per image")
        _timed(report, "regions", stores["regions"], regions_stage, progress)

        def video_stage() -> tuple[int, int]:
            summary = run_video(
                [str(corpus.videos)], stores["video"], video_config("videobert", weights="random"), run
            )
            return summary["ok"], summary["failed"]

        progress("video features: S3D, 30-frame clips at 20 fps")
        _timed(report, "video", stores["video"], video_stage, progress)

    codebook_path = out / "codebook.h5"

    def tokens_stage() -> tuple[int, int]:
        codebook = fit(store_rows(stores["video"]), levels=2, branching=3, seed=0)
        codebook.save(codebook_path)
        summary = assign_store(stores["video"], codebook_path, stores["video-tokens"], overwrite=True)
        return summary.get("items", len(FeatureStore(stores["video-tokens"]))), 0

    progress("visual tokens: hierarchical k-means (2 levels x 3 here; VideoBERT uses 4 x 12)")
    _timed(report, "tokens", stores["video-tokens"], tokens_stage, progress)

    def wordpiece_stage() -> tuple[int, int]:
        summary = build_wordpiece(
            [manifest, corpus.captions], out / "vocab-wordpiece", vocab_size=200, field="captions", workers=1
        )
        return summary.lines, 0

    def bpe_stage() -> tuple[int, int]:
        summary = build_sentencepiece(
            [manifest, corpus.captions], out / "vocab-bpe", model_type="bpe", vocab_size=120, field="captions"
        )
        return summary.lines, 0

    progress("subword vocabularies: WordPiece (likelihood) and BPE (sentencepiece) from the captions")
    _timed(report, "wordpiece", out / "vocab-wordpiece", wordpiece_stage, progress)
    _timed(report, "bpe", out / "vocab-bpe", bpe_stage, progress)

    def inspect_stage() -> tuple[int, int]:
        faults = 0
        for name, path in stores.items():
            result = verify(FeatureStore(path))
            report.verified[name] = result.ok
            faults += len(result.faults)
        regions = FeatureStore(stores["regions"])
        render(regions, out / "regions.png", item_id=regions.ids()[0])
        render(regions, out / "regions-overview.png")
        video = FeatureStore(stores["video"])
        render(video, out / "video.png", item_id=video.ids()[0])
        tokens = FeatureStore(stores["video-tokens"])
        render(tokens, out / "tokens.png")
        render(tokens, out / "video-tokens.png", item_id=tokens.ids()[0])
        exported = export_store(stores["regions"], "lxmert-tsv", out / "regions.tsv")
        for path in (stores["regions"], stores["video"]):
            report.deliberate_errors += FeatureStore(path).errors()
        return exported, faults

    progress("inspect --verify on every store, renders, LXMERT TSV export")
    _timed(report, "inspect+export", out, inspect_stage, progress)
    report.outputs = {
        "corpus": str(out / "corpus"),
        "manifest": str(manifest),
        "regions store": str(stores["regions"]),
        "video store": str(stores["video"]),
        "token store": str(stores["video-tokens"]),
        "codebook": str(codebook_path),
        "WordPiece vocabulary": str(out / "vocab-wordpiece" / "vocab.txt"),
        "BPE vocabulary": str(out / "vocab-bpe" / "spm.model"),
        "LXMERT TSV": str(out / "regions.tsv"),
        "regions picture": str(out / "regions.png"),
        "regions overview": str(out / "regions-overview.png"),
        "video picture": str(out / "video.png"),
        "token usage picture": str(out / "tokens.png"),
        "token timeline picture": str(out / "video-tokens.png"),
    }
    return report
