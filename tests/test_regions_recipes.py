"""RegionConfig (one parameter set, validated in one place) and the region recipes, each table pinned:
changing a recipe's value must change this file too, a deliberate and reviewed change."""

from __future__ import annotations

import numpy as np
import pytest

from vlprep.extractors.regions.config import (
    AIRSPLAY_NMS_THRESHOLDS,
    ConfigValueError,
    RegionConfig,
    parse_boxes,
)
from vlprep.extractors.regions.recipes import DEFAULT, RECIPES, config_from_recipe, overrides_of

CAFFE = {
    "policy": "caffe",
    "score_threshold": 0.2,
    "class_nms": 0.3,
    "min_size": 600,
    "max_size": 1000,
    "resize": "caffe",
    "channel_order": "bgr",
    "rpn_pre_nms": 6000,
    "rpn_post_nms": 300,
    "rpn_nms": 0.7,
    "rpn_min_size": 16.0,
    "rpn_order": "caffe",
    "plus_one": None,
    "precision": "fp32",
    "tf32": False,
}
MAXNMS = {
    "policy": "maxnms",
    "boxes": [36, 36],
    "channel_order": "bgr",
    "rpn_pre_nms": 6000,
    "rpn_post_nms": 300,
    "rpn_nms": 0.7,
    "rpn_min_size": 0.0,
    "rpn_order": "d2",
    "plus_one": None,
    "precision": "fp32",
    "tf32": False,
}
PINNED = {
    "butd-caffe": {**CAFFE, "boxes": [10, 100]},
    "butd-caffe-36": {**CAFFE, "boxes": [36, 36]},
    "butd-caffe-100": {**CAFFE, "boxes": [100, 100]},
    "milvlg": {**CAFFE, "boxes": [10, 100], "plus_one": True},
    "lxmert": {
        **MAXNMS,
        "nms_thresholds": [0.5, 0.6, 0.7],
        "min_size": 800,
        "max_size": 1333,
        "resize": "hf",
    },
    "airsplay-36": {
        **MAXNMS,
        "nms_thresholds": list(AIRSPLAY_NMS_THRESHOLDS),
        "min_size": 600,
        "max_size": 1000,
        "resize": "detectron2",
    },
}


@pytest.mark.parametrize("name", list(PINNED))
def test_recipe_tables_are_pinned(name):
    recipe = RECIPES[name].to_dict()
    assert recipe["parameters"] == PINNED[name]
    assert recipe["reference"] and recipe["reproduces"] and recipe["checkpoint"]
    assert RECIPES[name].config.recipe == name


def test_every_recipe_is_pinned_and_the_default_is_butd_caffe():
    assert set(RECIPES) == set(PINNED)
    assert DEFAULT == "butd-caffe"
    # a bare RegionConfig is the default recipe's values (the CLI and the library agree)
    assert RegionConfig().replace(recipe="butd-caffe").numbers() == RECIPES[DEFAULT].config.numbers() | {
        "rpn_min_size": None,
        "rpn_order": None,
    }


def test_airsplay_thresholds_are_its_arange_value_for_value():
    assert tuple(float(t) for t in np.arange(0.3, 1.0, 0.1)) == AIRSPLAY_NMS_THRESHOLDS


def test_config_round_trips_and_validates_in_one_place():
    config = config_from_recipe("lxmert", weights="x.bin", boxes="10-20", device="cpu")
    assert RegionConfig.from_dict(config.to_dict()) == config
    assert RegionConfig.from_dict({"min-size": 700, "boxes": 36}).min_size == 700
    assert config.boxes == (10, 20) and config.recipe == "lxmert"
    assert overrides_of(config) == {"boxes": [[36, 36], [10, 20]]}  # device is not a number-maker
    # another policy brings its own proposal stage unless that is given too
    switched = config_from_recipe(policy="maxnms")
    assert (switched.effective_rpn_order, switched.effective_rpn_min_size) == ("d2", 0.0)
    assert config_from_recipe(policy="maxnms", rpn_order="caffe").effective_rpn_min_size == 16.0
    assert RegionConfig(resize="cv2").resize == "caffe" and RegionConfig(resize="pil").resize == "detectron2"
    bad = [
        ("policy", {"policy": "best"}),
        ("resize", {"resize": "nearest"}),
        ("nms_thresholds", {"nms_thresholds": "0.7,0.5"}),
        ("max_size", {"min_size": 800, "max_size": 600}),
        ("weights_format", {"weights_format": "caffe"}),
        ("weights_format", {"weights": "x.pkl", "weights_format": "random"}),
        ("weights_format", {"weights": "random", "weights_format": "d2"}),
        ("precision", {"precision": "fp8"}),
        ("channel_order", {"channel_order": "rbg"}),
        ("boxes", {"boxes": "9-3"}),
        ("preprocess_on_device", {"resize": "hf", "preprocess_on_device": True}),
    ]
    for field, values in bad:
        with pytest.raises(ConfigValueError) as err:
            RegionConfig(**values)
        assert err.value.field == field, values
    with pytest.raises(ConfigValueError, match="unknown region parameter"):
        RegionConfig.from_dict({"min_szie": 3})
    assert RegionConfig(nms_thresholds="[0.5, 0.6]").nms_thresholds == (0.5, 0.6)  # as YAML lists arrive


def test_parse_boxes_one_grammar():
    assert parse_boxes(36) == parse_boxes("36") == (36, 36)
    assert parse_boxes("10-100") == parse_boxes("10,100") == parse_boxes((10, 100)) == (10, 100)
    for bad in ("0", "100-10", "x", "1-2-3", "a-b", True):
        with pytest.raises(ValueError):
            parse_boxes(bad)
