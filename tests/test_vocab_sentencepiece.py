"""`vlprep vocab bpe|unigram`: sentencepiece models trained from our readers."""

from __future__ import annotations

import gzip
import json
import random

import pytest
import sentencepiece as spm
from click.testing import CliRunner

from vlprep.cli import cli
from vlprep.tokenizers.subword.sentencepiece import parse_options

_rng = random.Random(5)
_SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
WORDS = sorted(
    {"".join(_rng.choice(_SYLLABLES) for _ in range(_rng.randint(1, 4))) for _ in range(600)}
    | {"the", "brown", "horse", "a", "dog", "runs"}
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("spm")
    rng = random.Random(0)
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 10))) for _ in range(1500)]
    assert {w for line in lines for w in line.split()} == set(WORDS)
    with gzip.open(d / "captions.txt.gz", "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return d / "captions.txt.gz"


@pytest.mark.parametrize("model_type", ["bpe", "unigram"])
def test_model_loads_with_asked_size(corpus, tmp_path, model_type):
    out = tmp_path / model_type
    result = CliRunner().invoke(
        cli,
        [
            "vocab",
            model_type,
            str(corpus),
            "--vocab-size",
            "120",
            "--out",
            str(out),
            "--user-defined-symbols",
            "<img>,<vid>",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["lines"] == 1500 and summary["vocab_size"] == 120
    assert summary["distinct_words"] == len(WORDS)
    sp = spm.SentencePieceProcessor(model_file=str(out / "spm.model"))
    assert sp.get_piece_size() == 120
    assert len((out / "spm.vocab").read_text(encoding="utf-8").splitlines()) == 120
    pieces = sp.encode("a dog <img> runs", out_type=str)
    assert "<img>" in pieces
    sentence = " ".join(WORDS[:6])
    assert sp.decode(sp.encode(sentence)) == sentence


def test_byte_fallback_sampling_and_passthrough_options(corpus, tmp_path):
    out = tmp_path / "bf"
    result = CliRunner().invoke(
        cli,
        [
            "vocab",
            "bpe",
            str(corpus),
            "--vocab-size",
            "400",
            "--out",
            str(out),
            "--byte-fallback",
            "--input-sentence-size",
            "300",
            "--spm-option",
            "split_digits=true",
            "--spm-option",
            "seed_sentencepiece_size=5000",
        ],
    )
    assert result.exit_code == 0, result.output
    sp = spm.SentencePieceProcessor(model_file=str(out / "spm.model"))
    assert sp.get_piece_size() == 400
    assert sp.piece_to_id("<0xE4>") != sp.unk_id()  # byte pieces exist
    assert "<0x" in "".join(sp.encode("中", out_type=str))


def test_bad_options_fail_cleanly(corpus, tmp_path):
    result = CliRunner().invoke(
        cli,
        [
            "vocab",
            "bpe",
            str(corpus),
            "--vocab-size",
            "50",
            "--out",
            str(tmp_path),
            "--spm-option",
            "novalue",
        ],
    )
    assert result.exit_code == 2
    result = CliRunner().invoke(
        cli,
        [
            "vocab",
            "unigram",
            str(corpus),
            "--vocab-size",
            "50",
            "--out",
            str(tmp_path),
            "--spm-option",
            "no_such_option=1",
        ],
    )
    assert result.exit_code == 2
    assert (
        result.output.strip() == "error: sentencepiece has no trainer option 'no_such_option' (--spm-option)"
    )


def test_parse_options():
    assert parse_options(["a=1", "--b = x y"]) == {"a": "1", "b": "x y"}
    with pytest.raises(ValueError):
        parse_options(["=1"])
