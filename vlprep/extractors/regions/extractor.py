"""`RegionExtractor`: RGB images in, one bottom-up-attention region record per image out.

The trunk and RPN run per same-size bucket of images (no padding, so an image's proposals and
features never depend on its batch mates); the RoI head (res5, the expensive part) runs on the
regions of all images at once. Free of Ray and of the feature store.
"""

from __future__ import annotations

import copy
import warnings
from collections import defaultdict
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from vlprep.extractors.runtime import torch_device, torch_dtype

from . import box_coder, selection
from .checkpoints import CONVENTIONS, load_weights
from .config import RegionConfig
from .model import MODEL_NAME, VGFasterRCNN
from .preprocessing import PIXEL_MEANS_BGR, PreparedImage, pixels_on_device, plan_cv2, prepare
from .random_weights import random_model
from .roi_heads import POOLER_RESOLUTION
from .rpn import ProposalParams
from .trunk import fold_frozen_batchnorm, use_fused_convs
from .vocab import parse_vocab

RECORD_FIELDS = (
    "features",
    "boxes",
    "object_ids",
    "object_scores",
    "attr_ids",
    "attr_scores",
    "image_h",
    "image_w",
    "num_boxes",
)


class RegionExtractor:
    """Build with `from_config(RegionConfig(...))` (or `from_weights(path, **fields)`); call
    `extract(images)`. Every parameter is a field of `RegionConfig` (config.py), documented there and
    in docs/regions.md; the constructor also takes fields as keywords over `config`."""

    def __init__(
        self,
        model: VGFasterRCNN,
        *,
        weights_info: dict,
        config: RegionConfig | None = None,
        copy_model: bool = True,
        **fields,
    ) -> None:
        config = (config or RegionConfig()).replace(**fields)
        self.config = config
        self.policy = config.policy
        self.min_boxes, self.max_boxes = config.boxes
        self.min_size, self.max_size, self.resize = config.min_size, config.max_size, config.resize
        self.channel_order = config.channel_order
        self.precision = config.precision
        self.device = torch_device(config.device)
        fmt = weights_info["weights_format"]
        self.plus_one = CONVENTIONS[fmt]["plus_one"] if config.plus_one is None else bool(config.plus_one)
        self.rpn = ProposalParams(
            pre_nms=config.rpn_pre_nms,
            post_nms=config.rpn_post_nms,
            nms_threshold=config.rpn_nms,
            min_size=config.effective_rpn_min_size,
            order=config.effective_rpn_order,
            plus_one=self.plus_one,
        )
        self.object_names, self.attribute_names = parse_vocab(config.vocab)
        self.dtype = torch_dtype(config.precision)
        cuda = self.device.type == "cuda"
        self.channels_last = cuda if config.channels_last is None else bool(config.channels_last)
        # res5 activations are ~0.8 MB (fp32) per region and layer: bound the regions in flight.
        self.roi_chunk = int(config.roi_chunk) if config.roi_chunk is not None else (2048 if cuda else 512)
        on_device = config.preprocess_on_device
        self.preprocess_on_device = (cuda and self.resize == "caffe") if on_device is None else on_device
        self.batched_rpn = cuda if config.batched_rpn is None else bool(config.batched_rpn)
        self.tf32 = bool(config.tf32)
        fold_bn = config.fold_bn
        if fold_bn is None:
            fold_bn = bool(config.fused_convs) or cuda or self.dtype != torch.float32
        if config.fused_convs and not fold_bn:
            raise ValueError("fused_convs needs fold_bn")
        self.fold_bn = bool(fold_bn)
        # Accepted on any device: where cuDNN's fused kernels do not run (CPU), the probe in
        # _inference_model declines them with a warning and the plain convolutions run.
        self.fused_convs = bool(config.fused_convs)
        self.model = self._inference_model(model, copy_model)
        self._weights_info = dict(weights_info)

    def _inference_model(self, model: VGFasterRCNN, copy_model: bool) -> VGFasterRCNN:
        """The model as this extractor runs it. Anything that changes the module (folding, casting,
        moving) happens on a copy unless the caller hands the model over (`copy_model=False`), so
        extractors built over one model do not disturb each other."""
        changes = (
            self.fold_bn
            or self.fused_convs
            or self.dtype != torch.float32
            or self.channels_last
            or (next(model.parameters()).device != self.device)
        )
        if not changes:
            return model.eval()
        if copy_model:
            model = copy.deepcopy(model)
        model.eval()
        if self.fold_bn:
            fold_frozen_batchnorm(model)
        model.to(self.device)
        if self.dtype != torch.float32:
            model.to(self.dtype)
            # Anchors stay float32: box arithmetic is float32 whatever the network's precision.
            model.proposal_generator.anchor_generator.cell_anchors.float()
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        if self.fused_convs and not use_fused_convs(model):
            warnings.warn("cuDNN refused the fused convolutions: running them unfused", stacklevel=3)
            self.fused_convs = False
        return model

    # -- construction -------------------------------------------------------------------------------

    @classmethod
    def from_config(cls, config: RegionConfig) -> RegionExtractor:
        """Load `config.weights` (a checkpoint path, formats in checkpoints.py, or "random": a random
        model from `config.seed`) and build the extractor."""
        if config.weights == "random":
            model = random_model(config.seed)
            info = {
                "weights": "random",
                "weights_sha256": "random",
                "weights_format": "random",
                "seed": int(config.seed),
                "anchors": "generated (d2 convention)",
            }
        else:
            model = VGFasterRCNN()
            loaded = load_weights(model, config.weights, config.weights_format)
            origin = (
                "checkpoint"
                if loaded.anchors_from_checkpoint
                else (f"generated ({CONVENTIONS[loaded.format]['anchors']} convention)")
            )
            info = {
                "weights": config.weights,
                "weights_sha256": loaded.sha256,
                "weights_format": loaded.format,
                "anchors": origin,
            }
        # the model was built for this extractor alone: no copy
        return cls(model, weights_info=info, config=config, copy_model=False)

    @classmethod
    def from_weights(cls, weights: str | Path, **fields) -> RegionExtractor:
        """`from_config(RegionConfig(weights=weights, **fields))`."""
        return cls.from_config(RegionConfig(weights=str(weights), **fields))

    @property
    def weights_info(self) -> dict:
        """Where the weights came from (path, sha256, format, anchors): pass it with `model` to build
        another configuration over the same model without reloading."""
        return dict(self._weights_info)

    @property
    def producer(self) -> dict:
        """Everything that decides the numbers, for store.json."""
        anchors = self.model.proposal_generator.anchor_generator.cell_anchors.get()
        producer = {
            "model": MODEL_NAME,
            # every parameter that decides the numbers, then what the weights turned out to be (the
            # resolved format, the sha256); the label names are recorded below, not the vocab path
            **{k: v for k, v in self.config.numbers().items() if k not in ("seed", "vocab")},
            **self._weights_info,
            "boxes": [self.min_boxes, self.max_boxes],
            "resize_on_device": self.preprocess_on_device,
            "color": self.channel_order.upper(),
            "pixel_means_bgr": list(PIXEL_MEANS_BGR),
            "precision": "fp32 (tf32 on CUDA)" if self.tf32 and self.precision == "fp32" else self.precision,
            "box_convention": "caffe (+1, clip to W-1)" if self.plus_one else "detectron2 (clip to W)",
            "cell_anchors": [[round(float(v), 4) for v in row] for row in anchors.tolist()],
            "rpn": {
                "pre_nms": self.rpn.pre_nms,
                "post_nms": self.rpn.post_nms,
                "nms": self.rpn.nms_threshold,
                "min_size": self.rpn.min_size,
                "order": self.rpn.order,
            },
            "pooler": f"RoIPool {POOLER_RESOLUTION}x{POOLER_RESOLUTION} at 1/16",
            "roi_box_weights": list(box_coder.ROI_WEIGHTS),
            "feature": "res5 mean-pooled, 2048-d, of the proposal (pre-regression) box",
        }
        if self.policy == "caffe":
            producer.update(stored_boxes="proposals", attributes="softmax over 401, 'no attribute' dropped")
        elif self.policy == "maxnms":
            producer.update(
                stored_boxes="regressed boxes of the best class",
                attributes="softmax over 400 ('no attribute' excluded)",
            )
        else:
            producer.update(stored_boxes="given", attributes="softmax over 401, 'no attribute' dropped")
        if self.object_names is not None:
            producer["object_names"] = list(self.object_names)
        if self.attribute_names is not None:
            producer["attribute_names"] = list(self.attribute_names)
        return producer

    # -- extraction ---------------------------------------------------------------------------------

    def _network_input(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.dtype)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _check_given(self, given_boxes, n_images: int) -> list[torch.Tensor]:
        if given_boxes is None or len(given_boxes) != n_images:
            raise ValueError(
                "policy 'given' needs given_boxes: one [n, 4] array (x1, y1, x2, y2, original "
                "pixels) per image"
            )
        out = []
        for boxes in given_boxes:
            b = (
                np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
                if np.size(boxes)
                else np.zeros((0, 4), np.float32)
            )
            if not np.all(np.isfinite(b)) or np.any(b[:, 2] < b[:, 0]) or np.any(b[:, 3] < b[:, 1]):
                raise ValueError("given boxes must be finite x1, y1, x2, y2 with x2 >= x1 and y2 >= y1")
            out.append(torch.from_numpy(b).to(self.device))
        return out

    @torch.inference_mode()
    def extract(
        self, images: Sequence[np.ndarray], given_boxes: Sequence[np.ndarray] | None = None
    ) -> list[dict]:
        """One record per image, fields RECORD_FIELDS, regions sorted by object score (given boxes keep
        their order)."""
        if self.policy == "given":
            given = self._check_given(given_boxes, len(images))
        elif given_boxes is not None:
            raise ValueError(f"given_boxes needs policy 'given' (this extractor uses {self.policy!r})")
        if self.preprocess_on_device:
            prepared = [plan_cv2(img, self.min_size, self.max_size) for img in images]
        else:
            prepared = [
                prepare(img, self.min_size, self.max_size, self.resize, self.channel_order) for img in images
            ]
        if not prepared:
            return []
        with self._numerics():
            return self._extract(images, prepared, given if self.policy == "given" else None)

    @contextmanager
    def _numerics(self):
        """On CUDA, fp32 means IEEE fp32 unless `tf32=True`: torch lets cuDNN convolutions use TF32 by
        default (10-bit mantissa), which moves features by ~1e-3 and can flip near-tied proposals.
        The flags are process-wide, so they are set for the duration of the call and restored."""
        if self.device.type != "cuda":
            yield
            return
        saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = self.tf32
        try:
            yield
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved

    def _extract(self, images, prepared: list[PreparedImage], given) -> list[dict]:
        buckets: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, p in enumerate(prepared):
            buckets[p.size].append(i)
        proposals: list[torch.Tensor | None] = [None] * len(prepared)
        pooled, pooled_order = [], []
        for size, members in buckets.items():
            if self.preprocess_on_device:
                x = torch.stack(
                    [
                        pixels_on_device(images[i], prepared[i], self.device, self.channel_order)
                        for i in members
                    ]
                )
            else:
                x = torch.from_numpy(np.stack([prepared[i].pixels for i in members])).to(self.device)
            fmap = self.model.backbone(self._network_input(x))
            if given is not None:
                boxes = [given[i] * given[i].new_tensor(self._net_scale(prepared[i])) for i in members]
            else:
                scales = [prepared[i].scale for i in members]
                boxes = self.model.proposal_generator(fmap, size, scales, self.rpn, self.batched_rpn)
            for j, i in enumerate(members):
                proposals[i] = boxes[j]
            pooled.append(self.model.roi_heads.pool(fmap, boxes))
            pooled_order.extend(members)
            del fmap
        counts = [len(p) for p in proposals]
        regions = torch.cat(pooled) if len(pooled) > 1 else pooled[0]
        del pooled
        if pooled_order != sorted(pooled_order):  # buckets interleave: back to image order
            starts = np.cumsum([0] + [counts[i] for i in pooled_order])
            where = {i: (starts[k], starts[k + 1]) for k, i in enumerate(pooled_order)}
            regions = torch.cat([regions[where[i][0] : where[i][1]] for i in range(len(prepared))])
        if self.channels_last:
            regions = regions.contiguous(memory_format=torch.channels_last)
        heads = self.model.roi_heads
        features = heads.region_features(regions, self.roi_chunk)
        del regions
        logits = heads.box_predictor.class_logits(features)
        keeps = self._select(prepared, proposals, counts, features, logits)
        return self._records(prepared, counts, features, logits, keeps)

    @staticmethod
    def _net_scale(p: PreparedImage) -> tuple[float, float, float, float]:
        return (p.scale_x, p.scale_y, p.scale_x, p.scale_y)

    def _to_original(self, boxes: torch.Tensor, p: PreparedImage) -> torch.Tensor:
        return boxes.float() / boxes.new_tensor(self._net_scale(p), dtype=torch.float32)

    def _select(
        self, prepared, proposals, counts, features, logits
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(kept indices, their boxes in original pixels) per image."""
        if self.policy == "given":
            return [
                (torch.arange(len(b), device=self.device), self._to_original(b, p))
                for b, p in zip(proposals, prepared)
            ]
        if self.policy == "caffe":
            # The reference runs its class NMS on proposals already divided by the image scale.
            boxes = [self._to_original(b, p) for b, p in zip(proposals, prepared)]
            scores = torch.softmax(logits.float(), dim=1)[:, :-1]
            pad = torch.nn.utils.rnn.pad_sequence
            max_conf = selection.per_class_max_conf_padded(
                pad(boxes, batch_first=True),
                pad(list(scores.split(counts)), batch_first=True),
                torch.tensor(counts, device=scores.device),
                self.config.class_nms,
                self.plus_one,
            )
            keeps = selection.caffe_keep_padded(
                max_conf, counts, self.min_boxes, self.max_boxes, self.config.score_threshold
            )
            # Rounding of the network size can put a proposal's edge a fraction of a pixel outside the
            # original image once scaled back; the stored box is clipped (the class NMS above was not).
            return [
                (k, box_coder.clip(b[k], p.image_h, p.image_w, self.plus_one))
                for k, b, p in zip(keeps, boxes, prepared)
            ]
        out = []
        for b, p, feat, lg in zip(proposals, prepared, features.split(counts), logits.split(counts)):
            fg = torch.softmax(lg.float(), dim=1)[:, :-1]
            scores, classes = fg.max(dim=1)
            deltas = self.model.roi_heads.box_predictor.class_deltas(feat, classes).float()
            regressed = box_coder.decode(deltas, b, box_coder.ROI_WEIGHTS, plus_one=self.plus_one)
            regressed = box_coder.clip(regressed, *p.size, plus_one=self.plus_one)
            keep = selection.maxnms_keep(
                regressed,
                scores,
                self.min_boxes,
                self.max_boxes,
                self.config.nms_thresholds,
                plus_one=self.plus_one,
            )
            original = box_coder.clip(
                self._to_original(regressed[keep], p), p.image_h, p.image_w, self.plus_one
            )
            out.append((keep, original))
        return out

    def _records(
        self,
        prepared: list[PreparedImage],
        counts: list[int],
        features: torch.Tensor,
        logits: torch.Tensor,
        keeps: list[tuple[torch.Tensor, torch.Tensor]],
    ) -> list[dict]:
        """Scores, attributes and the per-image sort for all kept regions of the batch at once, then one
        device-to-host copy per field (per-image copies would each wait for the device)."""
        starts = np.cumsum([0] + counts[:-1])
        kept = [len(k) for k, _ in keeps]
        index = torch.cat([k + int(start) for (k, _), start in zip(keeps, starts)]).long()
        boxes = torch.cat([b.float() for _, b in keeps])
        features, logits = features[index], logits[index]
        fg = torch.softmax(logits.float(), dim=1)[:, :-1]
        object_scores, object_ids = fg.max(dim=1) if len(fg) else (fg.new_zeros(0), index.new_zeros(0))
        predictor = self.model.roi_heads.box_predictor
        if self.device.type == "cpu" and len(kept) > 1:
            # CPU BLAS rounds a row differently with the matrix's row count: per image, a record's
            # attribute scores do not depend on its batch mates (and cost no extra sync on CPU).
            attr_logits = torch.cat(
                [predictor.attribute_logits(f, lg) for f, lg in zip(features.split(kept), logits.split(kept))]
            ).float()
        else:
            attr_logits = predictor.attribute_logits(features, logits).float()
        if self.policy == "maxnms":
            attr = torch.softmax(attr_logits[:, :-1], dim=1)
        else:
            attr = torch.softmax(attr_logits, dim=1)[:, :-1]
        attr_scores, attr_ids = attr.max(dim=1) if len(attr) else (attr.new_zeros(0), index.new_zeros(0))
        if self.policy != "given" and len(index):
            # Per image by descending score, ties in selection order: a stable sort by score, then a
            # stable sort by image.
            image = torch.repeat_interleave(
                torch.arange(len(kept), device=index.device), torch.tensor(kept, device=index.device)
            )
            order = object_scores.sort(descending=True, stable=True).indices
            order = order[image[order].sort(stable=True).indices]
            features, boxes, object_ids, object_scores = (
                features[order],
                boxes[order],
                object_ids[order],
                object_scores[order],
            )
            attr_ids, attr_scores = attr_ids[order], attr_scores[order]

        def host(t: torch.Tensor, dtype) -> list[np.ndarray]:
            return np.split(t.detach().to(dtype).cpu().numpy(), np.cumsum(kept)[:-1])

        fields = {
            "features": host(features, torch.float32),
            "boxes": host(boxes, torch.float32),
            "object_ids": host(object_ids, torch.int64),
            "object_scores": host(object_scores, torch.float32),
            "attr_ids": host(attr_ids, torch.int64),
            "attr_scores": host(attr_scores, torch.float32),
        }
        return [
            {
                **{name: values[i] for name, values in fields.items()},
                "image_h": int(p.image_h),
                "image_w": int(p.image_w),
                "num_boxes": kept[i],
            }
            for i, p in enumerate(prepared)
        ]
