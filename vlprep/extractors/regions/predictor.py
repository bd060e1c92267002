"""Class, box and attribute heads on the 2048-d pooled region feature (detectron2/airsplay names).

Index conventions of this model (the detectron2 layout; a MILVLG checkpoint is converted into it):
background is the LAST of the 1601 classes, `bbox_pred` has 4 rows per foreground class only, and
"no attribute" is the LAST of the 401 attributes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .vocab import NUM_ATTRIBUTES, NUM_CLASSES

FEATURE_DIM = 2048
CLASS_EMBED_DIM = 256
ATTR_HIDDEN = 512


class BoxPredictor(nn.Module):
    def __init__(self, num_classes: int = NUM_CLASSES, num_attributes: int = NUM_ATTRIBUTES) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_attributes = num_attributes
        self.cls_score = nn.Linear(FEATURE_DIM, num_classes + 1)
        self.bbox_pred = nn.Linear(FEATURE_DIM, num_classes * 4)
        self.cls_embedding = nn.Embedding(num_classes + 1, CLASS_EMBED_DIM)
        self.fc_attr = nn.Linear(FEATURE_DIM + CLASS_EMBED_DIM, ATTR_HIDDEN)
        self.attr_score = nn.Linear(ATTR_HIDDEN, num_attributes + 1)

    def class_logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.cls_score(features)

    def class_deltas(self, features: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """Box deltas [N, 4] of one foreground class per region. Only the 4 needed rows of the
        6400-row layer are applied: the full product would cost ~4 GFLOP per image for nothing."""
        rows = classes[:, None] * 4 + torch.arange(4, device=classes.device)
        weight = self.bbox_pred.weight[rows]  # [N, 4, 2048]
        bias = self.bbox_pred.bias[rows]  # [N, 4]
        return torch.einsum("nkd,nd->nk", weight, features) + bias

    def attribute_logits(self, features: torch.Tensor, class_logits: torch.Tensor) -> torch.Tensor:
        """The Caffe attribute branch: embed the argmax class (over all 1601, background included),
        concatenate to the feature, 2304 -> 512 -> ReLU -> 401."""
        embedded = self.cls_embedding(class_logits.argmax(dim=1))
        hidden = F.relu(self.fc_attr(torch.cat([features, embedded.to(features.dtype)], dim=1)))
        return self.attr_score(hidden)
