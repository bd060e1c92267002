"""BPE and unigram vocabularies with sentencepiece, fed by an iterator over the corpus readers.

sentencepiece keeps every sentence it is given in memory (it builds a suffix array over them), so for
large corpora `input_sentence_size` makes it keep a uniform random sample of that many sentences
(reservoir sampling over the stream; `shuffle_input_sentence` is on by default). Everything else that
sentencepiece's trainer accepts can be passed through `options`.

`hard_vocab_limit` is off unless given: a corpus too small for `vocab_size` then yields a smaller model
instead of an error. sentencepiece's errors ("INTERNAL: src/trainer_interface.cc(638) [...] ...") are
turned into one line in our words (`VocabError`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from vlprep.tokenizers.subword.errors import VocabError

MODEL_TYPES = ("bpe", "unigram")
_SPM_PREFIX = re.compile(r"^[A-Z_]+: (?:\S+\.cc\(\d+\) \[.*?\] ?)?")


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
        "hard_vocab_limit": False,
    }
    symbols = [s for s in user_defined_symbols if s]
    if symbols:
        kwargs["user_defined_symbols"] = symbols
    kwargs.update(options or {})
    counted = _CountingIterator(lines, progress)
    try:
        spm.SentencePieceTrainer.train(sentence_iterator=counted, model_prefix=str(prefix), **kwargs)
    except (RuntimeError, ValueError, OSError) as exc:
        raise spm_error(str(exc)) from exc
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


def spm_error(message: str) -> VocabError:
    """sentencepiece's error message as one line for the user."""
    text = " ".join(message.split())
    m = re.search(r"Vocabulary size is smaller than required_chars\. (\d+) vs (\d+)", text)
    if m:
        return VocabError(
            f"--vocab-size {m.group(1)} is below the {m.group(2)} pieces sentencepiece needs for the "
            f"characters of the corpus and its special pieces: ask for at least {m.group(2)} "
            "(or lower --character-coverage)",
            usage=True,
        )
    m = re.search(r"Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)", text)
    if m:
        return VocabError(
            f"sentencepiece cannot make {m.group(1)} pieces from this corpus, at most {m.group(2)} "
            "(with hard_vocab_limit=true): give more text or a smaller --vocab-size"
        )
    m = re.search(r'unknown field name "([^"]+)"', text)
    if m:
        return VocabError(f"sentencepiece has no trainer option {m.group(1)!r} (--spm-option)", usage=True)
    if text.startswith("INVALID_ARGUMENT"):
        return VocabError(f"sentencepiece: {_SPM_PREFIX.sub('', text)}", usage=True)
    return VocabError(f"sentencepiece failed: {_SPM_PREFIX.sub('', text) or 'no reason given'}")
