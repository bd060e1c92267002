"""Deterministic random weights (`--weights random`) for tests and the demo.

Plain random convolutions through 101 layers of frozen batch norm either explode or vanish, which
would make every proposal and score degenerate. So after drawing the weights from a seeded generator,
each frozen batch norm gets the running statistics of its own input on a fixed synthetic image
(a one-pass, data-dependent initialisation). The numbers stay meaningless, but they are finite,
varied and reproducible for a given seed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

from .model import VGFasterRCNN

CALIBRATION_SIZE = (128, 160)
CALIBRATION_REGIONS = 4


def _synthetic_image(gen: torch.Generator, height: int, width: int) -> torch.Tensor:
    """A smooth, structured, mean-subtracted BGR-like image [1, 3, H, W] with a pixel std of ~50."""
    coarse = torch.randn(1, 3, height // 16 + 1, width // 16 + 1, generator=gen)
    img = F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    img = img + 0.3 * torch.randn(1, 3, height, width, generator=gen)
    return img * 50.0


def _calibrate(model: VGFasterRCNN, gen: torch.Generator) -> None:
    def set_stats(module: FrozenBatchNorm2d, args: tuple) -> None:
        x = args[0].detach()
        module.running_mean.copy_(x.mean(dim=(0, 2, 3)))
        module.running_var.copy_(x.var(dim=(0, 2, 3), unbiased=False))

    norms = [m for m in model.modules() if isinstance(m, FrozenBatchNorm2d)]
    hooks = [m.register_forward_pre_hook(set_stats) for m in norms]
    try:
        with torch.no_grad():
            h, w = CALIBRATION_SIZE
            features = model.backbone(_synthetic_image(gen, h, w))
            xy = torch.rand(CALIBRATION_REGIONS, 2, generator=gen) * torch.tensor([w * 0.6, h * 0.6])
            wh = 24 + torch.rand(CALIBRATION_REGIONS, 2, generator=gen) * torch.tensor([w * 0.4, h * 0.4])
            boxes = torch.cat([xy, xy + wh], dim=1)
            pooled = model.roi_heads.pool(features, boxes)
            region = model.roi_heads.region_features(pooled)
    finally:
        for hook in hooks:
            hook.remove()
    # Centre and scale the classifiers on the calibration regions: pooled post-ReLU features share a
    # large common component, which would otherwise give every region the same argmax class.
    predictor = model.roi_heads.box_predictor
    with torch.no_grad():
        _centre_and_scale(predictor.cls_score, predictor.class_logits(region))
        logits = predictor.class_logits(region)
        _centre_and_scale(predictor.attr_score, predictor.attribute_logits(region, logits))


def _centre_and_scale(layer: nn.Linear, outputs: torch.Tensor, spread: float = 1.0) -> None:
    mean = outputs.mean(dim=0)
    factor = spread / (outputs - mean).std().clamp(min=1e-6)
    layer.weight.mul_(factor)
    layer.bias.copy_((layer.bias - mean) * factor)


def random_model(seed: int = 0) -> VGFasterRCNN:
    """A VGFasterRCNN with reproducible random weights (detectron2 anchor convention)."""
    gen = torch.Generator().manual_seed(seed)
    model = VGFasterRCNN(anchor_convention="d2")
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, nn.Conv2d):
                fan_in = module.in_channels * module.kernel_size[0] * module.kernel_size[1]
                std = 0.01 if name.startswith("proposal_generator") else math.sqrt(2.0 / fan_in)
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen) * std)
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.Linear):
                std = 1.0 / math.sqrt(module.in_features)
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen) * std)
                module.bias.zero_()
            elif isinstance(module, nn.Embedding):
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen))
        # The last conv of each residual branch starts small so 23 stacked blocks stay well scaled.
        for module in model.modules():
            if hasattr(module, "conv3") and hasattr(module.conv3, "norm"):
                module.conv3.norm.weight.fill_(0.2)
        model.eval()
        _calibrate(model, gen)
    return model
