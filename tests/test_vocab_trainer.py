"""The WordPiece trainer: the two criteria, agreement with a from-scratch reference, vocabulary layout."""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
from collections import Counter

import pytest

from vlprep.tokenizers.subword import BertPreTokenizer, WordPieceTokenizer, wordpiece_trainer
from vlprep.tokenizers.subword.errors import VocabError
from vlprep.tokenizers.subword.likelihood_selection import likelihood_gain
from vlprep.tokenizers.subword.wordpiece_trainer import merged_piece, train_wordpiece

SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def reference_train(
    word_counts, vocab_size, criterion, min_frequency, initial, max_piece_length=None, min_gain=None
):
    """Recount every pair and symbol from scratch and score every pair before each merge: slow, obviously
    right. Returns (tokens, merges)."""
    strings = list(initial)
    sid = {s: i for i, s in enumerate(strings)}
    words = [([sid[w[0]]] + [sid["##" + ch] for ch in w[1:]], c) for w, c in word_counts.items()]
    excluded = set()
    merges = []
    while len(strings) < vocab_size:
        pairs, symbols, merged_by = Counter(), Counter(), Counter()
        for syms, c in words:
            for s in syms:
                symbols[s] += c
            for x, y in zip(syms, syms[1:]):
                pairs[(x, y)] += c
            for x, y in set(zip(syms, syms[1:])):  # occurrences a merge would replace
                i = n = 0  # left to right, non-overlapping (matters where x == y)
                while i + 1 < len(syms):
                    if syms[i] == x and syms[i + 1] == y:
                        n += 1
                        i += 2
                    else:
                        i += 1
                merged_by[(x, y)] += n * c
        total = sum(symbols.values())
        cands = [(k, v) for k, v in pairs.items() if v >= min_frequency and k not in excluded]
        if not cands:
            break
        if criterion == "likelihood":
            scored = [
                (-likelihood_gain(merged_by[k], symbols[k[0]], symbols[k[1]], total, k[0] == k[1]), k)
                for k, _ in cands
            ]
        else:
            scored = [(-v, k) for k, v in cands]
        neg, (a, b) = min(scored)
        if min_gain is not None and -neg < min_gain:
            break
        piece = merged_piece(strings[a], strings[b])
        if max_piece_length is not None and len(piece.removeprefix("##")) > max_piece_length:
            excluded.add((a, b))
            continue
        if piece not in sid:
            sid[piece] = len(strings)
            strings.append(piece)
        merges.append((strings[a], strings[b]))
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
    return strings, merges


def unigram_log_likelihood(symbol_counts):
    n = sum(symbol_counts)
    return sum(c * math.log(c / n) for c in symbol_counts if c > 0)


def test_likelihood_gain_is_the_change_in_corpus_likelihood():
    # L recomputed from the symbol counts before and after merging, against the closed form
    rng = random.Random(0)
    for _ in range(2000):
        same = rng.random() < 0.3
        c = rng.randint(1, 50)
        count_a = rng.randint(2 * c if same else c, 400)
        count_b = count_a if same else rng.randint(c, 400)
        others = [rng.randint(0, 300) for _ in range(rng.randint(0, 5))]
        before = [count_a, *others] if same else [count_a, count_b, *others]
        after = [count_a - 2 * c, c, *others] if same else [count_a - c, count_b - c, c, *others]
        expected = unigram_log_likelihood(after) - unigram_log_likelihood(before)
        got = likelihood_gain(c, count_a, count_b, sum(before), same)
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-7)


def test_likelihood_gain_is_not_the_old_ratio():
    # by the ratio c/(c_a c_b), 3 occurrences of two symbols seen only together (1/3) beat 100 of two
    # seen 200 times each (1/400); the likelihood gains the other way round
    n = 10_000
    assert likelihood_gain(100, 200, 200, n) > 10 * likelihood_gain(3, 3, 3, n) > 0


def test_vocabulary_layout_and_exact_size():
    counts = {"hello": 5, "help": 3, "yellow": 4, "low": 7, "fellow": 2}
    vocab = train_wordpiece(counts, 27, criterion="likelihood", min_frequency=1)
    assert len(vocab.tokens) == 27 and len(set(vocab.tokens)) == 27
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


def test_criteria_disagree_where_the_gain_is_not_the_count():
    # "e ##x" is the most frequent pair, but e and ##x are as common apart as together: joining them
    # lowers the likelihood (gain < 0); "t ##h" is rarer, and t and h only occur together
    counts = {"ex": 500, "ey": 450, "ez": 450, "ax": 450, "bx": 450, "th": 200}
    base = len(SPECIALS) + len("abehtxyz") + len(["##h", "##x", "##y", "##z"])
    lik = train_wordpiece(counts, base + 1, criterion="likelihood")
    freq = train_wordpiece(counts, base + 1, criterion="frequency")
    assert freq.merges == [("e", "##x")]
    assert lik.merges == [("t", "##h")]
    n = 2 * sum(counts.values())
    assert likelihood_gain(500, 1400, 1400, n) < 0 < likelihood_gain(200, 200, 200, n)


def random_corpus(rng):
    # "#" makes merged pieces collide with "##" continuation symbols ("#" + "##" -> "##", ...); "aaaa"
    # runs test the a == b case (a merge replaces fewer occurrences than there are adjacent pairs)
    alphabet = rng.choice(["abcde"[: rng.randint(2, 5)], "ab#", "#", "aab"])
    counts: dict[str, int] = {}
    for _ in range(rng.randint(1, 30)):
        w = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 9)))
        counts[w] = counts.get(w, 0) + rng.randint(1, 20)
    return counts


