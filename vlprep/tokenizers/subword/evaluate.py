"""Comparing trained vocabularies on held-out text (`vlprep vocab eval`).

Every vocabulary is run through its own tokenizer (Hugging Face `tokenizers` for WordPiece, sentencepiece
for its models), and measured with tokenizer-independent units, so WordPiece and sentencepiece
vocabularies can stand side by side:

- tokens per word: tokens over whitespace-separated words (lower is better: shorter sequences);
- characters per token: non-space characters over tokens (higher is better);
- unknown rate: share of tokens that are the unknown token ([UNK], <unk>);
- log-likelihood per word: sum over token types of c log(c / T) for the token counts c of the held-out text
  (T tokens), over words, in nats: the corpus likelihood under the unigram model fitted to its own
  tokens, the quantity WordPiece's likelihood criterion raises (closer to 0 is better);
- top words whole: share of the held-out text's N most frequent words (runs of letters and digits) that
  the tokenizer keeps as one known token.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from vlprep.tokenizers.subword.errors import VocabError
from vlprep.tokenizers.subword.wordpiece_trainer import DEFAULT_SPECIAL_TOKENS

_WORD = re.compile(r"[^\W_]+")

# (name, attribute, format, which way is better) for tables and plots
METRICS: tuple[tuple[str, str, str, str], ...] = (
    ("vocabulary size", "vocab_size", "{:d}", ""),
    ("tokens per word", "tokens_per_word", "{:.3f}", "lower"),
    ("characters per token", "chars_per_token", "{:.2f}", "higher"),
    ("unknown rate", "unk_rate", "{:.2%}", "lower"),
    ("log-likelihood per word", "loglik_per_word", "{:.2f}", "higher"),
    ("top words whole", "top_words_whole", "{:.0%}", "higher"),
)


@dataclass
class VocabEval:
    name: str
    path: str
    kind: str
    vocab_size: int
    words: int
    tokens: int
    unknown: int
    tokens_per_word: float
    chars_per_token: float
    unk_rate: float
    loglik_per_word: float
    top_words: int
    top_words_whole: float

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Encoder:
    kind: str
    vocab_size: int
    # lines -> one list of token ids per line; the unknown token's id
    encode: Callable[[list[str]], list[list[int]]]
    unk_id: int | None


def _resolve(path: Path) -> Path:
    if path.is_dir():
        for name in ("tokenizer.json", "vocab.txt", "spm.model"):
            if (path / name).is_file():
                return path / name
        raise VocabError(f"{path} holds no tokenizer.json, vocab.txt or spm.model", usage=True)
    return path


def load_encoder(path: str | os.PathLike) -> Encoder:
    """A WordPiece `tokenizer.json` or `vocab.txt`, or a sentencepiece `.model` (or a directory with one)."""
    path = _resolve(Path(path))
    if not path.is_file():
        raise VocabError(f"no such vocabulary file: {path}", usage=True)
    if path.suffix == ".model":
        import sentencepiece as spm

        try:
            sp = spm.SentencePieceProcessor(model_file=str(path))
        except (RuntimeError, OSError) as exc:
            raise VocabError(f"{path} is not a sentencepiece model ({exc})") from exc
        return Encoder("sentencepiece", sp.get_piece_size(), lambda lines: sp.encode(lines), sp.unk_id())
    from tokenizers import Tokenizer

    if path.suffix == ".json":
        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises plain Exception subclasses from Rust
            raise VocabError(f"{path} is not a Hugging Face tokenizer.json ({exc})") from exc
    else:
        from vlprep.tokenizers.subword.wordpiece_export import wordpiece_tokenizer
        from vlprep.tokenizers.subword.wordpiece_tokenizer import read_vocab

        try:
            tokens = read_vocab(path)
        except UnicodeDecodeError as exc:
            raise VocabError(f"{path} is not a vocab.txt (not UTF-8 text)") from exc
        specials = [t for t in DEFAULT_SPECIAL_TOKENS if t in tokens]
        if "[UNK]" not in tokens:
            raise VocabError(f"{path} is not a WordPiece vocab.txt: it has no [UNK] token")
        # a vocabulary without capitals was trained lower-cased
        lowercase = all(t == t.lower() for t in tokens if t not in specials)
        tok = wordpiece_tokenizer(tokens, special_tokens=specials, lowercase=lowercase)
    unk = getattr(tok.model, "unk_token", None)
    unk_id = tok.token_to_id(unk) if unk else None
    return Encoder(
        "wordpiece",
        tok.get_vocab_size(),
        lambda lines: [e.ids for e in tok.encode_batch(lines, add_special_tokens=False)],
        unk_id,
    )


def evaluate(encoder: Encoder, lines: Sequence[str], *, name: str, path: str, top: int = 100) -> VocabEval:
    words = chars = 0
    word_counts: Counter[str] = Counter()
    for line in lines:
        parts = line.split()
        words += len(parts)
        chars += sum(map(len, parts))
        word_counts.update(_WORD.findall(line))
    if words == 0:
        raise VocabError("the held-out corpus has no words")
    token_counts: Counter[int] = Counter()
    for ids in encoder.encode(list(lines)):
        token_counts.update(ids)
    tokens = sum(token_counts.values())
    unknown = token_counts.get(encoder.unk_id, 0) if encoder.unk_id is not None else 0
    loglik = sum(c * math.log(c / tokens) for c in token_counts.values()) if tokens else 0.0
    top_words = [w for w, _ in word_counts.most_common(top)]
    whole = sum(1 for ids in encoder.encode(top_words) if len(ids) == 1 and ids[0] != encoder.unk_id)
    return VocabEval(
        name=name,
        path=path,
        kind=encoder.kind,
        vocab_size=encoder.vocab_size,
        words=words,
        tokens=tokens,
        unknown=unknown,
        tokens_per_word=tokens / words,
        chars_per_token=chars / tokens if tokens else 0.0,
        unk_rate=unknown / tokens if tokens else 0.0,
        loglik_per_word=loglik / words,
        top_words=len(top_words),
        top_words_whole=whole / len(top_words) if top_words else 0.0,
    )


def short_names(paths: Sequence[str | os.PathLike]) -> list[str]:
    """Distinct short names for the table: the file name (its directory's for the standard names that
    training writes), with more parent directories where needed to tell them apart."""
    parts = []
    for p in paths:
        path = Path(p).absolute()
        if path.name in ("tokenizer.json", "vocab.txt", "spm.model"):
            path = path.parent
        parts.append(path.parts)
    for depth in range(1, max(map(len, parts)) + 1):
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    return [str(p) for p in paths]


def table(results: Sequence[VocabEval]) -> str:
    """Metrics as rows, vocabularies as columns."""
    header = ["", *(r.name for r in results)]
    rows = [header]
    for label, attr, fmt, better in METRICS:
        hint = f" ({better} is better)" if better else ""
        rows.append([label + hint, *(fmt.format(getattr(r, attr)) for r in results)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
