"""The model registry: architecture, recipe and checkpoint reading for each stream, in one table."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from vlprep.checksums import file_sha256
from vlprep.extractors.video.checkpoints import (
    detect_s3d_layout,
    kylemin_to_torchvision,
    load_strict,
    read_state_dict,
)
from vlprep.extractors.video.recipes import (
    RESNET152_2D,
    RESNEXT101_3D,
    S3D_NORMALISATION,
    S3D_VIDEOBERT,
    S3DG_UNIVL,
    StreamRecipe,
)


@dataclass
class Stream:
    """One network with its recipe and where its weights came from."""

    name: str
    architecture: str
    model: nn.Module
    recipe: StreamRecipe
    dim: int
    weights: dict[str, Any] = field(default_factory=dict)


def _load_s3d(model: nn.Module, state: dict, source: str) -> tuple[str, StreamRecipe]:
    layout = detect_s3d_layout(state)
    if layout == "kylemin":
        state = kylemin_to_torchvision(state)
    load_strict(model, state, source=source)
    return layout, S3D_VIDEOBERT.with_normalisation(*S3D_NORMALISATION[layout])


def _plain(layout: str, recipe: StreamRecipe, ignore: tuple[str, ...] = ()) -> Callable:
    def load(model: nn.Module, state: dict, source: str) -> tuple[str, StreamRecipe]:
        load_strict(model, state, ignore_prefixes=ignore, source=source)
        return layout, recipe

    return load


def _build_s3d() -> nn.Module:
    from vlprep.extractors.video.s3d import S3D

    return S3D()


def _build_resnet152() -> nn.Module:
    from vlprep.extractors.video.resnet2d import ResNet152

    return ResNet152()


def _build_resnext() -> nn.Module:
    from vlprep.extractors.video.resnext3d import resnext101_3d

    return resnext101_3d()


def _build_s3dg() -> nn.Module:
    from vlprep.extractors.video.s3dg import S3DG

    return S3DG()


# name -> (architecture, builder, feature dim, recipe for random weights, checkpoint loader)
ARCHITECTURES: dict[str, tuple[str, Callable[[], nn.Module], int, StreamRecipe, Callable]] = {
    "s3d": ("S3D (torchvision topology)", _build_s3d, 1024, S3D_VIDEOBERT, _load_s3d),
    "resnet152": (
        "ResNet-152 (torchvision)",
        _build_resnet152,
        2048,
        RESNET152_2D,
        _plain("torchvision", RESNET152_2D),
    ),
    "resnext101-3d": (
        "3D ResNeXt-101 32x4 shortcut B (Hara et al.)",
        _build_resnext,
        2048,
        RESNEXT101_3D,
        _plain("3d-resnets", RESNEXT101_3D),
    ),
    # the text tower shares the file but not the video features
    "s3dg-howto100m": (
        "S3D-G (MIL-NCE HowTo100M)",
        _build_s3dg,
        1024,
        S3DG_UNIVL,
        _plain("mil-nce", S3DG_UNIVL, ignore=("text_module.",)),
    ),
}


# Random weights only. The last BatchNorm of every residual branch starts at this scale, so that the
# identity path carries the residual stream, as zero-init-residual training starts (Goyal et al. 2017).
# With full-scale branches, the 23 blocks of the 3D ResNeXt's layer3 compound any input-dependent gain:
# on frames unlike the calibration clips the stream grew ~1.3x per block, past fp16's 65504 (NaN under
# fp16 autocast).
RESIDUAL_BRANCH_SCALE = 0.2
# Calibration clips: big enough that the last stage's maps have interior positions (at 64 px they are
# all border, and statistics from borders alone do not carry over to full-size frames).
CALIBRATION_SIZE = 112
CALIBRATION_FRAMES = 8
FP16_MAX = 65504.0


def damp_residual_branches(model: nn.Module, scale: float = RESIDUAL_BRANCH_SCALE) -> int:
    """Set the weight of the last BatchNorm (`bn3`) of every bottleneck block to `scale`; returns how
    many blocks there were."""
    norms = (nn.BatchNorm2d, nn.BatchNorm3d)
    blocks = [m for m in model.modules() if isinstance(getattr(m, "bn3", None), norms)]
    for block in blocks:
        nn.init.constant_(block.bn3.weight, scale)
    return len(blocks)


def calibrate_batchnorm(model: nn.Module, example: torch.Tensor) -> None:
    """Set every BatchNorm's running statistics to those of its input on `example`, layer by layer.

    Randomly initialised deep networks in eval mode (identity BatchNorm) blow activations up or down by
    orders of magnitude per stage; denormal floats then make CPU inference many times slower and the
    features degenerate. Calibrated random weights keep activations near unit scale, so demo and test
    features are well-conditioned numbers (still meaningless)."""

    def set_stats(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        x = inputs[0]
        dims = [0, *range(2, x.ndim)]
        module.running_mean.copy_(x.mean(dim=dims))
        var = x.var(dim=dims, unbiased=False)
        # a channel nearly constant on the example would be scaled up without bound on other input
        module.running_var.copy_(torch.maximum(var, 0.1 * var.median()) + module.eps)

    norms = (nn.BatchNorm2d, nn.BatchNorm3d)
    hooks = [m.register_forward_pre_hook(set_stats) for m in model.modules() if isinstance(m, norms)]
    try:
        with torch.no_grad():
            model.eval().forward_features(example)
    finally:
        for h in hooks:
            h.remove()


def calibration_pixels(recipe: StreamRecipe, seed: int) -> torch.Tensor:
    """Float pixels in [0, 255], [5, 3, T, S, S] (T = 1 for a per-frame recipe): two smooth random
    clips (like frames), white noise, a flat random colour and black (the padding of a tail clip).
    The spread matters: statistics from one kind of clip send the others' activations far off scale."""
    gen = torch.Generator().manual_seed(seed)
    t, size = (1 if recipe.is_2d else CALIBRATION_FRAMES), CALIBRATION_SIZE
    shape = (t, size, size)
    coarse = torch.rand((2, 3, max(1, t // 2), 6, 6), generator=gen)
    smooth = torch.nn.functional.interpolate(coarse, size=shape, mode="trilinear") * 255
    smooth = smooth + 8 * torch.randn(smooth.shape, generator=gen)
    noise = torch.rand((1, 3, *shape), generator=gen) * 255
    flat = (torch.rand((1, 3, 1, 1, 1), generator=gen) * 255).expand(1, 3, *shape)
    black = torch.zeros((1, 3, *shape))
    return torch.cat([smooth, noise, flat, black]).clamp(0, 255)


def _calibration_input(recipe: StreamRecipe, seed: int) -> torch.Tensor:
    """`calibration_pixels` normalised as the recipe will normalise real frames."""
    pixels = calibration_pixels(recipe, seed)
    view = (1, 3, 1, 1, 1)
    mean, std = torch.tensor(recipe.mean).view(view), torch.tensor(recipe.std).view(view)
    x = (pixels * recipe.scale - mean) / std
    return x[:, :, 0] if recipe.is_2d else x


def activation_peak(model: nn.Module, x: torch.Tensor) -> tuple[str, float]:
    """The largest |value| any submodule outputs on `x`, and that submodule's name. Under fp16 autocast
    every such tensor is stored in float16, so a peak above FP16_MAX (65504) becomes inf and then NaN."""
    peaks: dict[str, float] = {}

    def record(name: str):
        def hook(module: nn.Module, inputs: tuple, output: Any) -> None:
            if isinstance(output, torch.Tensor) and output.is_floating_point():
                # read now: a following in-place ReLU would overwrite it
                peaks[name] = max(peaks.get(name, 0.0), _abs_max(output))

        return hook

    hooks = [m.register_forward_hook(record(n)) for n, m in model.named_modules() if n]
    try:
        with torch.no_grad():
            out = model.forward_features(x)
    finally:
        for h in hooks:
            h.remove()
    peaks["(features)"] = _abs_max(out)
    name = max(peaks, key=peaks.__getitem__)
    return name, peaks[name]


def _abs_max(x: torch.Tensor) -> float:
    """max |x|, with NaN counted as infinite (max() would skip it)."""
    inf = float("inf")
    return float(x.detach().abs().nan_to_num(nan=inf, posinf=inf).max())


def build_stream(name: str, architecture_key: str, weights: str, seed: int = 0) -> Stream:
    """A network in eval mode: random weights from `seed`, or a checkpoint file read safely and strictly."""
    arch, build, dim, recipe, load = ARCHITECTURES[architecture_key]
    if weights == "random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = build()
        info: dict[str, Any] = {"source": "random", "sha256": "random", "format": "random", "seed": seed}
        damp_residual_branches(model)
        calibrate_batchnorm(model, _calibration_input(recipe, seed))
    else:
        path = os.fspath(weights)
        state = read_state_dict(path)
        with torch.device("meta"):  # the checkpoint supplies every tensor; skip random init
            model = build()
        layout, recipe = load(model, state, os.path.basename(path))
        info = {"source": os.path.basename(path), "sha256": file_sha256(path), "format": layout}
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return Stream(name=name, architecture=arch, model=model, recipe=recipe, dim=dim, weights=info)
