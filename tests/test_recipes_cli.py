"""`vlprep recipes`, and `--recipe` / recipe-value validation of `vlprep regions` and `vlprep video`, all
refused as usage errors before Ray starts or a model loads."""

from __future__ import annotations

import json

from click.testing import CliRunner

from vlprep.cli import cli


def _run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_recipes_lists_every_recipe_with_every_parameter():
    result = _run("recipes", "--json")
    assert result.exit_code == 0, result.output
    table = json.loads(result.stdout)
    assert set(table["regions"]) == {
        "butd-caffe",
        "butd-caffe-36",
        "butd-caffe-100",
        "milvlg",
        "lxmert",
        "airsplay-36",
    }
    assert set(table["video"]) == {"videobert", "howto100m-2d", "howto100m-3d", "howto100m-2d3d", "milnce"}
    lxmert = table["regions"]["lxmert"]
    assert (
        lxmert["parameters"]["nms_thresholds"] == [0.5, 0.6, 0.7] and lxmert["parameters"]["resize"] == "hf"
    )
    assert table["regions"]["butd-caffe"]["default"] and table["video"]["milnce"]["aliases"] == ["univl"]
    text = _run("recipes", "univl", "airsplay-36")
    assert text.exit_code == 0 and "video milnce" in text.output and "regions airsplay-36" in text.output
    assert text.output.strip().endswith("2 recipes (1 regions, 1 video)")
    assert _run("recipes", "lxmrt").exit_code == 2


def test_regions_refuses_bad_recipe_values_before_starting(tmp_path):
    base = ["regions", str(tmp_path), "--out", str(tmp_path / "s"), "--weights", "random"]
    for extra, option in (
        (["--nms-thresholds", "0.7,0.5"], "--nms-thresholds"),
        (["--boxes", "9-3"], "--boxes"),
        (["--recipe", "lxmert", "--min-size", "1400"], "--max-size"),  # lxmert's max is 1333
        (["--recipe", "butd"], "--recipe"),
        (["--resize", "nearest"], "--resize"),
    ):
        result = _run(*base, *extra)
        assert result.exit_code == 2 and option in result.output, (extra, result.output)
    assert not (tmp_path / "s").exists()


def test_video_needs_a_recipe_or_a_model_that_fit(tmp_path):
    base = ["video", str(tmp_path), "--out", str(tmp_path / "s"), "--weights", "random"]
    assert _run(*base).exit_code == 2
    result = _run(*base, "--recipe", "videobert", "--model", "resnet152")
    assert result.exit_code == 2 and "--model" in result.output and "videobert" in result.output
    result = _run(*base, "--model", "s3d", "--keep-streams")
    assert result.exit_code == 2 and "--keep-streams" in result.output