def batch_everything(monkeypatch):
    """Every merge through the numpy path that large ones take, every lapsed exact key of a gain >= 0
    renewed exactly, and after every merge each candidate's key checked to bound its gain (a loose bound
    can leave the merges unchanged on a given corpus)."""
    for name, value in (("_BULK", 1), ("_NEAR", 0.0), ("_CHECK_KEYS", True)):
        monkeypatch.setattr(wordpiece_trainer, name, value)


@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("criterion", ["likelihood", "frequency"])
def test_matches_reference_on_random_corpora(criterion, batched, monkeypatch):
    if batched:
        batch_everything(monkeypatch)
    rng = random.Random(7)
    for _ in range(150):
        counts = random_corpus(rng)
        min_frequency = rng.choice([1, 2, 3])
        alphabet = set("".join(counts)) | {"##" + ch for w in counts for ch in w[1:]}
        vocab_size = 1 + len(alphabet) + rng.randint(0, 60)
        max_len = rng.choice([None, None, 3])
        min_gain = rng.choice([None, None, 0.0, 5.0]) if criterion == "likelihood" else None
        ours = train_wordpiece(
            counts,
            vocab_size,
            criterion=criterion,
            min_frequency=min_frequency,
            special_tokens=["[UNK]"],
            max_piece_length=max_len,
            min_gain=min_gain,
            eps=rng.choice([0.05, 0.5]),
        )
        initial = ours.tokens[: 1 + ours.alphabet_size]
        tokens, merges = reference_train(
            counts, vocab_size, criterion, min_frequency, initial, max_len, min_gain
        )
        assert ours.merges == merges, (counts, vocab_size, min_frequency)
        assert ours.tokens == tokens


@pytest.mark.parametrize("batched", [False, True])
def test_matches_reference_on_real_text(real_text, batched, monkeypatch):
    # English prose (Python's own docstrings), where word frequencies are Zipfian and many pairs tie
    if batched:
        batch_everything(monkeypatch)
    counts = BertPreTokenizer().count_words("\n".join(real_text[:400]))
    ours = train_wordpiece(counts, 700, special_tokens=["[UNK]"])
    tokens, merges = reference_train(counts, 700, "likelihood", 2, ours.tokens[: 1 + ours.alphabet_size])
    assert len(merges) > 400
    assert ours.merges == merges
    assert ours.tokens == tokens


def test_min_gain_stops_early():
    rng = random.Random(5)
    counts = Counter("".join(rng.choice("abcdefg") for _ in range(rng.randint(2, 8))) for _ in range(300))
    full = train_wordpiece(counts, 400, min_frequency=1)
    stopped = train_wordpiece(counts, 400, min_frequency=1, min_gain=0.0)
    assert len(stopped.tokens) < len(full.tokens)
    assert stopped.tokens == full.tokens[: len(stopped.tokens)]
    with pytest.raises(ValueError):
        train_wordpiece(counts, 400, criterion="frequency", min_gain=0.0)


def test_refresh_tolerance_does_not_change_result():
    rng = random.Random(3)
    counts = Counter("".join(rng.choice("abcdefg") for _ in range(rng.randint(2, 10))) for _ in range(400))
    runs = [train_wordpiece(counts, 200, eps=eps).tokens for eps in (0.001, 0.05, 0.5, 3.0)]
    assert runs[0] == runs[1] == runs[2] == runs[3]


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


def test_likelihood_vocabulary_is_usable_on_real_text(real_text):
    # The defect this criterion replaced (count(ab)/(count(a)count(b))) left "the", "and", "that" out of an
    # 8000-piece vocabulary and needed 2.6 tokens per held-out word against 1.05 for frequency.
    cut = len(real_text) * 85 // 100
    pre = BertPreTokenizer()
    counts = pre.count_words("\n".join(real_text[:cut]))
    held_out = pre.words("\n".join(real_text[cut:]))
    tokens = {}
    for criterion in ("likelihood", "frequency"):
        vocab = train_wordpiece(counts, 2000, criterion=criterion)
        assert len(vocab.tokens) == 2000
        if criterion == "likelihood":
            assert [w for w, _ in counts.most_common(100) if w not in set(vocab.tokens)] == []
        tok = WordPieceTokenizer(vocab.tokens)
        tokens[criterion] = sum(len(tok.tokenize_word(w)) for w in held_out)
    assert tokens["likelihood"] <= 1.05 * tokens["frequency"]


@pytest.fixture(scope="module")
def real_text():
    from real_text import stdlib_docstring_lines

    lines = stdlib_docstring_lines()
    assert len(lines) > 10_000
    return lines


def test_vocab_size_below_the_alphabet_is_refused():
    with pytest.raises(VocabError, match="below the 5 special tokens plus the 5 characters"):
        train_wordpiece({"abc": 3}, 9)
    assert len(train_wordpiece({"abc": 3}, 10).tokens) == 10


def test_trains_where_numba_has_nowhere_to_cache(tmp_path):
    # A read-only install without a writable home leaves numba no cache directory; it then refuses
    # `cache=True` with a RuntimeError at import. The selection must still compile (afresh) and train.
    # NUMBA_CACHE_LOCATOR_CLASSES limits numba to a locator that finds nothing without NUMBA_CACHE_DIR.
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env["NUMBA_CACHE_LOCATOR_CLASSES"] = "UserProvidedCacheLocator"
    code = (
        "from vlprep.tokenizers.subword.wordpiece_trainer import train_wordpiece\n"
        "print(train_wordpiece({'hello': 5, 'help': 3, 'yellow': 4}, 22, min_frequency=1).tokens)"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    expected = train_wordpiece({"hello": 5, "help": 3, "yellow": 4}, 22, min_frequency=1).tokens
    assert out.stdout.strip() == repr(expected)
