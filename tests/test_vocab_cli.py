"""`vlprep vocab`: bad input is one line in our words with the right exit code and leaves nothing behind;
small corpora train with a warning; `vocab eval` compares vocabularies of both families."""

from __future__ import annotations

import json
import random

import pytest
from click.testing import CliRunner
from PIL import Image

from vlprep.cli import cli

TRAINERS = ["wordpiece", "bpe", "unigram"]


def invoke(*args):
    return CliRunner().invoke(cli, ["vocab", *map(str, args)])


def leftovers(root):
    return sorted(p.name for p in root.rglob("*") if ".tmp-" in p.name)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    rng = random.Random(0)
    words = ["a", "dog", "runs", "the", "cat", "sits", "on", "mat", "red", "ball", "green", "field", "of"]
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 9))) for _ in range(600)]
    (d / "train.txt").write_text("\n".join(lines[:500]) + "\n", encoding="utf-8")
    (d / "held.txt").write_text("\n".join(lines[500:]) + "\n", encoding="utf-8")
    return d


@pytest.mark.parametrize("trainer", TRAINERS)
@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "the corpus is empty"), (b"\xff\xfe\n\xc3(\n", "no valid line in the corpus: all 2 lines")],
)
def test_no_text_is_a_data_error_and_leaves_nothing(tmp_path, trainer, content, message):
    (tmp_path / "c.txt").write_bytes(content)
    out = tmp_path / "new" / "deeper" / "out"
    result = invoke(trainer, tmp_path / "c.txt", "--vocab-size", 50, "--out", out)
    assert result.exit_code == 1, result.output
    assert result.output == f"error: {message}" + result.output.split(message, 1)[1]
    assert len(result.output.strip().splitlines()) == 1 and "INTERNAL" not in result.output
    assert not (tmp_path / "new").exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("trainer", TRAINERS)
def test_vocab_size_below_the_alphabet_is_a_usage_error(corpus, tmp_path, trainer):
    result = invoke(trainer, corpus / "train.txt", "--vocab-size", 8, "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: --vocab-size 8 is below the ") and "ask for at least" in line
    assert "INTERNAL" not in line and "sentencepiece needs" in line or trainer == "wordpiece"
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("trainer", TRAINERS)
def test_small_corpus_trains_with_a_warning(corpus, tmp_path, trainer):
    out = tmp_path / "out"
    result = invoke(trainer, corpus / "train.txt", "--vocab-size", 500, "--out", out, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)  # --json prints only JSON: no progress bar, no warning line
    got = summary["vocab_size"]
    assert got < 500 and summary["requested_vocab_size"] == 500
    assert summary["warning"].startswith(f"got {got} of 500: ")
    result = invoke(trainer, corpus / "train.txt", "--vocab-size", 500, "--out", tmp_path / "o2")
    (line,) = result.output.strip().splitlines()  # no progress bar off a terminal
    assert line.endswith(summary["warning"]) and "; warning: got" in line
    assert leftovers(tmp_path) == []


