"""Listing inputs (directories, globs, list files, manifests) and YAML job configs."""

from __future__ import annotations

import json

import pytest

from vlprep.pipelines.config import ConfigError, load_config, merge_options
from vlprep.pipelines.inputs import IMAGE_EXTENSIONS, InputError, Item, list_items


@pytest.fixture
def tree(tmp_path):
    for rel in ["a.jpg", "b.PNG", "sub/c.jpeg", "sub/deeper/d.webp", "sub/notes.txt", ".hidden.jpg", "x.mp4"]:
        path = tmp_path / "imgs" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    return tmp_path


def test_directory_is_walked_recursively_by_extension(tree):
    items = list_items([str(tree / "imgs")], IMAGE_EXTENSIONS)
    assert [i.id for i in items] == ["a.jpg", "b.PNG", "sub/c.jpeg", "sub/deeper/d.webp"]
    assert items[2].path == str(tree / "imgs" / "sub" / "c.jpeg")


def test_glob_ids_are_relative_to_its_fixed_prefix(tree):
    items = list_items(str(tree / "imgs" / "sub" / "**" / "*.*"), IMAGE_EXTENSIONS)
    assert {i.id for i in items} == {"c.jpeg", "deeper/d.webp", "notes.txt"}
    with pytest.raises(InputError, match="matches nothing"):
        list_items(str(tree / "nothing*" / "*.jpg"), IMAGE_EXTENSIONS)


def test_list_file_and_manifests(tree):
    (tree / "list.txt").write_text("# comment\nimgs/a.jpg\n\nimgs/sub/c.jpeg\n")
    assert list_items(str(tree / "list.txt"), IMAGE_EXTENSIONS) == [
        Item("imgs/a.jpg", str(tree / "imgs" / "a.jpg")),
        Item("imgs/sub/c.jpeg", str(tree / "imgs" / "sub" / "c.jpeg")),
    ]
    (tree / "m.csv").write_text("id,path\ncoco/1,imgs/a.jpg\n,imgs/b.PNG\n")
    assert [(i.id, i.path) for i in list_items(str(tree / "m.csv"), IMAGE_EXTENSIONS)] == [
        ("coco/1", str(tree / "imgs" / "a.jpg")),
        ("imgs/b.PNG", str(tree / "imgs" / "b.PNG")),
    ]
    rows = [{"id": "v1", "path": str(tree / "imgs" / "x.mp4")}, {"path": "imgs/a.jpg", "caption": "ignored"}]
    (tree / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert [i.id for i in list_items(str(tree / "m.jsonl"), IMAGE_EXTENSIONS)] == ["v1", "imgs/a.jpg"]
    (tree / "bad.csv").write_text("file\nx\n")
    with pytest.raises(InputError, match="'path' column"):
        list_items(str(tree / "bad.csv"), IMAGE_EXTENSIONS)
    (tree / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(InputError, match="bad.jsonl:1"):
        list_items(str(tree / "bad.jsonl"), IMAGE_EXTENSIONS)


def test_duplicate_ids_are_refused_and_repeats_dropped(tree):
    other = tree / "other"
    other.mkdir()
    (other / "a.jpg").write_bytes(b"y")
    with pytest.raises(InputError, match="duplicate ids.*'a.jpg'"):
        list_items([str(tree / "imgs"), str(other)], IMAGE_EXTENSIONS)
    twice = list_items([str(tree / "imgs"), str(tree / "imgs")], IMAGE_EXTENSIONS)
    assert len(twice) == 4
    with pytest.raises(InputError, match="no such file"):
        list_items([str(tree / "missing")], IMAGE_EXTENSIONS)


def test_config_keys_and_precedence(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("cpus-per-worker: 0.5\nbatch_size: 4\n--workers: 3\n")
    config = load_config(path, known=["cpus_per_worker", "batch_size", "workers"])
    assert config == {"cpus_per_worker": 0.5, "batch_size": 4, "workers": 3}
    merged = merge_options(
        config, {"cpus_per_worker": 1.0, "batch_size": 8, "workers": 1}, given=["batch_size"]
    )
    assert merged == {"cpus_per_worker": 0.5, "batch_size": 8, "workers": 3}
    path.write_text("bach_size: 4\n")
    with pytest.raises(ConfigError, match="bach_size"):
        load_config(path, known=["batch_size"])
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(path)


def test_cli_usage_errors_exit_2(tmp_path):
    from click.testing import CliRunner

    from vlprep.cli import cli

    runner = CliRunner()
    base = ["regions", "--weights", "random", "--out", str(tmp_path / "s")]
    assert runner.invoke(cli, base).exit_code == 2  # no INPUT
    assert runner.invoke(cli, [*base, str(tmp_path / "missing")]).exit_code == 2
    assert runner.invoke(cli, [*base, str(tmp_path), "--boxes", "9-3"]).exit_code == 2
    assert runner.invoke(cli, [*base, str(tmp_path), "--policy", "given"]).exit_code == 2
    (tmp_path / "job.yaml").write_text("no_such_option: 1\n")
    result = runner.invoke(cli, [*base, str(tmp_path), "--config", str(tmp_path / "job.yaml")])
    assert result.exit_code == 2 and "no_such_option" in result.output
