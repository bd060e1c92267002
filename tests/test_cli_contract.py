"""What a first-time user meets: every failure is one line with exit 2 (usage) or 1 (data), checked
before Ray or a model starts, nothing left behind; stdout holds only results; conventions (`python -m
vlprep`, did-you-mean, --config/--print-config, -v/-q) hold for every command."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image
from store_helpers import region_record

from vlprep.cli import cli
from vlprep.interop.lxmert_tsv import format_row
from vlprep.store import FeatureStore, StoreWriter


def run(*args, **kwargs):
    return CliRunner().invoke(cli, [str(a) for a in args], **kwargs)


def one_line_error(result, code: int) -> str:
    """The failure contract: the exit code, no traceback, one `error:` line."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.fixture()
def regions_store(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "regions"
    with StoreWriter(path, kind="regions", producer={"model": "test"}) as writer:
        for n in range(3):
            writer.add(f"img{n}", region_record(rng))
    return path


@pytest.fixture()
def video_store(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "video"
    with StoreWriter(path, kind="video", producer={"model": "test"}) as writer:
        for n in range(2):
            t = np.arange(5, dtype=np.float64)
            writer.add(
                f"v{n}",
                {
                    "features": rng.standard_normal((5, 8)).astype(np.float32),
                    "timestamps": np.stack([t, t + 1], 1),
                },
            )
    return path


# -- the handler ------------------------------------------------------------------------------------


def test_unexpected_errors_are_one_line_with_a_hint_and_v_shows_the_traceback(regions_store, monkeypatch):
    import vlprep.store

    def broken(store):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(vlprep.store, "summarize", broken)
    line = one_line_error(run("inspect", regions_store), 1)
    assert "ZeroDivisionError" in line and "-v" in line
    for args in (["-v", "inspect", regions_store], ["inspect", regions_store, "-v"]):
        verbose = run(*args)
        assert (
            verbose.exit_code == 1 and "Traceback" in verbose.output and "ZeroDivisionError" in verbose.output
        )


def test_python_dash_m_vlprep_and_did_you_mean(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "vlprep", "inpsect", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and "Did you mean 'inspect'" in proc.stderr
    result = run("tokens", "asign")
    assert result.exit_code == 2 and "Did you mean 'assign'" in result.output
    result = run("vocab", "wordpeice")
    assert result.exit_code == 2 and "Did you mean 'wordpiece'" in result.output


def test_not_a_store_is_exit_2_in_every_command(tmp_path):
    not_store = tmp_path / "notes.txt"
    not_store.write_text("hello\n")
    codebook = tmp_path / "cb.h5"
    for args in (
        ["inspect", tmp_path],
        ["tokens", "fit", not_store, "--out", codebook],
        ["tokens", "assign", tmp_path, "--codebook", not_store, "--out", tmp_path / "t"],
        ["export", tmp_path, "--format", "lxmert-tsv", "--out", tmp_path / "x.tsv"],
    ):
        line = one_line_error(run(*args), 2)
        assert "not a vlprep store" in line or "not a codebook" in line, args
    assert not codebook.exists() and not (tmp_path / "t").exists() and not (tmp_path / "x.tsv").exists()


# -- inspect ----------------------------------------------------------------------------------------


def test_render_without_id_draws_an_overview(regions_store, video_store, tmp_path):
    for store in (regions_store, video_store):
        out = tmp_path / f"{store.name}.png"
        result = run("inspect", store, "--render", out)
        assert result.exit_code == 0, result.output
        assert Image.open(out).size[0] >= 400


def test_bad_vocab_files_are_one_line(regions_store, tmp_path):
    two = tmp_path / "two.txt"
    two.write_text("cat\ndog\n")
    out = tmp_path / "r.png"
    base = ["inspect", regions_store, "--id", "img0", "--render", out]
    assert "missing.txt" in one_line_error(run(*base, "--vocab", tmp_path / "missing.txt"), 2)
    assert "1600 names" in one_line_error(run(*base, "--vocab", two), 2)
    assert not out.exists()


def test_render_with_vocab_does_not_import_torch(regions_store, tmp_path):
    objects, attributes = tmp_path / "objects.txt", tmp_path / "attributes.txt"
    objects.write_text("\n".join(f"object{i}" for i in range(1600)))
    attributes.write_text("\n".join(f"attr{i}" for i in range(400)))
    code = (
        "import sys; from vlprep.cli import cli; "
        f"cli(['inspect', {str(regions_store)!r}, '--id', 'img0', '--render', {str(tmp_path / 'v.png')!r}, "
        f"'--vocab', {f'{objects},{attributes}'!r}], standalone_mode=False); "
        "print('torch' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("False")  # the label names load without torch (seconds)


def test_moved_media_is_one_line_and_image_is_accepted(tmp_path):
    image = tmp_path / "photo.jpg"
    Image.fromarray(np.full((48, 64, 3), 90, np.uint8)).save(image)
    rng = np.random.default_rng(1)
    store = tmp_path / "store"
    with StoreWriter(store, kind="regions", producer={"model": "test"}) as writer:
        writer.add("photo.jpg", {**region_record(rng), "path": str(image)})
    moved = tmp_path / "moved.jpg"
    image.rename(moved)
    out = tmp_path / "r.png"
    line = one_line_error(run("inspect", store, "--id", "photo.jpg", "--render", out), 2)
    assert "photo.jpg" in line and "--image" in line
    result = run("inspect", store, "--id", "photo.jpg", "--render", out, "--image", moved)
    assert result.exit_code == 0, result.output and out.is_file()


def test_token_items_render_ids_over_time(tmp_path):
    from vlprep.render.timeline import token_colour

    store = tmp_path / "tokens"
    with StoreWriter(store, kind="tokens", producer={"levels": 1, "branching": 4}) as writer:
        writer.add(
            "clip", {"tokens": np.array([1, 1, 3, 2], np.int32), "timestamps": np.arange(8.0).reshape(4, 2)}
        )
    out = tmp_path / "t.png"
    assert run("inspect", store, "--id", "clip", "--render", out).exit_code == 0
    png = np.asarray(Image.open(out).convert("RGB")).reshape(-1, 3)
    for token in (1, 2, 3):  # each token's colour is drawn (not gray placeholder tiles)
        assert (png == np.array(token_colour(token))).all(axis=1).any()


# -- tokens -----------------------------------------------------------------------------------------


def test_tokens_usage_errors(video_store, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not hdf5\n")
    line = one_line_error(
        run("tokens", "assign", video_store, "--codebook", notes, "--out", tmp_path / "t"), 2
    )
    assert "not a codebook" in line
    result = run(
        "tokens", "assign", video_store, "--codebook", notes, "--out", tmp_path / "t", "--chunk-items", 0
    )
    assert result.exit_code == 2 and "--chunk-items" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "t").exists()


def test_fit_on_few_rows_warns_and_in_place_assign_records_the_codebook(video_store, tmp_path):
    codebook = tmp_path / "cb.h5"
    result = run("tokens", "fit", video_store, "--out", codebook, "--levels", 2, "--branching", 4, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["warnings"] and "10 rows for 16 leaves" in summary["warnings"][0]
    result = run("tokens", "assign", video_store, "--codebook", codebook, "--in-place", "--json")
    assert result.exit_code == 0, result.output
    meta = json.loads((video_store / "store.json").read_text())
    run_entry = meta["runs"][-1]
    assert run_entry["command"] == "tokens assign --in-place"
    assert (
        run_entry["tokens_producer"]["codebook_sha256"] == hashlib.sha256(codebook.read_bytes()).hexdigest()
    )


# -- convert ----------------------------------------------------------------------------------------


def _tsv_line(record: dict, item_id: str = "img") -> str:
    return "\t".join(format_row(item_id, record)) + "\r\n"


def test_convert_refuses_binary_files_and_crafted_rows_and_leaves_no_store(tmp_path):
    rng = np.random.default_rng(0)
    binary = tmp_path / "binary.tsv"
    binary.write_bytes(bytes(range(256)) * 10)
    out = tmp_path / "store"
    assert "not UTF-8" in one_line_error(run("convert", "lxmert-tsv", binary, "--out", out), 1)
    assert not out.exists()
    good = region_record(rng, n=3)
    nan_boxes = dict(good, boxes=np.full((3, 4), np.nan, np.float32))
    for name, record, reason in [
        ("zero", dict(good, image_h=0), "img_h is 0"),
        ("negative", dict(good, image_w=-5), "img_w is -5"),
        ("huge", dict(good, image_h=60000, image_w=60000), "img_h is 60000"),
        ("nan", nan_boxes, "NaN"),
    ]:
        tsv = tmp_path / f"{name}.tsv"
        tsv.write_text(_tsv_line(good, "fine") + _tsv_line(record), newline="")
        line = one_line_error(run("convert", "lxmert-tsv", tsv, "--out", out), 1)
        assert reason in line and f"{name}.tsv:2" in line, line
        assert not out.exists(), "a failed convert leaves no store behind"
    # and the corrected rerun works
    tsv = tmp_path / "good.tsv"
    tsv.write_text(_tsv_line(good, "fine"), newline="")
    assert run("convert", "lxmert-tsv", tsv, "--out", out).exit_code == 0
    assert FeatureStore(out).ids() == ["fine"]


# -- regions / video: checked before Ray ------------------------------------------------------------


def _images(root: Path, count: int = 1) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        Image.fromarray(np.full((40, 50, 3), 40 * n, np.uint8)).save(root / f"{n}.jpg")
    return root


def test_weights_and_options_are_checked_before_ray(tmp_path, monkeypatch):
    import vlprep.pipelines.runner as runner

    def no_ray(*args, **kwargs):
        raise AssertionError("Ray must not start for a usage error")

    monkeypatch.setattr(runner, "ray_session", no_ray)
    corpus = _images(tmp_path / "images")
    (tmp_path / "empty.pth").write_bytes(b"")
    (tmp_path / "text.pth").write_text("these are not weights\n")
    out = tmp_path / "store"
    cases = [
        (["regions", corpus, "--weights", tmp_path / "nonexistent.pth"], "not found"),
        (["regions", corpus, "--weights", tmp_path / "empty.pth"], "empty (0 bytes)"),
        (["regions", corpus, "--weights", tmp_path / "text.pth"], "it is text"),
        (["video", corpus, "--model", "s3d", "--weights", tmp_path / "text.pth"], "it is text"),
        (["video", corpus, "--model", "s3d", "--weights", tmp_path / "empty.pth"], "empty (0 bytes)"),
        (
            ["regions", corpus, "--weights", "random", "--boxes", "1000"],
            "raise --rpn-post-nms to at least 1000",
        ),
        (["regions", tmp_path / "nothing-here", "--weights", "random"], "no images found in"),
    ]
    (tmp_path / "nothing-here").mkdir()
    (tmp_path / "nothing-here" / "readme.md").write_text("no images\n")
    for args, expected in cases:
        line = one_line_error(run(*args, "--out", out), 2)
        assert expected in line, (args, line)
        assert "weights_only" not in line
        assert not out.exists(), args
    assert ".jpg" in line  # the empty-input message names what was looked for


def test_resume_with_nothing_to_do_needs_no_ray(tmp_path, monkeypatch):
    import vlprep.pipelines.runner as runner

    corpus = _images(tmp_path / "images", 2)
    out = tmp_path / "store"
    rng = np.random.default_rng(0)
    with StoreWriter(out, kind="regions", producer={"model": "done before"}) as writer:
        for name in ("0.jpg", "1.jpg"):
            writer.add(name, region_record(rng))

    def no_ray(*args, **kwargs):
        raise AssertionError("nothing to do: Ray must not start")

    monkeypatch.setattr(runner, "ray_session", no_ray)
    result = run("regions", corpus, "--out", out, "--weights", "random", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["ok"], summary["skipped"], summary["startup_seconds"]) == (0, 2, 0.0)


def test_fifo_inputs_are_error_records_and_decodes_have_a_deadline(tmp_path):
    from vlprep.pipelines.deadline import DeadlineExceeded, deadline
    from vlprep.pipelines.inputs import Item
    from vlprep.pipelines.regions import decode
    from vlprep.pipelines.runner import Failure, decode_batch

    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    [(_, outcome)] = decode_batch(decode, [Item("pipe.jpg", str(fifo))])
    assert isinstance(outcome, Failure) and outcome.stage == "decode" and "FIFO" in outcome.message
    # opening a FIFO without a writer blocks for ever: the deadline interrupts it
    with pytest.raises(DeadlineExceeded), deadline(0.2, "reading the pipe"), open(fifo, "rb") as fh:
        fh.read()


def test_records_without_boxes_or_with_nan_are_failures():
    from vlprep.pipelines.regions import unusable

    pixels = np.zeros((1, 1, 3), np.uint8)
    empty = {"features": np.zeros((0, 8), np.float32), "boxes": np.zeros((0, 4), np.float32), "num_boxes": 0}
    failure = unusable(empty, pixels)
    assert failure.stage == "select" and "1x1 image" in failure.message
    nan = {
        "features": np.full((2, 8), np.nan, np.float32),
        "boxes": np.zeros((2, 4), np.float32),
        "num_boxes": 2,
    }
    assert unusable(nan, pixels).stage == "model"
    ok = {"features": np.zeros((2, 8), np.float32), "boxes": np.zeros((2, 4), np.float32), "num_boxes": 2}
    assert unusable(ok, pixels) is None


def test_fewer_boxes_are_counted_and_strict_fails_on_them(tmp_path, capsys):
    from vlprep.cli.pipeline_options import format_summary, run_job_cli
    from vlprep.pipelines.regions import count_fewer_boxes

    rng = np.random.default_rng(0)
    out = tmp_path / "store"
    with StoreWriter(out, kind="regions", producer={"model": "test"}) as writer:
        for n, boxes in enumerate([36, 3, 10]):
            writer.add(f"img{n}", region_record(rng, n=boxes))
    assert count_fewer_boxes(out, 36) == 2
    summary = {
        "kind": "regions", "ok": 3, "failed": 0, "skipped": 0, "seconds": 1.0, "items_per_s": 3.0,
        "fewer_boxes": 2, "min_boxes": 36,
    }  # fmt: skip
    assert "2 images kept fewer than 36 boxes" in format_summary(summary, "img", str(out))
    with pytest.raises(SystemExit) as exited:
        run_job_cli(lambda: summary, unit="img", out=str(out), strict=True, as_json=False)
    assert exited.value.code == 1
    run_job_cli(lambda: summary, unit="img", out=str(out), strict=False, as_json=False)


# -- conventions ------------------------------------------------------------------------------------


def _leaf_commands():
    import click

    from vlprep.cli.reference import _walk

    root = click.Context(cli, info_name="vlprep")
    return [(ctx, command) for ctx, command in _walk(cli, root) if not isinstance(command, click.Group)]


def test_every_command_takes_config_and_prints_it(regions_store, tmp_path):
    for ctx, command in _leaf_commands():
        names = {p.name for p in command.params}
        assert {"config", "print_config"} <= names, ctx.command_path
    printed = run("inspect", regions_store, "--id", "img0", "--print-config")
    assert printed.exit_code == 0
    config = yaml.safe_load(printed.stdout)
    assert config["store_path"] == str(regions_store) and config["id"] == "img0"
    (tmp_path / "c.yaml").write_text(printed.stdout)
    again = run("inspect", "--config", tmp_path / "c.yaml", "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["id"] == "img0"


def test_address_help_names_ray_address():
    for args in (["regions", "--help"], ["video", "--help"], ["tokens", "assign", "--help"]):
        assert "$RAY_ADDRESS" in run(*args).output


def test_quiet_and_stdout_holds_only_the_result(regions_store):
    import click

    from vlprep.cli.output import bars_off, quiet_stdout

    result = run("-q", "inspect", regions_store, "--verify", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["ok"] is True
    with click.Context(cli) as ctx:
        assert bars_off() is None  # tqdm decides: bars on a terminal only
        ctx.meta["vlprep.quiet"] = True
        assert bars_off() is True
    # while a job runs, what a library or Ray prints to stdout lands on stderr
    result = CliRunner().invoke(click.Command("x", callback=lambda: _print_inside(quiet_stdout)))
    assert result.stdout == "result\n" and "noise" in result.stderr


def _print_inside(quiet_stdout) -> None:
    with quiet_stdout():
        print("(raylet) noise")
    print("result")


def test_token_usage_picture_uses_a_font_with_real_spaces():
    from vlprep.render.regions import load_font

    # Pillow's fixed bitmap font gave "tokenssorted"; the scalable one spaces words
    font = load_font(14)
    assert font.getlength("tokens sorted") - font.getlength("tokenssorted") >= 3


def test_demo_stages_report_a_line_each(tmp_path):
    from vlprep.demo.job import DemoReport, _timed

    lines: list[str] = []
    report = DemoReport(tmp_path)
    _timed(report, "regions", tmp_path / "regions", lambda: (24, 2), lines.append)
    assert len(lines) == 1 and "regions: 24 items, 2 errors in" in lines[0]
