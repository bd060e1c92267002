"""WordPiece encoding in Python: BERT pre-tokenization, then greedy longest-match-first per word.

Token for token what Hugging Face's `BertWordPieceTokenizer(vocab.txt)` produces: special tokens found
in the raw text stay whole, a word longer than `max_input_chars_per_word` characters or one that cannot
be covered by vocabulary pieces becomes the unknown token as a whole.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

from vlprep.tokenizers.subword.bert_pretokenizer import BertPreTokenizer
from vlprep.tokenizers.subword.wordpiece_trainer import DEFAULT_SPECIAL_TOKENS


def read_vocab(path: str | os.PathLike) -> list[str]:
    """A BERT `vocab.txt`: one token per line, the line number is the id."""
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n").rstrip("\r") for line in f]


class WordPieceTokenizer:
    def __init__(
        self,
        vocab: Iterable[str],
        *,
        lowercase: bool = True,
        strip_accents: bool | None = None,
        unk_token: str = "[UNK]",
        prefix: str = "##",
        max_input_chars_per_word: int = 100,
        special_tokens: Iterable[str] | None = None,
    ) -> None:
        self.vocab: dict[str, int] = {}
        for token in vocab:
            self.vocab.setdefault(token, len(self.vocab))
        self.id_to_token = {i: t for t, i in self.vocab.items()}
        self.unk_token = unk_token
        self.prefix = prefix
        self.max_input_chars_per_word = max_input_chars_per_word
        self.pretokenizer = BertPreTokenizer(lowercase=lowercase, strip_accents=strip_accents)
        if special_tokens is None:  # as BertWordPieceTokenizer: the usual five, where the vocabulary has them
            special_tokens = [t for t in DEFAULT_SPECIAL_TOKENS if t in self.vocab]
        self.special_tokens = list(special_tokens)
        self._longest = max((len(t) for t in self.vocab), default=1)
        # special tokens are matched in the raw text, longest first, before any normalization
        specials = sorted(self.special_tokens, key=len, reverse=True)
        self._special_re = re.compile("(" + "|".join(map(re.escape, specials)) + ")") if specials else None

    @classmethod
    def from_vocab(
        cls, path: str | os.PathLike, lowercase: bool = True, **kwargs: object
    ) -> WordPieceTokenizer:
        return cls(read_vocab(path), lowercase=lowercase, **kwargs)  # type: ignore[arg-type]

    def tokenize_word(self, word: str) -> list[str]:
        """Greedy longest-match-first pieces of one pre-tokenized word."""
        n = len(word)
        if n > self.max_input_chars_per_word:
            return [self.unk_token]
        vocab = self.vocab
        pieces = []
        start = 0
        while start < n:
            end = min(n, start + self._longest)
            piece = None
            while start < end:
                sub = word[start:end]
                if start > 0:
                    sub = self.prefix + sub
                if sub in vocab:
                    piece = sub
                    break
                end -= 1
            if piece is None:
                return [self.unk_token]
            pieces.append(piece)
            start = end
        return pieces

    def tokenize(self, text: str) -> list[str]:
        segments = self._special_re.split(text) if self._special_re is not None else [text]
        out: list[str] = []
        for i, segment in enumerate(segments):
            if i % 2 == 1:  # a special token (re.split puts the matches at odd positions)
                out.append(segment)
                continue
            for word in self.pretokenizer.words(segment):
                out.extend(self.tokenize_word(word))
        return out

    def encode(self, text: str) -> list[int]:
        unk = self.vocab.get(self.unk_token)
        return [self.vocab.get(t, unk) for t in self.tokenize(text)]  # type: ignore[misc]
