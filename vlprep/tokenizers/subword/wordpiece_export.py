"""Writing a WordPiece vocabulary: BERT's `vocab.txt` and a Hugging Face `tokenizer.json`.

The `tokenizer.json` describes the same pipeline as `BertWordPieceTokenizer(vocab.txt)`: BertNormalizer,
BertPreTokenizer, the WordPiece model, [CLS] ... [SEP] post-processing and the WordPiece decoder, with
the special tokens registered as added tokens (matched in raw text, never split).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence


def write_vocab_txt(tokens: Sequence[str], path: str | os.PathLike) -> None:
    for t in tokens:
        if not t or any(ch.isspace() for ch in t):
            raise ValueError(f"a vocab.txt token cannot be empty or contain whitespace: {t!r}")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(t + "\n" for t in tokens))


def tokenizer_json(
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
) -> dict:
    vocab = {t: i for i, t in enumerate(tokens)}
    if unk_token not in vocab:
        raise ValueError(f"the unknown token {unk_token!r} is not in the vocabulary")
    post = None
    if cls_token in vocab and sep_token in vocab:
        post = {
            "type": "BertProcessing",
            "sep": [sep_token, vocab[sep_token]],
            "cls": [cls_token, vocab[cls_token]],
        }
    added = [
        {
            "id": vocab[t],
            "content": t,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for t in special_tokens
        if t in vocab
    ]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {
            "type": "BertNormalizer",
            "clean_text": True,
            "handle_chinese_chars": True,
            "strip_accents": lowercase if strip_accents is None else strip_accents,
            "lowercase": lowercase,
        },
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": post,
        "decoder": {"type": "WordPiece", "prefix": prefix, "cleanup": True},
        "model": {
            "type": "WordPiece",
            "unk_token": unk_token,
            "continuing_subword_prefix": prefix,
            "max_input_chars_per_word": max_input_chars_per_word,
            "vocab": vocab,
        },
    }


def write_tokenizer_json(tokens: Sequence[str], path: str | os.PathLike, **options: object) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(tokenizer_json(tokens, **options), f, ensure_ascii=False, indent=2)  # type: ignore[arg-type]
        f.write("\n")
