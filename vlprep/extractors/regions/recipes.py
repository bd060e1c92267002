"""Region recipes: named `RegionConfig` values that reproduce a published feature set end to end, each
value with its source. `vlprep regions --recipe NAME` starts from one (default `butd-caffe`); explicit
options override single values, and the store records the recipe's name and the effective config.

The weights are not part of a recipe (vlprep downloads nothing): each recipe names the checkpoint its
reference used, see docs/weights.md. Sources are the reference code read for reference/regions.md:
peteanderson80/bottom-up-attention @514e561, airsplay/py-bottom-up-attention @85ec9b7,
MILVLG/bottom-up-attention.pytorch @4dbce86, Hugging Face transformers-research-projects lxmert/.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .config import AIRSPLAY_NMS_THRESHOLDS, RegionConfig


@dataclass(frozen=True)
class RegionRecipe:
    name: str
    reference: str  # repository and file of the code it reproduces
    reproduces: str  # the published features
    checkpoint: str  # the weights that code used
    config: RegionConfig

    def to_dict(self) -> dict[str, Any]:
        recipe = self.config.numbers()
        # the weights are the user's; the other policy's thresholds do not apply
        unused = ("nms_thresholds",) if self.config.policy == "caffe" else ("score_threshold", "class_nms")
        for key in ("weights", "weights_format", "seed", "vocab", "recipe", *unused):
            recipe.pop(key)
        return {
            "name": self.name,
            "reference": self.reference,
            "reproduces": self.reproduces,
            "checkpoint": self.checkpoint,
            "parameters": recipe,
        }


def _caffe(name: str, boxes: tuple[int, int]) -> RegionConfig:
    return RegionConfig(
        policy="caffe",  # generate_tsv.py get_detections_from_im: per-class NMS over the proposals
        boxes=boxes,  # generate_tsv.py MIN_BOXES / MAX_BOXES (10 / 100; README: 36 / 36 for the 36-box files)
        score_threshold=0.2,  # get_detections_from_im(conf_thresh=0.2)
        class_nms=0.3,  # lib/fast_rcnn/config.py TEST.NMS
        min_size=600,  # config.py TEST.SCALES (600,)
        max_size=1000,  # config.py TEST.MAX_SIZE
        resize="caffe",  # lib/utils/blob.py prep_im_for_blob: cv2.resize(fx=fy=scale, INTER_LINEAR)
        channel_order="bgr",  # cv2.imread, PIXEL_MEANS in BGR
        rpn_pre_nms=6000,  # config.py TEST.RPN_PRE_NMS_TOP_N
        rpn_post_nms=300,  # config.py TEST.RPN_POST_NMS_TOP_N
        rpn_nms=0.7,  # config.py TEST.RPN_NMS_THRESH
        rpn_min_size=16.0,  # config.py TEST.RPN_MIN_SIZE (times the image scale)
        rpn_order="caffe",  # lib/rpn/proposal_layer.py: clip, drop small, sort, top 6000, NMS, top 300
        recipe=name,
    )


def _maxnms(name: str, **values: Any) -> RegionConfig:
    return RegionConfig(
        policy="maxnms",  # class-agnostic NMS over each proposal's best-class regressed box
        rpn_pre_nms=6000,  # Base-RCNN-C4.yaml PRE_NMS_TOPK_TEST
        rpn_post_nms=300,  # POST_NMS_TOPK_TEST 300 (set by the script / the HF config)
        rpn_nms=0.7,  # RPN.NMS_THRESH 0.7
        rpn_min_size=0.0,  # detectron2 PROPOSAL_GENERATOR.MIN_SIZE 0
        rpn_order="d2",  # detectron2 find_top_rpn_proposals: top-k logits before clipping
        channel_order="bgr",  # detectron2 INPUT.FORMAT BGR; HF's URL path (its local-file path feeds RGB)
        recipe=name,
        **values,
    )


RECIPES: dict[str, RegionRecipe] = {
    r.name: r
    for r in (
        RegionRecipe(
            name="butd-caffe",
            reference="peteanderson80/bottom-up-attention tools/generate_tsv.py",
            reproduces="the adaptive 10-100 box features (VQA, captioning; README default)",
            checkpoint="resnet101_faster_rcnn_final (faster_rcnn_from_caffe_attr_original.pkl, "
            "bua-caffe-frcn-r101-k10-100.pth)",
            config=_caffe("butd-caffe", (10, 100)),
        ),
        RegionRecipe(
            name="butd-caffe-36",
            reference="peteanderson80/bottom-up-attention tools/generate_tsv.py (MIN_BOXES = MAX_BOXES = 36)",
            reproduces="the 36-box features: LXMERT's train2014_obj36.tsv etc. (airsplay/lxmert README)",
            checkpoint="resnet101_faster_rcnn_final_iter_320000 (faster_rcnn_from_caffe_attr.pkl, "
            "bua-caffe-frcn-r101-k36.pth)",
            config=_caffe("butd-caffe-36", (36, 36)),
        ),
        RegionRecipe(
            name="butd-caffe-100",
            reference="UNITER scripts/extract_imgfeat.sh -> tools/generate_npz.py (MIN = MAX = 100)",
            reproduces="UNITER's 100-box npz (10-100 chosen by score at load, data.py compute_num_bb)",
            checkpoint="resnet101_faster_rcnn_final (faster_rcnn_from_caffe_attr_original.pkl, "
            "bua-caffe-frcn-r101-k10-100.pth)",
            config=_caffe("butd-caffe-100", (100, 100)),
        ),
        RegionRecipe(
            name="milvlg",
            reference="MILVLG/bottom-up-attention.pytorch extract_features.py (--mode caffe, "
            "configs/caffe/test-caffe-r101.yaml, utils/extract_utils.py save_roi_features)",
            reproduces="MILVLG's npz files (x, bbox, info); the Caffe algorithm in PyTorch",
            checkpoint="bua-caffe-frcn-r101-k10-100.pth (k36 with test-caffe-r101-fix36.yaml: --boxes 36)",
            # bua/caffe/config.py MIN_BOXES 10, MAX_BOXES 100, CONF_THRESH 0.2; the yaml's NMS_THRESH_TEST
            # 0.3, MIN/MAX_SIZE_TEST 600/1000, RPN 6000/300/0.7 min 16; get_image_blob: cv2 INTER_LINEAR
            config=_caffe("milvlg", (10, 100)).replace(plus_one=True),  # BUABoxes: Caffe's +1 widths
        ),
        RegionRecipe(
            name="lxmert",
            reference="huggingface transformers-research-projects lxmert/ (modeling_frcnn.py, "
            "processing_image.py) with the demo's config.yaml (unc-nlp/frcnn-vg-finetuned)",
            reproduces="the Hugging Face LXMERT / VisualBERT demo's 36 regions",
            checkpoint="unc-nlp/frcnn-vg-finetuned pytorch_model.bin",
            config=_maxnms(
                "lxmert",
                boxes=(36, 36),  # config.yaml MIN_DETECTIONS / MAX_DETECTIONS 36
                nms_thresholds=(0.5, 0.6, 0.7),  # config.yaml ROI_HEADS.NMS_THRESH_TEST
                min_size=800,  # config.yaml INPUT.MIN_SIZE_TEST
                max_size=1333,  # config.yaml INPUT.MAX_SIZE_TEST
                resize="hf",  # processing_image.py: float image -> F.interpolate bilinear
            ),
        ),
        RegionRecipe(
            name="airsplay-36",
            reference="airsplay/py-bottom-up-attention demo/detectron2_mscoco_proposal_maxnms.py",
            reproduces="airsplay's detectron2 36-box COCO TSVs (LXMERT field layout)",
            checkpoint="faster_rcnn_from_caffe.pkl (no attribute head: its TSVs hold zero attributes)",
            config=_maxnms(
                "airsplay-36",
                boxes=(36, 36),  # the script's NUM_OBJECTS 36
                nms_thresholds=AIRSPLAY_NMS_THRESHOLDS,  # for nms_thresh in np.arange(0.3, 1.0, 0.1)
                min_size=600,  # cfg.INPUT.MIN_SIZE_TEST = 600
                max_size=1000,  # cfg.INPUT.MAX_SIZE_TEST = 1000
                resize="detectron2",  # detectron2 ResizeShortestEdge: PIL bilinear on uint8
            ),
        ),
    )
}
DEFAULT = "butd-caffe"


def get_recipe(name: str) -> RegionRecipe:
    if name not in RECIPES:
        raise ValueError(f"unknown region recipe {name!r} (expected one of {', '.join(RECIPES)})")
    return RECIPES[name]


def config_from_recipe(name: str | None = None, **overrides: Any) -> RegionConfig:
    """The recipe's config (default `butd-caffe`) with `overrides` (fields; None values are ignored, so
    unset CLI options pass straight through). Changing the policy also resets the proposal order and
    minimum size to that policy's reference unless they are overridden too."""
    recipe = get_recipe(name or DEFAULT)
    given = {k: v for k, v in overrides.items() if v is not None}
    if given.get("policy", recipe.config.policy) != recipe.config.policy:
        # Another policy brings its reference's proposal stage (caffe: Caffe's order and minimum size,
        # maxnms: detectron2's) unless those are given too: the rule of RegionConfig's None values.
        given.setdefault("rpn_order", None)
        given.setdefault("rpn_min_size", None)
    return recipe.config.replace(**given)


def overrides_of(config: RegionConfig) -> dict[str, Any]:
    """The fields of `config` that differ from its recipe's, {field: [recipe value, value]} (runtime
    fields and the weights excluded): what a store records next to the recipe's name."""
    if config.recipe not in RECIPES:
        return {}
    base = RECIPES[config.recipe].config.numbers()
    ignore = ("weights", "weights_format", "seed", "vocab", "recipe")
    return {k: [base[k], v] for k, v in config.numbers().items() if k not in ignore and base.get(k) != v}
