"""`vlprep regions INPUT... --out STORE`: bottom-up-attention region features for an image corpus."""

from __future__ import annotations

import click

from vlprep.extractors.regions.config import (
    CHANNEL_ORDERS,
    IMAGE_DECODES,
    POLICIES,
    RESIZE_ALIASES,
    RESIZE_MODES,
    WEIGHTS_FORMATS,
)
from vlprep.extractors.regions.recipes import DEFAULT, RECIPES
from vlprep.extractors.runtime import PRECISIONS
from vlprep.pipelines.regions import DEFAULT_BATCH_SIZE

from .pipeline_options import check_inputs, config_error, pipeline_options, run_job_cli, run_options

FROM_RECIPE = "  [default: the recipe's]"


@click.command("regions")
@click.option(
    "--recipe",
    type=click.Choice(list(RECIPES)),
    default=None,
    help=f"Published feature set to reproduce (`vlprep recipes`); the options below override single "
    f"values.  [default: {DEFAULT}]",
)
@click.option(
    "--weights",
    required=True,
    help="Checkpoint (.pkl detectron2, .pth MILVLG, pytorch_model.bin HF) or 'random'.",
)
@click.option(
    "--weights-format",
    type=click.Choice(WEIGHTS_FORMATS),
    default="auto",
    show_default=True,
    help="Checkpoint format when the file name does not tell it.",
)
@click.option("--vocab", default=None, help="objects.txt,attributes.txt label names.")
@click.option(
    "--policy",
    type=click.Choice(POLICIES),
    default=None,
    help="Box selection: the Caffe reference, detectron2-port max-NMS, or user-given boxes." + FROM_RECIPE,
)
@click.option(
    "--boxes", default=None, help="Boxes per image: a count (36) or a range (10-100)." + FROM_RECIPE
)
@click.option(
    "--nms-thresholds",
    default=None,
    help="maxnms: class-agnostic NMS thresholds, tried in order until one leaves the minimum box count "
    "(e.g. 0.5,0.6,0.7)." + FROM_RECIPE,
)
@click.option(
    "--score-threshold",
    type=click.FloatRange(0, 1),
    default=None,
    help="caffe: keep regions whose best class score reaches this." + FROM_RECIPE,
)
@click.option(
    "--class-nms",
    type=click.FloatRange(0, 1),
    default=None,
    help="caffe: the per-class NMS threshold." + FROM_RECIPE,
)
@click.option(
    "--given-boxes",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="JSON {id: [[x1,y1,x2,y2],...]} or CSV id,x1,y1,x2,y2 (with --policy given).",
)
@click.option("--min-size", default=None, type=click.IntRange(min=16), help="Shorter side." + FROM_RECIPE)
@click.option("--max-size", default=None, type=click.IntRange(min=16), help="Longer side cap." + FROM_RECIPE)
@click.option(
    "--resize",
    type=click.Choice([*RESIZE_MODES, *RESIZE_ALIASES]),
    default=None,
    help="caffe (cv2, one scale), detectron2 (PIL on uint8) or hf (torch on float); cv2 and pil are the "
    "old names of caffe and detectron2." + FROM_RECIPE,
)
@click.option(
    "--channel-order",
    type=click.Choice(CHANNEL_ORDERS),
    default=None,
    help="rgb feeds RGB into the BGR weights, as the Hugging Face demo's local-file path does; only to "
    "reproduce that.  [default: bgr]",
)
@click.option(
    "--rpn-pre-nms", default=None, type=click.IntRange(min=1), help="Proposals before NMS." + FROM_RECIPE
)
@click.option(
    "--rpn-post-nms", default=None, type=click.IntRange(min=1), help="Proposals kept." + FROM_RECIPE
)
@click.option(
    "--device", default=None, help="cpu, cuda, cuda:1  [default: cuda with --gpus-per-worker, else cpu]."
)
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True)
@click.option(
    "--image-decode",
    type=click.Choice(IMAGE_DECODES),
    default="cpu",
    show_default=True,
    help="Where JPEG files are decoded: in Ray CPU tasks, or by each model worker on its GPU (nvjpeg) for "
    "nodes with few CPUs per GPU; other formats are always decoded on the CPU.",
)
@click.option("--seed", default=0, show_default=True, help="Seed of --weights random.")
@click.option(
    "--batch-size",
    default=DEFAULT_BATCH_SIZE,
    show_default=True,
    type=click.IntRange(min=1),
    help="Images per model call.",
)
@pipeline_options
def regions_cmd(inputs, recipe, given_boxes, batch_size, **params):
    """Extract region features (ResNet-101 Faster R-CNN, Visual Genome) for every image in INPUT...

    INPUT is a directory (recursive), a glob, a list file (.txt) or a manifest (.csv/.jsonl with
    id,path). Running the same command again resumes: committed images are skipped."""
    from vlprep.extractors.regions.config import ConfigValueError, RegionConfig
    from vlprep.extractors.regions.recipes import config_from_recipe
    from vlprep.extractors.runtime import choose_device
    from vlprep.pipelines.regions import run_regions

    inputs = check_inputs(inputs)
    fields = {k: params.pop(k) for k in list(params) if k in RegionConfig.__dataclass_fields__}
    fields["device"] = choose_device(fields["device"], params["gpus_per_worker"])
    if fields["resize"] in RESIZE_ALIASES:
        click.echo(
            f"vlprep: --resize {fields['resize']} is now called {RESIZE_ALIASES[fields['resize']]}; "
            "the old name goes in the next release",
            err=True,
        )
    try:
        config = config_from_recipe(recipe, **fields)
    except ConfigValueError as exc:
        raise config_error(exc) from None
    if config.policy == "given" and not given_boxes:
        raise click.UsageError("--policy given needs --given-boxes FILE")
    if given_boxes and config.policy != "given":
        raise click.UsageError("--given-boxes needs --policy given")
    run_job_cli(
        lambda: run_regions(
            inputs, params["out"], config, run_options(params), batch_size=batch_size, given_boxes=given_boxes
        ),
        unit="img",
        out=params["out"],
        strict=params["strict"],
        as_json=params["as_json"],
    )
