"""Corpus readers and word counting: formats, gzip, broken lines, parallel counting."""

from __future__ import annotations

import gzip
import json
from collections import Counter

from click.testing import CliRunner

from vlprep.cli import cli
from vlprep.tokenizers.subword import BertPreTokenizer
from vlprep.tokenizers.subword.corpora import CorpusStats, detect_format, iter_lines, iter_text_blocks
from vlprep.tokenizers.subword.word_counts import count_words


def test_detect_format():
    assert detect_format("a/b.txt") == "text"
    assert detect_format("b.TXT.gz") == "text"
    assert detect_format("c.jsonl.gz") == "jsonl"
    assert detect_format("captions_train2017.json") == "coco"


def test_text_gzip_and_invalid_utf8(tmp_path):
    raw = b"first line\nbad \xff\xfe line\n\nthird \xc3\xa9t\xc3\xa9\r\n\xc3(broken\nlast"
    (tmp_path / "a.txt").write_bytes(raw)
    with gzip.open(tmp_path / "b.txt.gz", "wb") as f:
        f.write(raw)
    for name in ("a.txt", "b.txt.gz"):
        stats = CorpusStats()
        lines = list(iter_lines([tmp_path / name], stats=stats))
        assert lines == ["first line", "third été", "last"]
        assert stats.lines == 6 and stats.invalid_lines == 2 and stats.files == 1


def test_small_blocks_split_at_line_ends(tmp_path):
    text = "".join(f"line number {i} été\n" for i in range(500))
    (tmp_path / "a.txt").write_text(text, encoding="utf-8")
    stats = CorpusStats()
    blocks = list(iter_text_blocks([tmp_path / "a.txt"], stats=stats, block_bytes=100))
    assert len(blocks) > 50
    assert "\n".join(blocks) + "\n" == text
    assert stats.lines == 500


def test_jsonl_field_nested_list_and_broken_records(tmp_path):
    records = [
        {"caption": "a dog"},
        {"caption": ["two cats", "a cat pair"]},
        {"meta": {"caption": "nested"}},
        {"other": "no caption here"},
    ]
    body = "\n".join(json.dumps(r) for r in records).encode() + b"\n{not json\n" + b'{"caption": "\xff"}\n'
    path = tmp_path / "c.jsonl"
    path.write_bytes(body)
    stats = CorpusStats()
    assert list(iter_lines([path], stats=stats)) == ["a dog", "two cats", "a cat pair"]
    assert stats.invalid_lines == 2
    assert list(iter_lines([path], field="meta.caption")) == ["nested"]


def test_coco_captions_json_and_several_corpora(tmp_path):
    coco = {
        "images": [{"id": 1}],
        "annotations": [
            {"image_id": 1, "caption": "A man on a horse."},
            {"image_id": 1, "caption": "Horse riding"},
        ],
    }
    with gzip.open(tmp_path / "captions.json.gz", "wt", encoding="utf-8") as f:
        json.dump(coco, f)
    (tmp_path / "more.txt").write_text("one more line\n", encoding="utf-8")
    paths = [tmp_path / "captions.json.gz", tmp_path / "more.txt"]
    stats = CorpusStats()
    assert list(iter_lines(paths, stats=stats)) == ["A man on a horse.", "Horse riding", "one more line"]
    assert stats.files == 2 and stats.lines == 3


def test_parallel_counting_equals_serial(tmp_path):
    lines = [f"Line {i}: Café, naïve 中文 test{i % 37} 😀!" for i in range(3000)]
    path = tmp_path / "a.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    expected = Counter()
    pre = BertPreTokenizer()
    for line in lines:
        expected.update(pre.words(line))
    for workers in (1, 2):
        counted = count_words(iter_text_blocks([path], block_bytes=4096), workers=workers)
        assert counted.counts == expected
        assert counted.lines == 3000 and counted.words == sum(expected.values())


def test_cli_wordpiece_on_mixed_inputs(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"the cat sat\nthe \xff bad\nthe dog sat\n")
    (tmp_path / "b.jsonl").write_text(json.dumps({"text": "the cat ran"}) + "\n", encoding="utf-8")
    result = CliRunner().invoke(
        cli,
        [
            "vocab",
            "wordpiece",
            str(tmp_path / "a.txt"),
            str(tmp_path / "b.jsonl"),
            "--field",
            "text",
            "--vocab-size",
            "30",
            "--out",
            str(tmp_path / "o"),
            "--min-frequency",
            "1",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["lines"] == 4 and summary["invalid_lines"] == 1
    assert summary["records"] == 1 and summary["texts"] == 1
    assert summary["words"] == 9 and summary["distinct_words"] == 5
    assert summary["vocab_size"] == 30
    assert len((tmp_path / "o" / "vocab.txt").read_text(encoding="utf-8").splitlines()) == 30


def test_cli_summary_line_and_gzipped_jsonl(tmp_path):
    with gzip.open(tmp_path / "c.jsonl.gz", "wt", encoding="utf-8") as f:
        for caption in ["a dog runs", "a dog sits", "a cat runs"]:
            f.write(json.dumps({"caption": caption}) + "\n")
    out = tmp_path / "o"
    result = CliRunner().invoke(
        cli, ["vocab", "wordpiece", str(tmp_path / "c.jsonl.gz"), "--vocab-size", "25", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-1].strip()  # after the progress bars (stderr)
    assert last.startswith(
        "wordpiece (likelihood): 3 texts from 3 records (0 invalid skipped), 9 words, 5 distinct, vocab "
    )
    assert (out / "vocab.txt").exists() and (out / "tokenizer.json").exists()


def test_cli_rejects_unk_outside_special_tokens(tmp_path):
    (tmp_path / "a.txt").write_text("hello world\n", encoding="utf-8")
    result = CliRunner().invoke(
        cli,
        [
            "vocab",
            "wordpiece",
            str(tmp_path / "a.txt"),
            "--vocab-size",
            "20",
            "--out",
            str(tmp_path / "o"),
            "--special-tokens",
            "[PAD],[CLS]",
        ],
    )
    assert result.exit_code == 2 and "unknown token" in result.output


def test_summary_counts_captions_of_a_manifest(tmp_path):
    # a `vlprep manifest` record holds several captions: the summary counts both, each by its name
    records = [
        {"video": "a.mp4", "captions": ["a dog runs", "a dog sits", "the dog"]},
        {"video": "b.mp4", "captions": ["a cat runs", "a cat"]},
    ]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    (tmp_path / "more.txt").write_text("a dog\na cat\n", encoding="utf-8")
    args = ["vocab", "wordpiece", str(manifest), "--field", "captions", "--vocab-size", "40", "--out"]
    result = CliRunner().invoke(cli, [*args, str(tmp_path / "o1")])
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-1].strip()
    assert last.startswith("wordpiece (likelihood): 5 texts from 2 records (0 invalid skipped), 13 words")
    result = CliRunner().invoke(cli, [*args[:3], str(tmp_path / "more.txt"), *args[3:], str(tmp_path / "o2")])
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-1].strip()
    assert last.startswith("wordpiece (likelihood): 2 lines and 5 texts from 2 records (0 invalid skipped)")
