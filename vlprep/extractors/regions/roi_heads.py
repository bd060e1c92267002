"""RoI head: RoIPool 14x14 at 1/16 on res4, res5 (stride 1, dilation 2), mean pool -> 2048-d."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import roi_pool

from .predictor import BoxPredictor
from .trunk import make_res5_head

POOLER_RESOLUTION = 14
POOLER_SCALE = 1.0 / 16


class Res5ROIHeads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.res5 = make_res5_head()
        self.box_predictor = BoxPredictor()

    def pool(
        self, feature_map: torch.Tensor, boxes: torch.Tensor | list[torch.Tensor], group: int = 2048
    ) -> torch.Tensor:
        """Pool the regions of a same-size batch. `feature_map` is [B, C, H, W]; `boxes` one [R_i, 4]
        tensor per image (or one tensor for B = 1) in network-input pixels; the result is
        [sum R_i, C, 14, 14] in image order. torchvision's RoIPool is Caffe's ROIPooling (rounded bins,
        +1 sizes), as detectron2's "ROIPool" is; each region is pooled on its own image only.
        Images go through RoIPool together up to about `group` regions (its float32 output and
        argmax are 1.6 kB per region and channel row, so this bounds memory, not speed)."""
        if isinstance(boxes, torch.Tensor):
            boxes = [boxes]
        out, start = [], 0
        while start < len(boxes):
            stop, regions = start + 1, len(boxes[start])
            while stop < len(boxes) and regions + len(boxes[stop]) <= group:
                regions += len(boxes[stop])
                stop += 1
            out.append(self._pool(feature_map[start:stop], boxes[start:stop]))
            start = stop
        return out[0] if len(out) == 1 else torch.cat(out)

    @staticmethod
    def _pool(feature_map: torch.Tensor, boxes: list[torch.Tensor]) -> torch.Tensor:
        dtype = feature_map.dtype
        # Pool in float32 whatever the network's precision: box coordinates in float16 are 0.5 px
        # coarse at 1000 px (enough to move a bin edge), torchvision has no bfloat16 RoIPool kernel,
        # and max pooling commutes with rounding the result back.
        feature_map = feature_map.float()
        rois = torch.cat(
            [
                torch.cat([b.new_full((len(b), 1), float(i)).float(), b.float()], dim=1)
                for i, b in enumerate(boxes)
            ]
        )
        pooled = roi_pool(feature_map, rois, (POOLER_RESOLUTION, POOLER_RESOLUTION), POOLER_SCALE)
        return pooled.to(dtype)

    def region_features(self, pooled: torch.Tensor, chunk: int = 0) -> torch.Tensor:
        """res5 + spatial mean, [R, 2048]. `chunk` bounds the regions in flight (memory), 0 = all."""
        if chunk <= 0 or len(pooled) <= chunk:
            return self.res5(pooled).mean(dim=(2, 3))
        return torch.cat([self.res5(part).mean(dim=(2, 3)) for part in pooled.split(chunk)])
