"""The bottom-up-attention Faster R-CNN as one module tree with detectron2's parameter names, so a
detectron2-format state dict loads with a strict `load_state_dict`."""

from __future__ import annotations

from torch import nn

from .roi_heads import Res5ROIHeads
from .rpn import ProposalGenerator
from .trunk import ResNetC4

MODEL_NAME = "bottom-up-attention Faster R-CNN R101-C4 VG (1600 objects, 400 attributes)"
ANCHORS_KEY = "proposal_generator.anchor_generator.cell_anchors.0"


class VGFasterRCNN(nn.Module):
    def __init__(self, anchor_convention: str = "d2") -> None:
        super().__init__()
        self.backbone = ResNetC4()
        self.proposal_generator = ProposalGenerator(anchor_convention)
        self.roi_heads = Res5ROIHeads()
