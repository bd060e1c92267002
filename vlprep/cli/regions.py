"""`vlprep regions INPUT... --out STORE`: bottom-up-attention region features for an image corpus."""

from __future__ import annotations

import click

from .pipeline_options import check_inputs, pipeline_options, resolve_device, run_job_cli, run_options


@click.command("regions")
@click.option(
    "--weights",
    required=True,
    help="Checkpoint (.pkl detectron2, .pth MILVLG, pytorch_model.bin HF) or 'random'.",
)
@click.option(
    "--weights-format",
    default="auto",
    show_default=True,
    help="Checkpoint format when the file name does not tell it.",
)
@click.option("--vocab", default=None, help="objects.txt,attributes.txt label names.")
@click.option(
    "--policy",
    type=click.Choice(["caffe", "maxnms", "given"]),
    default="caffe",
    show_default=True,
    help="Box selection: the Caffe reference, detectron2-port max-NMS, or user-given boxes.",
)
@click.option(
    "--boxes", default="10-100", show_default=True, help="Boxes per image: a count (36) or a range (10-100)."
)
@click.option(
    "--given-boxes",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="JSON {id: [[x1,y1,x2,y2],...]} or CSV id,x1,y1,x2,y2 (with --policy given).",
)
@click.option("--min-size", default=600, show_default=True, type=click.IntRange(min=16), help="Shorter side.")
@click.option(
    "--max-size", default=1000, show_default=True, type=click.IntRange(min=16), help="Longer side cap."
)
@click.option("--resize", default="cv2", show_default=True, help="Resize implementation.")
@click.option("--rpn-pre-nms", default=6000, show_default=True, type=click.IntRange(min=1))
@click.option("--rpn-post-nms", default=300, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--device", default=None, help="cpu, cuda, cuda:1  [default: cuda with --gpus-per-worker, else cpu]."
)
@click.option("--precision", type=click.Choice(["fp32", "fp16", "bf16"]), default="fp32", show_default=True)
@click.option("--seed", default=0, show_default=True, help="Seed of --weights random.")
@click.option(
    "--batch-size", default=8, show_default=True, type=click.IntRange(min=1), help="Images per model call."
)
@pipeline_options
def regions_cmd(
    inputs,
    weights,
    weights_format,
    vocab,
    policy,
    boxes,
    given_boxes,
    min_size,
    max_size,
    resize,
    rpn_pre_nms,
    rpn_post_nms,
    device,
    precision,
    seed,
    batch_size,
    **params,
):
    """Extract region features (ResNet-101 Faster R-CNN, Visual Genome) for every image in INPUT...

    INPUT is a directory (recursive), a glob, a list file (.txt) or a manifest (.csv/.jsonl with
    id,path). Running the same command again resumes: committed images are skipped."""
    from vlprep.pipelines.regions import RegionOptions, parse_boxes, run_regions

    inputs = check_inputs(inputs)
    try:
        box_range = parse_boxes(boxes)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--boxes") from None
    if policy == "given" and not given_boxes:
        raise click.UsageError("--policy given needs --given-boxes FILE")
    if given_boxes and policy != "given":
        raise click.UsageError("--given-boxes needs --policy given")
    if min_size > max_size:
        raise click.UsageError("--min-size must not exceed --max-size")
    options = RegionOptions(
        weights=weights,
        weights_format=weights_format,
        policy=policy,
        boxes=box_range,
        min_size=min_size,
        max_size=max_size,
        device=resolve_device(device, params["gpus_per_worker"]),
        precision=precision,
        vocab=vocab,
        resize=resize,
        seed=seed,
        rpn_pre_nms=rpn_pre_nms,
        rpn_post_nms=rpn_post_nms,
        given_boxes=given_boxes,
    )
    run_job_cli(
        lambda: run_regions(inputs, params["out"], options, run_options(params), batch_size=batch_size),
        unit="img",
        out=params["out"],
        strict=params["strict"],
        as_json=params["as_json"],
    )
