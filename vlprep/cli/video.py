"""`vlprep video INPUT... --out STORE --recipe NAME | --model NAME`: clip features for a video corpus."""

from __future__ import annotations

import click

from vlprep.extractors.decode.sampling import SAMPLING_RULES
from vlprep.extractors.runtime import PRECISIONS
from vlprep.extractors.video.config import DECODERS, MODELS
from vlprep.extractors.video.recipes import ALIASES, RECIPES

from .pipeline_options import check_inputs, config_error, pipeline_options, run_job_cli, run_options


@click.command("video")
@click.option(
    "--recipe",
    type=click.Choice([*RECIPES, *ALIASES]),
    default=None,
    help="Published feature set to reproduce (`vlprep recipes`).  [default: the --model's recipe]",
)
@click.option(
    "--model",
    type=click.Choice(MODELS),
    default=None,
    help="Network; alone it takes its recipe (resnet152: howto100m-2d, s3d: videobert, ...).",
)
@click.option("--weights", required=True, help="Checkpoint path ('p2d,p3d' for 2d3d) or 'random'.")
@click.option(
    "--sampling",
    type=click.Choice(SAMPLING_RULES),
    default=None,
    help="Which frame each sample shows: ffmpeg's fps filter, or the last frame at or before k/fps "
    "(docs/video.md).  [default: the recipe's]",
)
@click.option(
    "--decoder",
    type=click.Choice(DECODERS),
    default="auto",
    show_default=True,
    help="Video decoder; auto: PyAV (the fastest here), then torchcodec, then decord, each taking "
    "over a file the one before cannot read (docs/video.md). torchcodec decodes on NVDEC when --device "
    "is CUDA.",
)
@click.option(
    "--keep-streams", is_flag=True, help="2d3d: also store the 2D and 3D streams as their own fields."
)
@click.option(
    "--with-embedding", is_flag=True, help="s3dg-howto100m: also store the 512-d joint `embedding`."
)
@click.option(
    "--decode-timeout",
    default=120.0,
    show_default=True,
    type=click.FloatRange(min=1),
    help="Seconds one decode call may take before the video is recorded as stuck.",
)
@click.option(
    "--device", default=None, help="cpu, cuda, cuda:1  [default: cuda with --gpus-per-worker, else cpu]."
)
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True)
@click.option("--seed", default=0, show_default=True, help="Seed of --weights random.")
@click.option(
    "--batch-size", default=8, show_default=True, type=click.IntRange(min=1), help="Clips per forward pass."
)
@pipeline_options
def video_cmd(inputs, recipe, model, **params):
    """Extract clip features for every video in INPUT...

    INPUT is a directory (recursive), a glob, a list file (.txt) or a manifest (.csv/.jsonl with
    id,path). Running the same command again resumes: committed videos are skipped."""
    from vlprep.extractors.runtime import choose_device
    from vlprep.extractors.video.config import FIELD_NAMES, ConfigValueError, video_config
    from vlprep.pipelines.video import run_video

    inputs = check_inputs(inputs)
    if recipe is None and model is None:
        raise click.UsageError("name a --recipe or a --model (see `vlprep recipes`)")
    fields = {k: params.pop(k) for k in list(params) if k in FIELD_NAMES}
    fields["device"] = choose_device(fields["device"], params["gpus_per_worker"])
    try:
        config = video_config(recipe, model, **fields)
    except ConfigValueError as exc:
        raise config_error(exc) from None
    run_job_cli(
        lambda: run_video(inputs, params["out"], config, run_options(params)),
        unit="video",
        out=params["out"],
        strict=params["strict"],
        as_json=params["as_json"],
    )
