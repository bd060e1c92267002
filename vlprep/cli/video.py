"""`vlprep video INPUT... --out STORE --model NAME`: clip features for a video corpus."""

from __future__ import annotations

import click

from .pipeline_options import check_inputs, pipeline_options, resolve_device, run_job_cli, run_options

MODELS = ["s3d", "resnet152", "resnext101-3d", "2d3d", "s3dg-howto100m"]


@click.command("video")
@click.option("--model", type=click.Choice(MODELS), required=True, help="Feature recipe (see docs/video.md).")
@click.option("--weights", required=True, help="Checkpoint path ('p2d,p3d' for 2d3d) or 'random'.")
@click.option("--decoder", type=click.Choice(["auto", "decord", "pyav"]), default="auto", show_default=True)
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
@click.option("--precision", type=click.Choice(["fp32", "fp16", "bf16"]), default="fp32", show_default=True)
@click.option("--seed", default=0, show_default=True, help="Seed of --weights random.")
@click.option(
    "--batch-size", default=8, show_default=True, type=click.IntRange(min=1), help="Clips per forward pass."
)
@pipeline_options
def video_cmd(
    inputs,
    model,
    weights,
    decoder,
    keep_streams,
    with_embedding,
    decode_timeout,
    device,
    precision,
    seed,
    batch_size,
    **params,
):
    """Extract clip features for every video in INPUT...

    INPUT is a directory (recursive), a glob, a list file (.txt) or a manifest (.csv/.jsonl with
    id,path). Running the same command again resumes: committed videos are skipped."""
    from vlprep.pipelines.video import VideoOptions, run_video

    inputs = check_inputs(inputs)
    options = VideoOptions(
        model=model,
        weights=weights,
        device=resolve_device(device, params["gpus_per_worker"]),
        precision=precision,
        batch_size=batch_size,
        decoder=decoder,
        seed=seed,
        keep_streams=keep_streams,
        with_embedding=with_embedding,
        decode_timeout=decode_timeout,
    )
    run_job_cli(
        lambda: run_video(inputs, params["out"], options, run_options(params)),
        unit="video",
        out=params["out"],
        strict=params["strict"],
        as_json=params["as_json"],
    )
