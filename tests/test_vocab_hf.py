"""Token-for-token agreement with Hugging Face `tokenizers` for vocabularies we train."""

from __future__ import annotations

import json
import random

import pytest
from click.testing import CliRunner
from tokenizers import BertWordPieceTokenizer, Tokenizer
from tokenizers.normalizers import BertNormalizer
from tokenizers.pre_tokenizers import BertPreTokenizer as HFBertPreTokenizer

from vlprep.cli import cli
from vlprep.tokenizers.subword import BertPreTokenizer, WordPieceTokenizer

TRAIN_LINES = [
    "A man rides a bicycle down the street, past a café.",
    "Two dogs play in the snow!!! (Very happy.)",
    "Naïve résumé: déjà vu; the Über-driver's façade...",
    "一个男人在街上骑自行车。 两只狗在雪地里玩耍",
    "Emoji time 😀😀 party 🎉 — great fun 🎉!",
    "Control\x00chars\x07 in\u200bthe\ttext and\x0bsome\x1fmore \u00a0nbsp",
    "ΟΔΟΣ Σοφίας και Straße İstanbul ÉCOLE",
    "price: $12.50 + tax = $13.10 ~ 5% <b>bold</b> #tag @user",
]
TEST_LINES = TRAIN_LINES + [
    "A woman rides a horse along the beach at sunset.",
    "unseen zebra xylophone quokka",
    "a" * 150 + " short words",
    "[CLS] the dog [MASK] a ball [SEP]",
    "Mixed  CJK字符and ASCII混合,punct。",
    "emoji-glued😀word and 🥰 and ⚽️",
    "",
    "   \t  ",
    "Tabs\tand\nnewlines\r\nhere",
]


@pytest.fixture(scope="module", params=["uncased", "cased"])
def trained(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"wp-{request.param}")
    corpus = out / "corpus.txt"
    rng = random.Random(0)
    lines = [rng.choice(TRAIN_LINES) for _ in range(400)]
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    args = [
        "vocab",
        "wordpiece",
        str(corpus),
        "--vocab-size",
        "400",
        "--out",
        str(out),
        "--json",
        "--min-frequency",
        "2",
    ]
    if request.param == "cased":
        args.append("--cased")
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    return out, request.param == "uncased", summary


def test_summary_and_files(trained):
    out, _, summary = trained
    assert summary["lines"] == 400
    assert summary["vocab_size"] == len((out / "vocab.txt").read_text(encoding="utf-8").splitlines())
    assert (out / "tokenizer.json").exists()


def test_tokenizer_json_matches_bert_wordpiece(trained):
    out, lowercase, _ = trained
    from_json = Tokenizer.from_file(str(out / "tokenizer.json"))
    from_vocab = BertWordPieceTokenizer(str(out / "vocab.txt"), lowercase=lowercase)
    ours = WordPieceTokenizer.from_vocab(out / "vocab.txt", lowercase=lowercase)
    for line in TEST_LINES:
        ref = from_vocab.encode(line)
        got = from_json.encode(line)
        assert got.tokens == ref.tokens, line
        assert got.ids == ref.ids, line
        # our encoder has no [CLS]/[SEP] post-processing
        assert ours.tokenize(line) == ref.tokens[1:-1], line
        assert ours.encode(line) == ref.ids[1:-1], line


def test_unknown_and_long_words_become_unk(trained):
    out, lowercase, _ = trained
    ours = WordPieceTokenizer.from_vocab(out / "vocab.txt", lowercase=lowercase)
    assert ours.tokenize("a" * 101) == ["[UNK]"]
    assert ours.tokenize("qqqq") == ["[UNK]"]  # no q in the alphabet


def test_pretokenizer_matches_hugging_face():
    rng = random.Random(0)
    ranges = [
        (0, 0x250),
        (0x300, 0x370),
        (0x370, 0x530),
        (0x2000, 0x2070),
        (0x3000, 0x3100),
        (0x4E00, 0x4E80),
        (0xAC00, 0xAC40),
        (0xF8F0, 0xFB10),
        (0xFF00, 0xFFF0),
        (0x1F600, 0x1F650),
        (0x2B700, 0x2B950),
    ]
    pool = [chr(c) for lo, hi in ranges for c in range(lo, hi)]
    for lowercase in (True, False):
        normalizer = BertNormalizer(lowercase=lowercase)
        hf = HFBertPreTokenizer()
        ours = BertPreTokenizer(lowercase=lowercase)
        for _ in range(1500):
            text = "".join(
                rng.choice(pool) if rng.random() < 0.5 else rng.choice("abc DEF, .")
                for _ in range(rng.randint(1, 30))
            )
            expected = [w for w, _ in hf.pre_tokenize_str(normalizer.normalize_str(text))]
            assert ours.words(text) == expected, repr(text)
            assert sorted(ours.count_words(text).elements()) == sorted(expected)


def test_frequency_criterion_learns_what_hugging_face_learns(tmp_path):
    # Hugging Face's WordPieceTrainer is frequency BPE: same merges in the same order (both break count
    # ties by token id, and the ids of the pieces compared here are assigned alike).
    rng = random.Random(1)
    words = ["walking", "talking", "walked", "talked", "stalking", "chalk", "balking", "walker"]
    lines = [" ".join(rng.choice(words) for _ in range(6)) for _ in range(300)]
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(lines), encoding="utf-8")
    result = CliRunner().invoke(
        cli,
        [
            "vocab",
            "wordpiece",
            str(corpus),
            "--vocab-size",
            "100",
            "--out",
            str(tmp_path / "ours"),
            "--criterion",
            "frequency",
        ],
    )
    assert result.exit_code == 0, result.output
    ours = (tmp_path / "ours" / "vocab.txt").read_text(encoding="utf-8").splitlines()
    hf = BertWordPieceTokenizer(lowercase=True)
    hf.train([str(corpus)], vocab_size=100, min_frequency=2, show_progress=False)
    hf_vocab = sorted(hf.get_vocab(), key=hf.get_vocab().get)
    n_alpha = 5 + len(set("".join(words))) + len({c for w in words for c in w[1:]})
    # the alphabet is the same set (Hugging Face lists the ## characters in hash-map order)
    assert set(ours[:n_alpha]) == set(hf_vocab[:n_alpha])
    # the corpus runs out of pairs before 100: both stop at the same place, with the same pieces
    assert len(ours) == len(hf_vocab) < 100
    assert ours[n_alpha:] == hf_vocab[n_alpha:]


def test_tokenizer_json_is_what_hugging_face_writes(trained, tmp_path):
    out, lowercase, _ = trained
    BertWordPieceTokenizer(str(out / "vocab.txt"), lowercase=lowercase).save(str(tmp_path / "hf.json"))
    theirs = json.loads((tmp_path / "hf.json").read_text(encoding="utf-8"))
    ours = json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))
    # Hugging Face writes null for "same as lowercase"; we write the value it stands for
    assert theirs["normalizer"].pop("strip_accents") is None
    assert ours["normalizer"].pop("strip_accents") is lowercase
    assert ours == theirs