def test_existing_directory_is_kept_and_filled(corpus, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me", encoding="utf-8")
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    result = invoke("wordpiece", tmp_path / "empty.txt", "--vocab-size", 50, "--out", mine)
    assert result.exit_code == 1
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    result = invoke("wordpiece", corpus / "train.txt", "--vocab-size", 40, "--out", mine)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt", "tokenizer.json", "vocab.txt"]
    assert (mine / "notes.txt").read_text(encoding="utf-8") == "keep me"
    assert leftovers(tmp_path) == []


def test_out_that_is_a_file_and_bad_options_are_usage_errors(corpus, tmp_path):
    (tmp_path / "f").write_text("x", encoding="utf-8")
    result = invoke("bpe", corpus / "train.txt", "--vocab-size", 50, "--out", tmp_path / "f")
    assert result.exit_code == 2 and "is not a directory" in result.output
    args = ["wordpiece", corpus / "train.txt", "--vocab-size", 50, "--out", tmp_path / "o"]
    result = invoke(*args, "--criterion", "frequency", "--min-gain", "1")
    assert (
        result.exit_code == 2
        and result.output.strip() == "error: --min-gain applies to --criterion likelihood only"
    )
    result = invoke(*args, "--special-tokens", "[PAD],[CLS]")
    assert result.exit_code == 2 and "unknown token" in result.output
    result = invoke(
        "unigram", corpus / "train.txt", "--vocab-size", 50, "--out", tmp_path / "o", "--spm-option", "nope=1"
    )
    assert result.exit_code == 2
    assert result.output.strip() == "error: sentencepiece has no trainer option 'nope' (--spm-option)"
    assert not (tmp_path / "o").exists() and leftovers(tmp_path) == []


def test_min_gain_stops_with_the_reason(corpus, tmp_path):
    result = invoke(
        "wordpiece",
        corpus / "train.txt",
        "--vocab-size",
        300,
        "--out",
        tmp_path / "o",
        "--min-gain",
        "1e6",
        "--json",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["vocab_size"] < 300
    assert "the best likelihood gain fell below --min-gain 1e+06" in summary["warning"]


def test_eval_compares_wordpiece_and_sentencepiece(corpus, tmp_path):
    for trainer in TRAINERS:
        result = invoke(trainer, corpus / "train.txt", "--vocab-size", 100, "--out", tmp_path / trainer)
        assert result.exit_code == 0, result.output
    vocabs = [
        tmp_path / "wordpiece",
        tmp_path / "wordpiece" / "vocab.txt",
        tmp_path / "bpe" / "spm.model",
        tmp_path / "unigram",
    ]
    png = tmp_path / "cmp.png"
    result = invoke("eval", *vocabs, "--corpus", corpus / "held.txt", "--json", "--plot", png)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["kind"] for r in rows] == ["wordpiece", "wordpiece", "sentencepiece", "sentencepiece"]
    assert len({r["name"] for r in rows}) == 4
    held = (corpus / "held.txt").read_text(encoding="utf-8").split()
    for r in rows:
        assert r["words"] == len(held)
        assert 20 < r["vocab_size"] < 100  # this corpus runs out of pieces before 100
        assert r["tokens_per_word"] == pytest.approx(r["tokens"] / r["words"])
        assert r["chars_per_token"] == pytest.approx(sum(map(len, held)) / r["tokens"])
        assert r["loglik_per_word"] < 0 and r["unk_rate"] == 0
    # tokenizer.json and vocab.txt of one training encode alike
    assert {k: v for k, v in rows[0].items() if k not in ("name", "path")} == {
        k: v for k, v in rows[1].items() if k not in ("name", "path")
    }
    # WordPiece ran out of pairs when every word of the corpus was one token
    assert rows[0]["top_words_whole"] == 1.0 and rows[0]["top_words"] == 13
    with Image.open(png) as img:
        assert img.format == "PNG" and img.width > 1000
    result = invoke("eval", *vocabs[:2], "--corpus", corpus / "held.txt")
    assert result.exit_code == 0
    assert result.output.splitlines()[1].startswith("vocabulary size")


def test_eval_bad_input(corpus, tmp_path):
    result = invoke("eval", tmp_path / "missing.model", "--corpus", corpus / "held.txt")
    assert result.exit_code == 2 and result.output.startswith("error: no such vocabulary file")
    (tmp_path / "bad.model").write_bytes(b"not a model")
    result = invoke("eval", tmp_path / "bad.model", "--corpus", corpus / "held.txt")
    assert result.exit_code == 1 and "is not a sentencepiece model" in result.output
    result = invoke("eval", tmp_path, "--corpus", corpus / "held.txt", "--plot", tmp_path / "x.jpg")
    assert result.exit_code == 2 and "PNG" in result.output
