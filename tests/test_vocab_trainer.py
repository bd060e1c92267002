"""The WordPiece trainer: the two criteria, agreement with a from-scratch reference, vocabulary layout."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from vlprep.tokenizers.subword import wordpiece_trainer
from vlprep.tokenizers.subword.wordpiece_trainer import merged_piece, train_wordpiece

SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def reference_train(word_counts, vocab_size, criterion, min_frequency, initial, max_piece_length=None):
    """Recount every pair and symbol from scratch before each merge: slow, obviously right."""
    strings = list(initial)
    sid = {s: i for i, s in enumerate(strings)}
    words = [([sid[w[0]]] + [sid["##" + ch] for ch in w[1:]], c) for w, c in word_counts.items()]
    excluded = set()
    while len(strings) < vocab_size:
        pairs, symbols = Counter(), Counter()
        for syms, c in words:
            for s in syms:
                symbols[s] += c
            for x, y in zip(syms, syms[1:]):
                pairs[(x, y)] += c
        cands = [(k, v) for k, v in pairs.items() if v >= min_frequency and k not in excluded]
        if not cands:
            break
        if criterion == "likelihood":
            (a, b), _ = min(cands, key=lambda kv: (-(kv[1] / (symbols[kv[0][0]] * symbols[kv[0][1]])), kv[0]))
        else:
            (a, b), _ = min(cands, key=lambda kv: (-kv[1], kv[0]))
        piece = merged_piece(strings[a], strings[b])
        if max_piece_length is not None and len(piece.removeprefix("##")) > max_piece_length:
            excluded.add((a, b))
            continue
        if piece not in sid:
            sid[piece] = len(strings)
            strings.append(piece)
        new = sid[piece]
        merged = []
        for syms, c in words:
            out, i = [], 0
            while i < len(syms):
                if i + 1 < len(syms) and syms[i] == a and syms[i + 1] == b:
                    out.append(new)
                    i += 2
                else:
                    out.append(syms[i])
                    i += 1
            merged.append((out, c))
        words = merged
    return strings


def test_criteria_disagree_on_first_merge():
    # "ab" is the most frequent pair; "zq" is rarer, but z and q never occur apart, so merging them gains
    # the most likelihood: 4 / (4 * 4) = 0.25 against 12 / (42 * 12) for a + ##b.
    counts = {"ab": 12, "ac": 10, "ad": 10, "ae": 10, "zq": 4}
    base = len(SPECIALS) + len("abcdeqz") + len("bcdeq")
    lik = train_wordpiece(counts, base + 1, criterion="likelihood")
    freq = train_wordpiece(counts, base + 1, criterion="frequency")
    assert lik.tokens[base:] == ["zq"]
    assert freq.tokens[base:] == ["ab"]
    assert lik.merges == [("z", "##q")] and freq.merges == [("a", "##b")]


def test_vocabulary_layout_and_exact_size():
    counts = {"hello": 5, "help": 3, "yellow": 4, "low": 7, "fellow": 2}
    vocab = train_wordpiece(counts, 30, criterion="likelihood", min_frequency=1)
    assert len(vocab.tokens) == 30 and len(set(vocab.tokens)) == 30
    assert vocab.tokens[:5] == list(SPECIALS)
    alphabet = vocab.tokens[5 : 5 + vocab.alphabet_size]
    initial = [t for t in alphabet if not t.startswith("##")]
    continuing = [t for t in alphabet if t.startswith("##")]
    assert alphabet == initial + continuing
    assert initial == sorted(set("helloyellowlowfellowhelp"))
    assert continuing == ["##" + c for c in sorted(set("elloelpellowowellow"))]
    learned = vocab.tokens[5 + vocab.alphabet_size :]
    assert learned == [merged_piece(a, b) for a, b in vocab.merges]


def test_stops_when_pairs_run_out():
    vocab = train_wordpiece({"abc": 3}, 1000, min_frequency=1)
    assert vocab.tokens[-2:] in (["ab", "abc"], ["##bc", "abc"])
    assert len(vocab.tokens) == 5 + 5 + 2


@pytest.mark.parametrize("criterion", ["likelihood", "frequency"])
def test_matches_reference_on_random_corpora(criterion):
    rng = random.Random(7)
    for _ in range(120):
        # "#" makes merged pieces collide with "##" continuation symbols ("#" + "##" -> "##", ...)
        alphabet = rng.choice(["abcde"[: rng.randint(2, 5)], "ab#", "#"])
        counts: dict[str, int] = {}
        for _ in range(rng.randint(1, 30)):
            w = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 9)))
            counts[w] = counts.get(w, 0) + rng.randint(1, 20)
        min_frequency = rng.choice([1, 2, 3])
        vocab_size = rng.randint(8, 70)
        max_len = rng.choice([None, None, 3])
        ours = train_wordpiece(
            counts,
            vocab_size,
            criterion=criterion,
            min_frequency=min_frequency,
            special_tokens=["[UNK]"],
            max_piece_length=max_len,
        )
        initial = ours.tokens[: 1 + ours.alphabet_size]
        expected = reference_train(counts, vocab_size, criterion, min_frequency, initial, max_len)
        assert ours.tokens == expected, (counts, vocab_size, min_frequency)


def test_refresh_tolerance_does_not_change_result():
    rng = random.Random(3)
    counts = Counter("".join(rng.choice("abcdefg") for _ in range(rng.randint(2, 10))) for _ in range(400))
    runs = [train_wordpiece(counts, 200, eps=eps).tokens for eps in (0.001, 0.05, 0.5)]
    assert runs[0] == runs[1] == runs[2]


def test_symbol_ids_skip_the_surrogate_block(monkeypatch):
    counts = {"abcab": 4, "bcd": 3, "dcab": 2, "ecd": 5}
    expected = train_wordpiece(counts, 24, min_frequency=1).tokens
    # put the gap where the alphabet and the learned pieces get their ids
    monkeypatch.setattr(wordpiece_trainer, "_SURROGATES", (8, 12))
    assert train_wordpiece(counts, 24, min_frequency=1).tokens == expected


def test_limit_alphabet_drops_rare_characters():
    counts = {"aaab": 10, "ab": 10, "xa": 1}
    vocab = train_wordpiece(counts, 50, limit_alphabet=2, min_frequency=1)
    assert "x" not in vocab.tokens and "##x" not in vocab.tokens
    assert all("x" not in t for t in vocab.tokens)


def test_max_piece_length():
    counts = {"abcdef": 50, "abcdefg": 20}
    vocab = train_wordpiece(counts, 100, max_piece_length=3, min_frequency=1)
    assert max(len(t.removeprefix("##")) for t in vocab.tokens[5:]) <= 3


def test_min_frequency_filters_candidates():
    vocab = train_wordpiece({"ab": 1, "cd": 5}, 100, min_frequency=2)
    assert "cd" in vocab.tokens and "ab" not in vocab.tokens


def test_rejects_unknown_criterion():
    with pytest.raises(ValueError):
        train_wordpiece({"ab": 1}, 10, criterion="bpe")
