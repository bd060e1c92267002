"""The video recipes, each table pinned (a changed value must change this file: a reviewed change), and
VideoConfig's resolution of recipe and model."""

from __future__ import annotations

import pytest

from vlprep.extractors.video.config import ConfigValueError, VideoConfig, video_config
from vlprep.extractors.video.recipes import ALIASES, MODEL_DEFAULTS, RECIPES

IMAGENET = {"scale": 1 / 255, "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
TWO_D = {"fps": 1.0, "clip_len": 1, "stride": 1, "size": 224, "crop": None, "tail": "pad", **IMAGENET}
# antoine77340/video_feature_extractor preprocessing.py: 0-255, minus [110.6, 103.2, 96.3], std 1
THREE_D = {
    "fps": 24.0,
    "clip_len": 16,
    "stride": 16,
    "size": 112,
    "crop": 112,
    "tail": "pad",
    "scale": 1.0,
    "mean": (110.6, 103.2, 96.3),
    "std": (1.0, 1.0, 1.0),
}
PINNED = {
    "videobert": (
        "s3d",
        "floor",
        {
            "s3d": {
                "fps": 20.0,
                "clip_len": 30,
                "stride": 30,
                "size": 224,
                "crop": 224,
                "tail": "pad",
                "scale": 1 / 255,
                "mean": (0.43216, 0.394666, 0.37645),
                "std": (0.22803, 0.22145, 0.216989),
            }
        },
    ),
    "howto100m-2d": ("resnet152", "ffmpeg-fps", {"2d": TWO_D}),
    "howto100m-3d": ("resnext101-3d", "ffmpeg-fps", {"3d": THREE_D}),
    "howto100m-2d3d": ("2d3d", "ffmpeg-fps", {"2d": TWO_D, "3d": THREE_D}),
    "milnce": (
        "s3dg-howto100m",
        "ffmpeg-fps",
        {
            "s3dg": {
                "fps": 16.0,
                "clip_len": 16,
                "stride": 16,
                "size": 224,
                "crop": 224,
                "tail": "pad",
                "scale": 1 / 255,
                "mean": (0.0, 0.0, 0.0),
                "std": (1.0, 1.0, 1.0),
            }
        },
    ),
}


@pytest.mark.parametrize("name", list(PINNED))
def test_recipe_tables_are_pinned(name):
    model, sampling, streams = PINNED[name]
    params = RECIPES[name].to_dict()["parameters"]
    assert (params["model"], params["sampling"]) == (model, sampling)
    got = {s: {k: v for k, v in r.items() if k != "reference"} for s, r in params["streams"].items()}
    assert got == streams
    assert RECIPES[name].reference and RECIPES[name].reproduces and RECIPES[name].checkpoint


def test_every_recipe_pinned_and_each_model_has_one():
    assert set(RECIPES) == set(PINNED)
    assert MODEL_DEFAULTS == {
        "s3d": "videobert",
        "resnet152": "howto100m-2d",
        "resnext101-3d": "howto100m-3d",
        "2d3d": "howto100m-2d3d",
        "s3dg-howto100m": "milnce",
    }
    assert ALIASES == {"univl": "milnce"}


def test_video_config_resolution():
    assert video_config(model="resnet152").recipe == "howto100m-2d"
    assert video_config(recipe="univl").model == "s3dg-howto100m"
    config = video_config("howto100m-2d3d", sampling="floor", keep_streams=True, device=None)
    assert config.overrides() == {"sampling": ["ffmpeg-fps", "floor"]} and config.model == "2d3d"
    assert VideoConfig.from_dict(config.to_dict()) == config
    for kwargs, field in (
        ({"recipe": "videobert", "model": "resnet152"}, "model"),
        ({"recipe": "howto100m"}, "recipe"),
        ({"model": "s3d", "sampling": "nearest"}, "sampling"),
        ({"model": "s3d", "keep_streams": True}, "keep_streams"),
        ({"model": "s3d", "batch_size": 0}, "batch_size"),
        ({}, "recipe"),
    ):
        with pytest.raises(ConfigValueError) as err:
            video_config(**kwargs)
        assert err.value.field == field, kwargs
