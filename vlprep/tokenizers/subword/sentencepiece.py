"""BPE and unigram vocabularies with sentencepiece, fed by an iterator over the corpus readers.

sentencepiece keeps every sentence it is given in memory (it builds a suffix array over them), so for
large corpora `input_sentence_size` makes it keep a uniform random sample of that many sentences
(reservoir sampling over the stream; `shuffle_input_sentence` is on by default). Everything else that
sentencepiece's trainer accepts can be passed through `options`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

MODEL_TYPES = ("bpe", "unigram")


@dataclass
class SentencePieceResult:
    model_path: Path
    vocab_path: Path
    vocab_size: int
    lines: int = 0
    words: int = 0
    distinct_words: int = 0
    options: dict[str, object] = field(default_factory=dict)


class _CountingIterator:
    """Passes sentences through while counting lines and whitespace-separated words."""

    def __init__(self, lines: Iterable[str], progress: Callable[[int], None] | None) -> None:
        self._lines = iter(lines)
        self._progress = progress
        self.lines = 0
        self.words = 0
        self.distinct: set[str] = set()

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        tokens = line.split()
        self.lines += 1
        self.words += len(tokens)
        self.distinct.update(tokens)
        if self._progress is not None:
            self._progress(1)
        return line


def parse_options(pairs: Iterable[str]) -> dict[str, str]:
    """`key=value` strings (the CLI's `--spm-option`) as a dict."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected key=value, got {pair!r}")
        out[key.strip().lstrip("-")] = value.strip()
    return out


def train_sentencepiece(
    lines: Iterable[str],
    out_dir: str | os.PathLike,
    *,
    model_type: str,
    vocab_size: int,
    input_sentence_size: int = 0,
    character_coverage: float = 0.9995,
    byte_fallback: bool = False,
    user_defined_symbols: Iterable[str] = (),
    options: Mapping[str, object] | None = None,
    num_threads: int | None = None,
    progress: Callable[[int], None] | None = None,
    verbose: bool = False,
) -> SentencePieceResult:
    """Train `DIR/spm.model` and `DIR/spm.vocab` from `lines`."""
    import sentencepiece as spm

    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type must be one of {MODEL_TYPES}, not {model_type!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prefix = out / "spm"
    kwargs: dict[str, object] = {
        "model_type": model_type,
        "vocab_size": vocab_size,
        "input_sentence_size": input_sentence_size,
        "shuffle_input_sentence": True,
        "character_coverage": character_coverage,
        "byte_fallback": byte_fallback,
        "num_threads": num_threads or os.cpu_count() or 1,
        "minloglevel": 0 if verbose else 2,
    }
    symbols = [s for s in user_defined_symbols if s]
    if symbols:
        kwargs["user_defined_symbols"] = symbols
    kwargs.update(options or {})
    counted = _CountingIterator(lines, progress)
    spm.SentencePieceTrainer.train(sentence_iterator=counted, model_prefix=str(prefix), **kwargs)
    model = spm.SentencePieceProcessor(model_file=str(prefix) + ".model")
    return SentencePieceResult(
        model_path=Path(str(prefix) + ".model"),
        vocab_path=Path(str(prefix) + ".vocab"),
        vocab_size=model.get_piece_size(),
        lines=counted.lines,
        words=counted.words,
        distinct_words=len(counted.distinct),
        options=kwargs,
    )
