"""Corpus files in, vocabulary directory out: the three `vlprep vocab` jobs as library calls.

Each returns a `VocabSummary` (lines, words, distinct words, vocabulary size, seconds, output files).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from vlprep.tokenizers.subword.bert_pretokenizer import BertPreTokenizer
from vlprep.tokenizers.subword.corpora import CorpusStats, iter_lines, iter_text_blocks
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

    def as_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        return (
            f"{self.kind}: {self.lines} lines ({self.invalid_lines} invalid skipped), {self.words} words, "
            f"{self.distinct_words} distinct, vocab {self.vocab_size}, {self.seconds:.1f} s"
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
    if unk_token not in special_tokens:
        raise ValueError(f"the unknown token {unk_token!r} must be one of the special tokens")
    start = time.perf_counter()
    stats = CorpusStats()
    pretokenizer = BertPreTokenizer(lowercase=lowercase)
    counts = count_words(
        iter_text_blocks(corpora, field=field, fmt=fmt, stats=stats),
        pretokenizer,
        workers=workers,
        progress=on_lines,
    )
    counted = time.perf_counter()
    vocab = train_wordpiece(
        counts.counts,
        vocab_size,
        criterion=criterion,
        min_frequency=min_frequency,
        limit_alphabet=limit_alphabet,
        max_piece_length=max_piece_length,
        special_tokens=tuple(special_tokens),
        progress=on_merges,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_vocab_txt(vocab.tokens, out / "vocab.txt")
    write_tokenizer_json(
        vocab.tokens,
        out / "tokenizer.json",
        special_tokens=vocab.special_tokens,
        lowercase=lowercase,
        unk_token=unk_token,
        max_input_chars_per_word=max_input_chars_per_word,
    )
    end = time.perf_counter()
    return VocabSummary(
        kind=f"wordpiece ({criterion})",
        lines=stats.lines,
        invalid_lines=stats.invalid_lines,
        words=counts.words,
        distinct_words=counts.distinct,
        vocab_size=len(vocab.tokens),
        seconds=end - start,
        files={"vocab": str(out / "vocab.txt"), "tokenizer": str(out / "tokenizer.json")},
        seconds_counting=counted - start,
        seconds_training=end - counted,
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
    start = time.perf_counter()
    stats = CorpusStats()
    result = train_sentencepiece(
        iter_lines(corpora, field=field, fmt=fmt, stats=stats),
        out_dir,
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
    return VocabSummary(
        kind=model_type,
        lines=stats.lines,
        invalid_lines=stats.invalid_lines,
        words=result.words,
        distinct_words=result.distinct_words,
        vocab_size=result.vocab_size,
        seconds=time.perf_counter() - start,
        files={"model": str(result.model_path), "vocab": str(result.vocab_path)},
    )
