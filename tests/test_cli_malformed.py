"""Every subcommand, given a malformed argument set: exit 1 or 2, no traceback, nothing created."""

from __future__ import annotations

import os

import click
from click.testing import CliRunner

from vlprep.cli import cli
from vlprep.cli.reference import _walk

# command path -> arguments that are wrong in the way a user gets them wrong; {f} is the fixtures folder
MALFORMED: dict[str, list[str]] = {
    "convert": ["lxmert-tsv", "{f}/binary.tsv", "--out", "out"],
    "demo": ["out", "--images", "0"],
    "export": ["{f}", "--format", "lxmert-tsv", "--out", "out.tsv"],
    "inspect": ["{f}/missing-store", "--render", "out.png"],
    "manifest": ["coco2014", "{f}/no-images", "--out", "out.jsonl"],
    "repair": ["{f}/missing-store"],
    "regions": ["{f}/no-images", "--out", "out", "--weights", "{f}/text.pth"],
    "video": ["{f}", "--out", "out", "--model", "s3d", "--weights", "{f}/empty.pth"],
    "tokens fit": ["{f}/notes.txt", "--out", "out.h5"],
    "tokens assign": ["{f}", "--codebook", "{f}/notes.txt", "--out", "out"],
    "vocab bpe": ["{f}/notes.txt", "--vocab-size", "0", "--out", "out"],
    "vocab unigram": ["{f}/notes.txt", "--vocab-size", "-3", "--out", "out"],
    "vocab wordpiece": ["{f}/binary.tsv", "--vocab-size", "many", "--out", "out"],
    "vocab eval": ["{f}/no-such-vocab", "--corpus", "{f}/notes.txt", "--plot", "out.png"],
}
# A command added later without an entry above still gets a malformed set: an option it does not have.
FALLBACK = ["--no-such-option"]


def _leaf_paths() -> list[str]:
    root = click.Context(cli, info_name="vlprep")
    return [
        ctx.command_path.removeprefix("vlprep ")
        for ctx, command in _walk(cli, root)
        if not isinstance(command, click.Group)
    ]


def test_every_subcommand_fails_cleanly_on_malformed_arguments(tmp_path):
    fixtures = tmp_path / "fixtures"
    (fixtures / "no-images").mkdir(parents=True)
    (fixtures / "binary.tsv").write_bytes(bytes(range(256)) * 8)
    (fixtures / "notes.txt").write_text("just a note\n")
    (fixtures / "text.pth").write_text("not a checkpoint\n")
    (fixtures / "empty.pth").write_bytes(b"")
    work = tmp_path / "work"
    work.mkdir()
    before = sorted(p.name for p in fixtures.rglob("*"))
    paths = _leaf_paths()
    assert set(MALFORMED) <= set(paths)
    cwd = os.getcwd()
    os.chdir(work)
    try:
        for path in paths:
            args = [a.format(f=fixtures) for a in MALFORMED.get(path, FALLBACK)]
            result = CliRunner().invoke(cli, [*path.split(), *args])
            assert result.exit_code in (1, 2), (path, result.exit_code, result.output)
            assert "Traceback" not in result.output, (path, result.output)
            assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
            assert list(work.iterdir()) == [], (path, list(work.iterdir()))
    finally:
        os.chdir(cwd)
    assert sorted(p.name for p in fixtures.rglob("*")) == before
