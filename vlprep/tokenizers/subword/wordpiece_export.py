"""Writing a WordPiece vocabulary: BERT's `vocab.txt`, and a Hugging Face `tokenizer.json` built with the
`tokenizers` library itself.

The tokenizer is the pipeline of `BertWordPieceTokenizer(vocab.txt)`: BertNormalizer, BertPreTokenizer,
the WordPiece model, [CLS] ... [SEP] post-processing and the WordPiece decoder, with the special tokens
registered as added tokens (matched in raw text, never split).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors


def write_vocab_txt(tokens: Sequence[str], path: str | os.PathLike) -> None:
    for t in tokens:
        if not t or any(ch.isspace() for ch in t):
            raise ValueError(f"a vocab.txt token cannot be empty or contain whitespace: {t!r}")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(t + "\n" for t in tokens))


def wordpiece_tokenizer(
    tokens: Sequence[str],
    *,
    special_tokens: Sequence[str],
    lowercase: bool = True,
    strip_accents: bool | None = None,
    unk_token: str = "[UNK]",
    prefix: str = "##",
    max_input_chars_per_word: int = 100,
    cls_token: str = "[CLS]",
    sep_token: str = "[SEP]",
) -> Tokenizer:
    """A Hugging Face `Tokenizer` for a WordPiece vocabulary (`tokens` in id order)."""
    vocab = {t: i for i, t in enumerate(tokens)}
    if unk_token not in vocab:
        raise ValueError(f"the unknown token {unk_token!r} is not in the vocabulary")
    tok = Tokenizer(
        models.WordPiece(
            vocab,
            unk_token=unk_token,
            continuing_subword_prefix=prefix,
            max_input_chars_per_word=max_input_chars_per_word,
        )
    )
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True,
        handle_chinese_chars=True,
        strip_accents=lowercase if strip_accents is None else strip_accents,
        lowercase=lowercase,
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix=prefix)
    if cls_token in vocab and sep_token in vocab:
        tok.post_processor = processors.BertProcessing(
            (sep_token, vocab[sep_token]), (cls_token, vocab[cls_token])
        )
    tok.add_special_tokens([t for t in special_tokens if t in vocab])
    return tok


def write_tokenizer_json(tokens: Sequence[str], path: str | os.PathLike, **options: object) -> None:
    wordpiece_tokenizer(tokens, **options).save(os.fspath(path))  # type: ignore[arg-type]
