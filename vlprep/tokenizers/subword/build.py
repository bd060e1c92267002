"""Corpus files in, vocabulary directory out: the three `vlprep vocab` jobs as library calls.

Each returns a `VocabSummary` (lines, words, distinct words, vocabulary size, seconds, output files, and a
warning where the vocabulary came out smaller than asked). Bad input raises `VocabError` with one line
for the user; the output directory appears only once complete (`output_dir.staged_dir`).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from vlprep.tokenizers.subword.bert_pretokenizer import BertPreTokenizer
from vlprep.tokenizers.subword.corpora import CorpusStats, iter_lines, iter_text_blocks
from vlprep.tokenizers.subword.errors import VocabError
from vlprep.tokenizers.subword.output_dir import check_out_dir, staged_dir
from vlprep.tokenizers.subword.sentencepiece import train_sentencepiece
from vlprep.tokenizers.subword.word_counts import count_words
from vlprep.tokenizers.subword.wordpiece_export import write_tokenizer_json, write_vocab_txt
from vlprep.tokenizers.subword.wordpiece_trainer import DEFAULT_SPECIAL_TOKENS, train_wordpiece


@dataclass
class VocabSummary:
    kind: str
    lines: int
    invalid_lines: int
    words: int
    distinct_words: int
    vocab_size: int
    seconds: float
    files: dict[str, str] = field(default_factory=dict)
    seconds_counting: float | None = None
    seconds_training: float | None = None
    requested_vocab_size: int | None = None
    warning: str | None = None  # e.g. "got 143 of 200: ..."
    # of `lines`, the JSONL records and COCO annotations, and the texts (captions) read from them
    records: int = 0
    texts: int = 0

    def as_dict(self) -> dict:
        return asdict(self)

    def read(self) -> str:
        """What was read, by what it is: "120 lines", "5000 texts from 1000 records", or both."""
        parts = []
        if self.lines > self.records or not self.records:
            parts.append(f"{self.lines - self.records} lines")
        if self.records:
            parts.append(f"{self.texts} texts from {self.records} records")
        return " and ".join(parts)

    def line(self) -> str:
        text = (
            f"{self.kind}: {self.read()} ({self.invalid_lines} invalid skipped), {self.words} words, "
            f"{self.distinct_words} distinct, vocab {self.vocab_size}, {self.seconds:.1f} s"
        )
        return text + (f"; warning: {self.warning}" if self.warning else "")


def no_text_error(stats: CorpusStats) -> VocabError:
    """The corpus gave no text: say whether it was empty, all invalid, or blank."""
    if stats.lines == 0:
        return VocabError("the corpus is empty: no lines to learn from")
    if stats.invalid_lines >= stats.lines:
        return VocabError(
            f"no valid line in the corpus: all {stats.lines} lines were skipped as invalid "
            "(not UTF-8, or JSONL records that do not parse)"
        )
    return VocabError(
        f"no words in the corpus: {stats.lines} lines read ({stats.invalid_lines} invalid), none with text "
        "(for JSONL, is --field right?)"
    )


def build_wordpiece(
    corpora: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    vocab_size: int,
    field: str = "caption",
    fmt: str = "auto",
    lowercase: bool = True,
    criterion: str = "likelihood",
    min_frequency: int = 2,
    min_gain: float | None = None,
    limit_alphabet: int | None = 1000,
    max_piece_length: int | None = None,
    special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS,
    unk_token: str = "[UNK]",
    max_input_chars_per_word: int = 100,
    workers: int | None = None,
    on_lines: Callable[[int], None] | None = None,
    on_merges: Callable[[int], None] | None = None,
) -> VocabSummary:
    """Count words, learn merges, write `vocab.txt` and `tokenizer.json` into `out_dir`."""
    specials = list(dict.fromkeys(special_tokens))
    if unk_token not in specials:
        raise VocabError(f"the unknown token {unk_token!r} must be one of the special tokens", usage=True)
    if vocab_size < len(specials):
        raise VocabError(f"--vocab-size {vocab_size} is below the {len(specials)} special tokens", usage=True)
    check_out_dir(out_dir)
    start = time.perf_counter()
    stats = CorpusStats()
    pretokenizer = BertPreTokenizer(lowercase=lowercase)
    counts = count_words(
        iter_text_blocks(corpora, field=field, fmt=fmt, stats=stats),
        pretokenizer,
        workers=workers,
        progress=on_lines,
    )
    if not counts.counts:
        raise no_text_error(stats)
    counted = time.perf_counter()
    vocab = train_wordpiece(
        counts.counts,
        vocab_size,
        criterion=criterion,
        min_frequency=min_frequency,
        min_gain=min_gain,
        limit_alphabet=limit_alphabet,
        max_piece_length=max_piece_length,
        special_tokens=tuple(specials),
        progress=on_merges,
    )
    with staged_dir(out_dir) as tmp:
        write_vocab_txt(vocab.tokens, tmp / "vocab.txt")
        write_tokenizer_json(
            vocab.tokens,
            tmp / "tokenizer.json",
            special_tokens=vocab.special_tokens,
            lowercase=lowercase,
            unk_token=unk_token,
            max_input_chars_per_word=max_input_chars_per_word,
        )
    out = Path(out_dir)
    end = time.perf_counter()
    warning = None
    if len(vocab.tokens) < vocab_size:
        why = (
            f"the best likelihood gain fell below --min-gain {min_gain:g}"
            if vocab.stop == "min_gain"
            else f"no pair left that occurs at least --min-frequency {min_frequency} times"
        )
        warning = f"got {len(vocab.tokens)} of {vocab_size}: {why}"
    return VocabSummary(
        kind=f"wordpiece ({criterion})",
        lines=stats.lines,
        invalid_lines=stats.invalid_lines,
        records=stats.records,
        texts=stats.texts,
        words=counts.words,
        distinct_words=counts.distinct,
        vocab_size=len(vocab.tokens),
        seconds=end - start,
        files={"vocab": str(out / "vocab.txt"), "tokenizer": str(out / "tokenizer.json")},
        seconds_counting=counted - start,
        seconds_training=end - counted,
        requested_vocab_size=vocab_size,
        warning=warning,
    )


def build_sentencepiece(
    corpora: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    model_type: str,
    vocab_size: int,
    field: str = "caption",
    fmt: str = "auto",
    input_sentence_size: int = 0,
    character_coverage: float = 0.9995,
    byte_fallback: bool = False,
    user_defined_symbols: Iterable[str] = (),
    options: dict[str, str] | None = None,
    on_lines: Callable[[int], None] | None = None,
    verbose: bool = False,
) -> VocabSummary:
    """Train `spm.model` / `spm.vocab` in `out_dir` with sentencepiece."""
    check_out_dir(out_dir)
    start = time.perf_counter()
    stats = CorpusStats()
    lines = iter_lines(corpora, field=field, fmt=fmt, stats=stats)
    first = next(lines, None)  # sentencepiece's own message for no input is "INTERNAL: ..."
    if first is None:
        raise no_text_error(stats)
    with staged_dir(out_dir) as tmp:
        result = train_sentencepiece(
            itertools.chain([first], lines),
            tmp,
            model_type=model_type,
            vocab_size=vocab_size,
            input_sentence_size=input_sentence_size,
            character_coverage=character_coverage,
            byte_fallback=byte_fallback,
            user_defined_symbols=user_defined_symbols,
            options=options,
            progress=on_lines,
            verbose=verbose,
        )
    out = Path(out_dir)
    warning = None
    if result.vocab_size < vocab_size:
        warning = (
            f"got {result.vocab_size} of {vocab_size}: sentencepiece found no more pieces in this corpus"
        )
    return VocabSummary(
        kind=model_type,
        lines=stats.lines,
        invalid_lines=stats.invalid_lines,
        records=stats.records,
        texts=stats.texts,
        words=result.words,
        distinct_words=result.distinct_words,
        vocab_size=result.vocab_size,
        seconds=time.perf_counter() - start,
        files={"model": str(out / result.model_path.name), "vocab": str(out / result.vocab_path.name)},
        requested_vocab_size=vocab_size,
        warning=warning,
    )
