"""WordPiece vocabulary training by bottom-up merges.

Words start as characters, the first as is and the others as `##` continuation pieces. Each step merges
the adjacent pair (a, b) with the best score:

- `likelihood` (WordPiece as Schuster & Nakajima and BERT describe it): the exact gain in log-likelihood
  of the corpus under a unigram model of its symbols with maximum-likelihood probabilities,
  L = sum_s c(s) log(c(s) / N). Merging (a, b), which occurs c times, makes c(a) -> c(a) - c,
  c(b) -> c(b) - c, c(ab) = c and N -> N - c, so with f(x) = x log x (f(0) = 0)

      gain = f(c) + f(c_a - c) - f(c_a) + f(c_b - c) - f(c_b) + f(N) - f(N - c)        (a != b)
      gain = f(c) + f(c_a - 2c) - f(c_a) + f(N) - f(N - c)                              (a == b)

  where for a == b, c is the number of occurrences a merge replaces (non-overlapping, left to right:
  "##a ##a ##a" merges once). See `likelihood_gain`.
- `frequency`: count(ab), what Hugging Face's WordPieceTrainer does (it is BPE with a `##` prefix).

Counts are weighted by word frequency. Only pairs seen at least `min_frequency` times (adjacent
occurrences) are candidates. Ties go to the pair whose (left id, right id) is smallest, ids being the
order in which tokens enter the vocabulary. `min_gain` stops the likelihood criterion once the best gain
falls below it (the "likelihood no longer increases enough" stop of the WordPiece description).

Incremental updates for `likelihood`, and why they are exact
--------------------------------------------------------------
Facts about the gain G(c, c_a, c_b, N) (derivatives of the formula above; a == b reads c_b as absent and
c_a - 2c for c_a - c):

  (i)   dG/dN   = log(N / (N - c)) >= 0, and N only falls (each merge lowers it by c >= 1);
  (ii)  dG/dc_a = log((c_a - c) / c_a) <= 0: fewer a's, higher gain;
  (iii) dG/dc   = log(c (N - c) / ((c_a - c)(c_b - c))) has either sign: G is not monotone in c;
  (iv)  d2G/dc2 = 1/c + 1/(c_a - c) + 1/(c_b - c) - 1/(N - c) > 0 (as N - c >= c), and G = 0 at c = 0:
        G is convex in c, so for c' < c, G(c') <= max(G(c), 0).

A merge of (a, b) lowers c_a and c_b, which by (ii) *raises* the gain of every other pair holding a or
b, and it lowers the counts of the pairs around its occurrences, which by (iii) can raise theirs too. So
keys must be built to stay upper bounds. Each symbol x keeps a reference count R_x and a floor
F_x = R_x / (1 + eps), and

  (I1) c_x >= F_x at all times: after a merge, a and b (the only symbols whose counts fall; the merged
       symbol's count only rises) are checked, and one below its floor is *refreshed*: R_x := c_x and
       every live pair holding x is re-keyed.

An entry's key K for a pair p = (a, b) of count c is one of two kinds:

  floor key  K = G(c, max(F_a, c), max(F_b, c), N_then)     (a == b: G(c, max(F_a, 2c), N_then));
  exact key  K = G(c, c_a, c_b, N_then), given to pairs popped and not chosen (see below), and renewed
             when it lapses (c_a, c_b or c fell) if it was at least half the gain of the merge at hand:
             those pairs are near the top, and a floor key would have them popped and examined again
             (that was 70% of all examinations at 50 MB / 30k); the others go back to floor keys.

Claim: K >= G(p) now, for every live entry. Exact keys: they are replaced (by a new exact key or a floor
key) whenever c_a, c_b (a or b is merged: every exact-keyed pair is listed under both its symbols) or c
fall (a count falls only for pairs holding a or b), so c, c_a, c_b are as when keyed and only N fell: (i).
Floor keys: F_a and F_b have not changed (a refresh re-keys), c_a >= F_a (I1) and c_a >= c (every
occurrence of p holds an a; 2c for a == b), so by (ii) and (i), G(c, c_a, c_b, N) <= K while c is as
when keyed. A merge that lowers c re-keys p only where K < 0. For K >= 0, let
H(c') = G(c', max(F_a, c'), max(F_b, c'), N_then): once c has fallen to c', G(p) <= H(c') by (ii) and (i)
(c_a >= F_a and c_a >= c'), and H(old) = K. H is 0 at 0, convex below min(F_a, F_b) (iv), and increasing
above it: there a term whose floor is below c' reads c_x = c', so dH/dc' = log((N - c') / (F_x - c')) for
the other x, or log((N - c') / c') where both do, and c' <= N / 2 (occurrences of a pair a != b never
overlap). So H(c') <= max(H(old), 0) = K for every c' <= old, over any number of falls. Pairs with
a == b are always re-keyed when touched; their c (occurrences a merge replaces, left to right) is the
adjacent-pair count less, for every run of n >= 3 x's, n - 1 - n // 2 (the words holding such runs are
indexed). []

Selection: entries are popped in key order while their key is >= the best exact gain found so far (on a
tie of values, while their pair id is smaller); each popped pair's exact gain is computed. Every pair not
popped has gain <= key <= that best, so the best popped pair is the argmax over all candidates, ties
included. The popped losers go back with exact keys, which keeps the pairs near the top from being popped
again on every step; entries superseded by a newer key for the same pair are recognised (`last_key`).
`last_key` holds exactly the live entries, so once most of the heap (runs included) is superseded it
is rebuilt from `last_key`, as one run: the same live keys, hence the same selection, on a smaller heap.

Runs: a large batch of keys (the start, a merge's re-keys and refreshes, a rebuild) is not pushed pair by
pair. It is sorted and enters the heap as one entry whose key is the run's best remaining key and whose
pair is "", which sorts before every pair; popping that entry pushes the run's next members (those still
live) and the entry again, keyed by the member after them. So every live key is in the heap or behind a
run entry that comes no later than it, and the pops above reach every entry whose key may reach the
best: the selection is unchanged. The many refreshed pairs that never come near the top so cost no heap
push.

Cost: x is refreshed only when its count has fallen by a factor 1 + eps, at most
log(c_x(start) / c_x(end)) / log(1 + eps) times; a larger eps means fewer refreshes and looser floor keys
(more pairs popped once); at 50 MB / 30k pieces every eps from 0.5 to 2 took the same time within
the machine's noise, so the default is 1. A merge's re-keys, its renewed exact keys and the re-keys of the
symbols it refreshes are keyed in one batch, in numpy (`floor_keys`, an exact key being the floor key with
the counts as floors) where there are many; they are the same bounds, so the argument above does not
depend on how they are computed.

Floating point: the gain is written with log1p so that it never subtracts numbers of size N log N, and
keys carry a relative margin of 1e-9, far above rounding (math's or numpy's logarithms, a few ulp), so
rounding cannot turn a key into less than the gain it bounds. Exact gains come from the one function
`likelihood_gain`, so equal counts give equal floats.

Merging: a merge visits the words that hold the pair (an index from pair to words, which may list words
that no longer hold it). Where there are many, `_merge_bulk` does it in numpy on the words laid end to
end: with one occurrence in a word the pairs lost and gained are fixed by its neighbours, so they are
tallied per neighbour symbol; words with several occurrences go word by word, as all do in small merges.

For `frequency` the key is the count itself, which only ever falls for existing pairs: the usual lazy
heap.
"""

from __future__ import annotations

import contextlib
import gc
import heapq
import itertools
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from operator import itemgetter

import numpy as np

from vlprep.tokenizers.subword.errors import VocabError

DEFAULT_SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
CRITERIA = ("likelihood", "frequency")
# Symbols are code points so that a word is a `str` of them: finding and replacing a pair is then
# `str.find` / `str.replace`, in C, and a pair is a 2-character string. The surrogate block is skipped.
_SURROGATES = (0xD800, 0xE000)
_MAX_SYMBOLS = 0x110000 - (_SURROGATES[1] - _SURROGATES[0])
# a merge touching at least this many words is done in numpy (_merge_bulk); below it, word by word
_BULK = 256
# keys are computed in numpy for batches of at least this many pairs (refreshes, large re-keys)
_VECTOR = 32
# a batch of at least _RUN keys enters the likelihood heap as one run, _RUN_SLICE members at a time
_RUN = 64
_RUN_SLICE = 16
# relative margin of keys over the gains they bound (module docstring: floating point)
_KEY_MARGIN = 1e-9
# an exact key that lapses is renewed as an exact key if it was at least this share of the merge's gain
_NEAR = 0.5
# tests set this: after every merge, every candidate's live key is checked to bound its exact gain
_CHECK_KEYS = False


@dataclass
class WordPieceVocab:
    """A trained vocabulary: `tokens` in id order (special tokens, alphabet, then learned pieces)."""

    tokens: list[str]
    special_tokens: list[str]
    alphabet_size: int
    merges: list[tuple[str, str]] = field(default_factory=list)
    prefix: str = "##"
    # why training stopped: "size" (reached vocab_size), "pairs" (no pair seen min_frequency times left),
    # "min_gain" (the best gain fell below min_gain)
    stop: str = "size"

    def __len__(self) -> int:
        return len(self.tokens)


def merged_piece(left: str, right: str, prefix: str = "##") -> str:
    """The piece made of `left` followed by the continuation piece `right`."""
    return left + (right[len(prefix) :] if right.startswith(prefix) else right)


def likelihood_gain(c: int, count_a: float, count_b: float, total: float, same: bool = False) -> float:
    """The exact change in L = sum_s c(s) log(c(s)/N) when c occurrences of the pair (a, b) become one
    symbol (see the module docstring); `same` for a == b, where `count_b` is ignored. Counts may be
    real-valued lower bounds (the trainer's floors).

    Each term f(m - k) - f(m), f(x) = x log x, is written m log1p(-k/m) - k log(m - k) so that it never
    subtracts two numbers of size m log m; it is -m log m where k = m. The terms are inline: this runs
    for every pair the trainer examines."""
    log, log1p = math.log, math.log1p
    g = c * log(c)
    k = 2 * c if same else c
    g += -count_a * log(count_a) if k >= count_a else count_a * log1p(-k / count_a) - k * log(count_a - k)
    if not same:
        g += -count_b * log(count_b) if c >= count_b else count_b * log1p(-c / count_b) - c * log(count_b - c)
    return g - (-total * log(total) if c >= total else total * log1p(-c / total) - c * log(total - c))


def _with_margin(g: float) -> float:
    """A gain raised by the key margin (module docstring: floating point)."""
    return g + _KEY_MARGIN * (abs(g) + 1.0)


def floor_keys(c: np.ndarray, floor_a: np.ndarray, floor_b: np.ndarray, total: float) -> np.ndarray:
    """The trainer's floor keys, negated, for pairs a != b of counts `c` and symbol floors `floor_a`,
    `floor_b` (arrays): `likelihood_gain(c, max(F_a, c), max(F_b, c), total)` plus the key margin."""
    c = c.astype(np.float64)
    c_log_c = c * np.log(c)
    g = c_log_c - total * np.log1p(-c / total) + c * np.log(total - c)
    for f in (floor_a, floor_b):
        above = f > c
        safe = np.where(above, f, c + 1.0)  # where F <= c the term is -c log c
        g += np.where(above, safe * np.log1p(-c / safe) - c * np.log(safe - c), -c_log_c)
    return -(g + _KEY_MARGIN * (np.abs(g) + 1.0))


def train_wordpiece(
    word_counts: Mapping[str, int],
    vocab_size: int,
    *,
    criterion: str = "likelihood",
    min_frequency: int = 2,
    min_gain: float | None = None,
    limit_alphabet: int | None = 1000,
    max_piece_length: int | None = None,
    special_tokens: tuple[str, ...] | list[str] = DEFAULT_SPECIAL_TOKENS,
    prefix: str = "##",
    eps: float = 1.0,
    progress: Callable[[int], None] | None = None,
) -> WordPieceVocab:
    """Learn a WordPiece vocabulary of `vocab_size` tokens (fewer if the corpus runs out of pairs or, for
    `likelihood`, the best gain falls below `min_gain`; more if the special tokens and the alphabet alone
    exceed it). `progress(n)` is called with merges done."""
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, not {criterion!r}")
    if min_gain is not None and criterion != "likelihood":
        raise ValueError("min_gain applies to the likelihood criterion only")
    if vocab_size >= _MAX_SYMBOLS:
        raise ValueError(f"vocab_size must be below {_MAX_SYMBOLS}")
    if eps <= 0:
        raise ValueError("eps must be positive")
    state = _MergeState(word_counts, special_tokens, limit_alphabet, prefix)
    n_alphabet = state.n_symbols - len(state.special_tokens)
    if vocab_size < state.n_symbols:
        raise VocabError(
            f"--vocab-size {vocab_size} is below the {len(state.special_tokens)} special tokens plus the "
            f"{n_alphabet} characters of the alphabet: ask for at least {state.n_symbols}"
            + (" (or lower --limit-alphabet)" if limit_alphabet is not None else ""),
            usage=True,
        )
    merges: list[tuple[str, str]] = []
    with _no_cyclic_gc():
        if state.pair_count:
            merges = (state.run_likelihood if criterion == "likelihood" else state.run_frequency)(
                vocab_size=vocab_size,
                min_frequency=max(1, min_frequency),
                max_piece_length=max_piece_length,
                progress=progress,
                **({"eps": eps, "min_gain": min_gain} if criterion == "likelihood" else {}),
            )
        vocab = WordPieceVocab(
            tokens=[t for t in state.strings if t is not None],
            special_tokens=state.special_tokens,
            alphabet_size=n_alphabet,
            merges=merges,
            prefix=prefix,
            stop="size" if state.n_symbols >= vocab_size else state.stop,
        )
        del state  # freed while the collector is off: re-enabling it then finds little to scan
    return vocab


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """The merge loops allocate millions of small containers (heap entries, word lists) and make no
    reference cycles, so Python's cycle collector only rescans them again and again: about an eighth of
    the CPU time at 50 MB / 30k pieces. Reference counting still frees everything. Drop the large
    structures before leaving: a collector re-enabled over millions of live containers starts with a
    full scan of them (0.2 s at 50 MB / 30k)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _MergeState:
    """Words as strings of symbol code points, pair counts keyed by 2-character strings, the
    pair -> words index, symbol counts."""

    def __init__(
        self,
        word_counts: Mapping[str, int],
        special_tokens: tuple[str, ...] | list[str],
        limit_alphabet: int | None,
        prefix: str,
    ) -> None:
        self.prefix = prefix
        self.special_tokens = list(dict.fromkeys(special_tokens))
        self.strings: list[str | None] = []
        self.string_id: dict[str, int] = {}
        self.sym_count: list[int] = []
        self.pairs_of: list[list[str]] = []
        self.n_symbols = 0
        self.stop = "pairs"  # why run_* ended, where the vocabulary is not full
        for t in self.special_tokens:
            self._new_symbol(t)
        self.word_count: list[int] = []
        self.words: list[str] = []
        # for _merge_bulk: word_count as an array, and a mark per word
        self._word_count_np: np.ndarray | None = None
        self._mark: np.ndarray | None = None
        self.pair_count: dict[str, int] = {}
        self.where: dict[str, object] = {}
        words = [w for w, c in word_counts.items() if c > 0 and w]
        if words:
            counts = np.fromiter((word_counts[w] for w in words), dtype=np.int64, count=len(words))
            self._build(words, counts, limit_alphabet)

    def _new_symbol(self, s: str) -> int:
        sid = self.string_id.get(s)
        if sid is None:
            sid = len(self.strings)
            if sid == _SURROGATES[0]:
                gap = _SURROGATES[1] - _SURROGATES[0]
                self.strings.extend([None] * gap)
                self.sym_count.extend([0] * gap)
                self.pairs_of.extend([] for _ in range(gap))
                sid = len(self.strings)
            self.strings.append(s)
            self.string_id[s] = sid
            self.sym_count.append(0)
            self.pairs_of.append([])
            self.n_symbols += 1
        return sid

    def _build(self, words: list[str], counts: np.ndarray, limit_alphabet: int | None) -> None:
        # Vectorised over all character positions of all distinct words.
        lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
        codes = np.frombuffer("".join(words).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        word_of = np.repeat(np.arange(len(words), dtype=np.int32), lengths)
        first = np.zeros(codes.size, dtype=bool)
        first[np.cumsum(lengths) - lengths] = True
        weight = counts[word_of]
        # characters by a table over code points (no sort of all positions)
        per_code = np.bincount(codes, weights=weight)
        chars = np.flatnonzero(per_code)
        char_total = per_code[chars].astype(np.int64)
        del per_code
        index_of_code = np.zeros(int(chars[-1]) + 1, dtype=np.int32)
        index_of_code[chars] = np.arange(chars.size, dtype=np.int32)
        char_of = index_of_code[codes]
        del codes, index_of_code
        if limit_alphabet is not None and chars.size > limit_alphabet:
            # most frequent characters; ties go to the lower code point
            order = np.lexsort((chars, -char_total))
            kept_chars = np.zeros(chars.size, dtype=bool)
            kept_chars[order[:limit_alphabet]] = True
            keep = kept_chars[char_of]
            # like Hugging Face, a dropped character is removed from its word; position 0 stays "first"
            char_of, word_of, first, weight = char_of[keep], word_of[keep], first[keep], weight[keep]
        else:
            kept_chars = np.ones(chars.size, dtype=bool)
        sym_of_char = np.zeros(chars.size, dtype=np.int64)
        for ci in np.flatnonzero(kept_chars).tolist():  # chars is sorted: code point order
            sym_of_char[ci] = self._new_symbol(chr(int(chars[ci])))
        continuing = np.zeros(chars.size, dtype=bool)
        continuing[char_of[~first]] = True
        cont_of_char = np.zeros(chars.size, dtype=np.int64)
        for ci in np.flatnonzero(continuing & kept_chars).tolist():
            cont_of_char[ci] = self._new_symbol(self.prefix + chr(int(chars[ci])))
        sym = np.where(first, sym_of_char[char_of], cont_of_char[char_of])
        del char_of, first
        self.sym_count = (
            np.bincount(sym, weights=weight, minlength=len(self.strings)).astype(np.int64).tolist()
        )

        # distinct words that survived the alphabet limit, renumbered densely (word_of is sorted)
        new_len = np.bincount(word_of, minlength=len(words))
        present = np.flatnonzero(new_len)
        word_of = (np.cumsum(new_len > 0, dtype=np.int32) - 1)[word_of]
        new_len = new_len[present]
        self.word_count = counts[present].tolist()
        text = sym.astype(np.uint32).tobytes().decode("utf-32-le")
        bounds = np.concatenate([[0], np.cumsum(new_len)]).tolist()
        self.words = [text[bounds[i] : bounds[i + 1]] for i in range(present.size)]

        # the positions where a pair starts (its two symbols in one word), sorted by (left, right)
        at = np.flatnonzero(word_of[:-1] == word_of[1:])
        if at.size == 0:
            return
        if len(self.strings) <= 1 << 16:
            # two stable 16-bit sorts, which numpy does by radix: 3x faster here than one 64-bit sort
            sym = sym.astype(np.uint16)
            at = at[np.argsort(sym[at + 1], kind="stable")]
            at = at[np.argsort(sym[at], kind="stable")]
        else:
            at = at[np.argsort((sym[at] << 21) | sym[at + 1], kind="stable")]  # code points: 21 bits
        left, right = sym[at], sym[at + 1]
        del sym
        starts = np.flatnonzero(np.concatenate([[True], (left[1:] != left[:-1]) | (right[1:] != right[:-1])]))
        totals = np.add.reduceat(weight[at], starts)
        pair_words = word_of[at]
        del at
        left = left[starts].astype(np.uint32)
        right = right[starts].astype(np.uint32)
        pair_text = np.stack([left, right], axis=1).tobytes().decode("utf-32-le")
        pairs = [pair_text[i : i + 2] for i in range(0, len(pair_text), 2)]
        self.pair_count = dict(zip(pairs, totals.tolist(), strict=True))
        self.where = dict(zip(pairs, np.split(pair_words, starts[1:]), strict=True))
        pairs_of = self.pairs_of
        for k in pairs:
            pairs_of[ord(k[0])].append(k)
            pairs_of[ord(k[1])].append(k)

    def _candidates(self, min_frequency: int, key_of: Callable[[str, int], float]) -> tuple[list, dict]:
        heap = []
        last_key: dict[str, float] = {}
        for k, count in self.pair_count.items():
            if count >= min_frequency:
                key = key_of(k, count)
                last_key[k] = key
                heap.append((key, k))
        heapq.heapify(heap)
        return heap, last_key

    def _piece(self, k: str, max_piece_length: int | None) -> str | None:
        """The token that merging `k` makes, or None where it is longer than `max_piece_length`."""
        plen = len(self.prefix)
        piece = self.strings[ord(k[0])] + self.strings[ord(k[1])][plen:]  # type: ignore[operator]
        if max_piece_length is not None:
            bare = piece[plen:] if piece.startswith(self.prefix) else piece
            if len(bare) > max_piece_length:
                return None
        return piece

    def run_frequency(
        self,
        vocab_size: int,
        min_frequency: int,
        max_piece_length: int | None,
        progress: Callable[[int], None] | None,
    ) -> list[tuple[str, str]]:
        """Merge the most frequent pair until the vocabulary is full: a lazy max-heap on pair counts
        (a pair's count only falls while it has an entry; one that rises is pushed again)."""
        pc = self.pair_count
        strings = self.strings
        heap, last_key = self._candidates(min_frequency, lambda k, count: -float(count))
        excluded: set[str] = set()
        merges: list[tuple[str, str]] = []
        pop, heappush = heapq.heappop, heapq.heappush
        while self.n_symbols < vocab_size and heap:
            key, k = pop(heap)
            if last_key.get(k) != key:
                continue  # superseded by a newer entry for the same pair
            count = pc.get(k, 0)
            if count < min_frequency:
                del last_key[k]
                continue
            if -count != key:  # stale: the count fell since this entry was pushed
                last_key[k] = -float(count)
                heappush(heap, (-float(count), k))
                continue
            del last_key[k]
            piece = self._piece(k, max_piece_length)
            if piece is None:
                excluded.add(k)
                continue
            a, b = ord(k[0]), ord(k[1])
            created, _, _ = self._merge(k, chr(self._new_symbol(piece)))
            merges.append((strings[a], strings[b]))  # type: ignore[arg-type]
            for k2 in created:
                count = pc.get(k2, 0)
                if count >= min_frequency and k2 not in excluded and last_key.get(k2) != -count:
                    last_key[k2] = -float(count)
                    heappush(heap, (-float(count), k2))
            if progress is not None:
                progress(len(merges))
        return merges

    def run_likelihood(
        self,
        vocab_size: int,
        min_frequency: int,
        max_piece_length: int | None,
        progress: Callable[[int], None] | None,
        eps: float,
        min_gain: float | None,
    ) -> list[tuple[str, str]]:
        """Merge the pair of largest exact likelihood gain, with the keys and refreshes of the module
        docstring (heap entries are (-key, pair): heapq is a min-heap)."""
        pc = self.pair_count
        sc = self.sym_count
        strings = self.strings
        words = self.words
        wcount = self.word_count
        where = self.where
        pairs_of = self.pairs_of
        inv = 1.0 / (1.0 + eps)
        ref = list(sc)  # R_x; the floor is R_x / (1 + eps)
        # the floors as an array, for keys computed in numpy; every symbol id stays below its size
        floor_np = np.zeros(max(len(sc), vocab_size) + _SURROGATES[1] - _SURROGATES[0] + 1)
        floor_np[: len(ref)] = np.asarray(ref, dtype=np.float64) * inv
        total = sum(sc)  # N
        gain = likelihood_gain
        log, log1p = math.log, math.log1p
        # words where a symbol runs 3+ times in a row ("##a ##a ##a"): there a merge of (x, x) replaces
        # fewer occurrences than there are adjacent pairs; kept up to date by _merge, may hold stale words
        triples: dict[str, set[int]] = {}
        run3 = re.compile(r"(.)\1\1", re.DOTALL)
        for wi, w in enumerate(words):
            for x in {mt.group(1) for mt in run3.finditer(w)} if run3.search(w) else ():
                triples.setdefault(x, set()).add(wi)

        def merges_of_same(k: str) -> int:
            """Occurrences of (x, x) that a merge replaces: left to right, non-overlapping."""
            m = pc.get(k, 0)
            held = triples.get(k[0])
            if held:
                runs = re.compile(re.escape(k[0]) + "{3,}")
                for wi in held:
                    for mt in runs.finditer(words[wi]):
                        n = mt.end() - mt.start()
                        m -= wcount[wi] * (n - 1 - n // 2)  # adjacent pairs minus merges, in a run of n
            return m

        def key_of(k: str, c: int) -> float:
            """The floor key, negated: valid until c_k changes or a or b is refreshed."""
            a, b = ord(k[0]), ord(k[1])
            if a == b:
                m = merges_of_same(k)
                fa = ref[a] * inv
                return -_with_margin(gain(m, fa if fa > 2 * m else 2 * m, 0, total, True))
            # likelihood_gain, inlined (this is the hot loop)
            fa, fb = ref[a] * inv, ref[b] * inv
            g = c * log(c) - total * log1p(-c / total) + c * log(total - c)
            g += fa * log1p(-c / fa) - c * log(fa - c) if fa > c else -c * log(c)
            g += fb * log1p(-c / fb) - c * log(fb - c) if fb > c else -c * log(c)
            return -(g + _KEY_MARGIN * (abs(g) + 1.0))  # _with_margin, inlined

        excluded: set[str] = set()
        merges: list[tuple[str, str]] = []
        pop, heappush = heapq.heappop, heapq.heappush
        # Runs: a large batch of keys enters the heap as one entry (key of its best member, "", run id)
        # and its members, sorted, enter one slice at a time when that entry is popped (docstring).
        runs: dict[int, list] = {}  # run id -> [keys, pairs, next position]
        run_ids = itertools.count()
        held_in_runs = [0]  # members not yet in the heap, for the rebuild rule

        def push_run(keys: np.ndarray, ks: list[str]) -> None:
            order = np.argsort(keys, kind="stable")
            run = [keys[order].tolist(), [ks[i] for i in order.tolist()], 0]
            rid = next(run_ids)
            runs[rid] = run
            held_in_runs[0] += len(ks)
            heappush(heap, (run[0][0], "", rid))

        def expand(rid: int) -> None:
            keys, ks, i = runs[rid]
            j = min(i + _RUN_SLICE, len(keys))
            held_in_runs[0] -= j - i
            get = last_key.get
            for t in range(i, j):
                k2 = ks[t]
                if get(k2) == keys[t]:  # not superseded since
                    heappush(heap, (keys[t], k2))
            if j < len(keys):
                runs[rid][2] = j
                heappush(heap, (keys[j], "", rid))
            else:
                del runs[rid]

        def rebuild() -> None:
            """The heap as one run of the live keys (`last_key` holds exactly those)."""
            heap.clear()
            runs.clear()
            held_in_runs[0] = 0
            if last_key:
                push_run(
                    np.fromiter(last_key.values(), dtype=np.float64, count=len(last_key)), list(last_key)
                )

        heap: list = []
        last_key: dict[str, float] = {}
        for k, count in pc.items():
            if count >= min_frequency:
                last_key[k] = key_of(k, count)
        rebuild()
        # pairs whose live entry holds an exact key (valid only while c_a, c_b and c_k stay), by symbol
        exact_keyed: dict[int, set[str]] = {}
        is_exact: set[str] = set()

        def exact_gain(k: str, c: int) -> float:
            a, b = ord(k[0]), ord(k[1])
            same = a == b
            return gain(merges_of_same(k) if same else c, sc[a], sc[b], total, same)

        def push_exact(k: str, g: float) -> None:
            """An exact key for k, noted under both its symbols: it lapses when either count falls."""
            key = -_with_margin(g)
            last_key[k] = key
            heappush(heap, (key, k))
            if k not in is_exact:
                is_exact.add(k)
                exact_keyed.setdefault(ord(k[0]), set()).add(k)
                exact_keyed.setdefault(ord(k[1]), set()).add(k)

        def forget_exact(k: str) -> None:
            if k in is_exact:
                is_exact.discard(k)
                exact_keyed[ord(k[0])].discard(k)
                exact_keyed[ord(k[1])].discard(k)

        def push_many(ks: list[str], cs: list[int], n_exact: int = 0) -> None:
            """New keys for live pairs with their counts (not excluded, counted at least min_frequency
            times), in numpy where there are many: exact keys for the first `n_exact` (pairs a != b whose
            exact key is renewed), floor keys for the others (pairs with no exact key)."""
            if len(ks) < _VECTOR:
                pairs = zip(ks, cs, strict=True)
                keys = [-_with_margin(exact_gain(k, c)) for k, c in itertools.islice(pairs, n_exact)]
                keys += [key_of(k, c) for k, c in pairs]
            else:
                ab = np.frombuffer("".join(ks).encode("utf-32-le"), dtype=np.uint32).reshape(-1, 2)
                floor_a, floor_b = floor_np[ab[:, 0]], floor_np[ab[:, 1]]
                if n_exact:  # an exact key is the floor key with the counts as floors
                    floor_a[:n_exact] = [sc[ord(k[0])] for k in ks[:n_exact]]
                    floor_b[:n_exact] = [sc[ord(k[1])] for k in ks[:n_exact]]
                key_np = floor_keys(np.asarray(cs, dtype=np.float64), floor_a, floor_b, total)
                for i in np.flatnonzero(ab[:, 0] == ab[:, 1]).tolist():
                    key_np[i] = key_of(ks[i], cs[i])
                if len(ks) >= _RUN:
                    # A key equal to the pair's live one makes a second entry: harmless, as the first
                    # popped is examined and the other is then superseded.
                    last_key.update(zip(ks, key_np.tolist(), strict=True))
                    push_run(key_np, ks)
                    return
                keys = key_np.tolist()
            get = last_key.get
            for k, key in zip(ks, keys, strict=True):
                if get(k) != key:
                    last_key[k] = key
                    heappush(heap, (key, k))

        def refresh(x: int) -> list[str]:
            """Raise x's floor to its count; returns x's live pairs, which all need new floor keys."""
            ref[x] = sc[x]
            floor_np[x] = sc[x] * inv
            ks = list(dict.fromkeys(pairs_of[x]))
            cs = list(map(pc.get, ks, itertools.repeat(0)))
            if 0 in cs:  # dead pairs leave the tables (a merge can bring one back)
                for k2, c in zip(ks, cs, strict=True):
                    if c == 0:
                        pc.pop(k2, None)
                        where.pop(k2, None)
                ks = list(itertools.compress(ks, cs))
            pairs_of[x] = ks
            return ks

        while self.n_symbols < vocab_size and heap:
            # Pop every entry whose key (an upper bound) might reach the best exact gain seen.
            best: tuple[float, str] | None = None
            examined: list[tuple[float, str]] = []
            while heap:
                entry = heap[0]
                top_key, k = entry[0], entry[1]
                if best is not None and (top_key, k) > best:
                    break
                pop(heap)
                if not k:
                    expand(entry[2])
                    continue
                if last_key.get(k) != top_key:
                    continue
                del last_key[k]
                c = pc.get(k, 0)
                if c < min_frequency:
                    continue
                g = exact_gain(k, c)
                examined.append((-g, k))
                if best is None or (-g, k) < best:
                    best = (-g, k)
            if best is None:
                break
            k = best[1]
            for neg, k2 in examined:  # the losers go back with exact keys
                if k2 != k:
                    push_exact(k2, -neg)
            best_gain = -best[0]
            if min_gain is not None and best_gain < min_gain:
                self.stop = "min_gain"
                break
            piece = self._piece(k, max_piece_length)
            forget_exact(k)  # k has no entry now; it is merged or never merged
            if piece is None:
                excluded.add(k)
                continue
            a, b = ord(k[0]), ord(k[1])
            new = self._new_symbol(piece)
            if len(ref) < len(sc):
                floor_np[len(ref) : len(sc)] = np.asarray(sc[len(ref) :], dtype=np.float64) * inv
                ref.extend(sc[len(ref) :])
            created, decreased, merged = self._merge(k, chr(new), triples)
            merges.append((strings[a], strings[b]))  # type: ignore[arg-type]
            total -= merged
            ref[new] = max(ref[new], sc[new])
            floor_np[new] = ref[new] * inv
            rekey = created
            # A pair a != b whose count fell keeps its key if that key is >= 0 (module docstring).
            for k2, key in zip(decreased, map(last_key.get, decreased), strict=True):
                if key is not None and (key > 0 or k2[0] == k2[1]):
                    rekey.add(k2)
            # One push for the merge's pairs and those of refreshed symbols: numpy's fixed cost per call
            # is paid once per merge.
            for x in (a, b) if a != b else (a,):
                if sc[x] < ref[x] * inv:
                    rekey.update(refresh(x))
                # c_x fell: the exact keys of x's pairs are no longer upper bounds
                held = exact_keyed.get(x)
                if held:
                    rekey.update(held)
            gone = is_exact.intersection(rekey)
            renew: list[str] = []
            renew_c: list[int] = []
            if gone:
                # Pairs whose exact key was near this merge's gain get new exact keys (a floor key would
                # have them popped and examined again); the others leave the exact set for floor keys.
                near_key = -best_gain * _NEAR if best_gain > 0 else -math.inf
                for k2 in gone:
                    key = last_key.get(k2)
                    c = pc.get(k2, 0)
                    if key is None or key > near_key or c < min_frequency or k2 in excluded:
                        forget_exact(k2)
                        continue
                    rekey.discard(k2)
                    if k2[0] == k2[1]:
                        push_exact(k2, exact_gain(k2, c))
                    else:  # keyed with the others below
                        renew.append(k2)
                        renew_c.append(c)
            ks = list(rekey - excluded) if excluded else list(rekey)
            cs = list(map(pc.get, ks, itertools.repeat(0)))
            keep = list(map(min_frequency.__le__, cs))
            push_many(
                renew + list(itertools.compress(ks, keep)),
                renew_c + list(itertools.compress(cs, keep)),
                len(renew),
            )
            if _CHECK_KEYS:
                for k2, c in pc.items():
                    if c >= min_frequency and k2 not in excluded:
                        key = last_key.get(k2)
                        if key is None or -key < exact_gain(k2, c):
                            raise RuntimeError(f"the key of {k2!r} is no upper bound after {merges[-1]}")
            if len(heap) + held_in_runs[0] > 2 * len(last_key) + 65536:
                # Most entries are superseded: rebuild from the live ones, which keeps pops and pushes
                # on a small heap and selects the same pairs.
                rebuild()
            if progress is not None:
                progress(len(merges))
        return merges

    def _merge(
        self, ab: str, new: str, triples: dict[str, set[int]] | None = None
    ) -> tuple[set[str], dict[str, int], int]:
        """Replace every pair `ab` by the symbol `new` in the words that hold it. Returns the pairs whose
        count rose, the pairs whose count may have fallen (with the count they lost; a word holding `ab`
        twice loses and regains its other pairs) and the number of occurrences merged. Symbol and pair
        counts change by each word's count. With `triples`, words where `new` now runs three or more
        times in a row are added to `triples[new]`."""
        pc = self.pair_count
        words = self.words
        wcount = self.word_count
        where = self.where
        pairs_of = self.pairs_of
        added: dict[str, int] = {}  # pair -> count gained; every such pair contains `new`
        lost: dict[str, int] = {}  # pair -> count lost, applied after the loop
        reused = self.sym_count[ord(new)] > 0  # the merge spells a symbol that is already in words
        holders = where.pop(ab, ())
        merged_total = 0
        if len(holders) >= _BULK and ab[0] != ab[1] and not reused:
            # the early merges touch most words: one pass in numpy (see _merge_bulk)
            merged_total = self._merge_bulk(ab, new, holders, lost, added, triples)
            holders = ()
        # one occurrence in a word: tallied by its left and right neighbours (see _tally)
        left: dict[str, int] = {}
        left_words: dict[str, list[int]] = {}
        right: dict[str, int] = {}
        right_words: dict[str, list[int]] = {}
        for wi in set(holders.tolist() if isinstance(holders, np.ndarray) else holders):
            w = words[wi]
            i = w.find(ab)
            if i < 0:
                continue
            c = wcount[wi]
            if w.find(ab, i + 2) < 0:
                merged_total += c
                if i > 0:
                    x = w[i - 1]
                    left[x] = left.get(x, 0) + c
                    try:
                        left_words[x].append(wi)
                    except KeyError:
                        left_words[x] = [wi]
                if i + 2 < len(w):
                    x = w[i + 2]
                    right[x] = right.get(x, 0) + c
                    try:
                        right_words[x].append(wi)
                    except KeyError:
                        right_words[x] = [wi]
                nw = words[wi] = w[:i] + new + w[i + 2 :]
                if reused and triples is not None and new * 3 in nw:
                    triples.setdefault(new, set()).add(wi)
            else:
                merged_total += self._merge_word(wi, ab, new, lost, added, triples)
        for x, c in left.items():
            self._tally(x + ab[0], x + new, c, left_words[x], lost, added)
        for x, c in right.items():
            self._tally(ab[1] + x, new + x, c, right_words[x], lost, added)
        for pair, c in lost.items():
            pc[pair] -= c
        for pair, c in added.items():
            old = pc.get(pair, 0)
            if old <= 0:  # new, or back from zero after a merge spelled an existing piece
                pairs_of[ord(pair[0])].append(pair)
                pairs_of[ord(pair[1])].append(pair)
            pc[pair] = old + c
        pc.pop(ab, None)  # every occurrence is gone
        lost.pop(ab, None)
        sc = self.sym_count
        sc[ord(ab[0])] -= merged_total
        sc[ord(ab[1])] -= merged_total
        sc[ord(new)] += merged_total
        return set(added), lost, merged_total

    def _tally(
        self, gone: str, pair: str, count: int, wis: list[int], lost: dict[str, int], added: dict[str, int]
    ) -> None:
        """`count` occurrences of the pair `gone`, in the words `wis`, became occurrences of `pair` (a
        neighbour of the merged pair and the new symbol)."""
        lost[gone] = lost.get(gone, 0) + count
        added[pair] = added.get(pair, 0) + count
        where = self.where
        held = where.get(pair)
        if held is None:
            where[pair] = wis
        elif isinstance(held, list):
            held.extend(wis)
        else:
            _hold(where, pair, wis)

    def _merge_word(
        self,
        wi: int,
        ab: str,
        new: str,
        lost: dict[str, int],
        added: dict[str, int],
        triples: dict[str, set[int]] | None,
    ) -> int:
        """`_merge` for one word that holds `ab` more than once: every pair of the word is lost and
        those of the new word are gained (pairs without `new` straight into the counts). Returns the
        occurrences merged, weighted."""
        pc = self.pair_count
        where = self.where
        w = self.words[wi]
        c = self.word_count[wi]
        nw = w.replace(ab, new)
        for p in range(len(w) - 1):
            pair = w[p : p + 2]
            lost[pair] = lost.get(pair, 0) + c
        for p in range(len(nw) - 1):
            pair = nw[p : p + 2]
            if new in pair:
                added[pair] = added.get(pair, 0) + c
                try:
                    where[pair].append(wi)  # type: ignore[attr-defined]
                except KeyError:
                    where[pair] = [wi]
                except AttributeError:  # see _hold
                    _hold(where, pair, [wi])
            else:
                pc[pair] += c
        self.words[wi] = nw
        if triples is not None and new * 3 in nw:
            triples.setdefault(new, set()).add(wi)
        return c * (len(w) - len(nw))

    def _merge_bulk(
        self,
        ab: str,
        new: str,
        holders: list[int],
        lost: dict[str, int],
        added: dict[str, int],
        triples: dict[str, set[int]] | None,
    ) -> int:
        """`_merge`'s loop for many words at once (a != b, `new` not yet in any word), in numpy on the
        code points of the words joined by a separator that is no symbol. In a word that holds `ab` once,
        the pairs lost are (left neighbour, a) and (b, right neighbour) and those gained (left, new) and
        (new, right), so they are tallied by neighbour; words that hold it more than once go through
        `_merge_word`. Returns the occurrences merged, weighted."""
        words = self.words
        if self._mark is None:
            self._mark = np.zeros(len(words), dtype=bool)
            self._word_count_np = np.asarray(self.word_count, dtype=np.int64)
        mark, word_count = self._mark, self._word_count_np
        mark[np.asarray(holders, dtype=np.int64)] = True  # the index may list a word twice
        hl = np.flatnonzero(mark)
        mark[hl] = False
        hll = hl.tolist()
        ws = [words[hll[0]]] if len(hll) == 1 else itemgetter(*hll)(words)
        sep = len(self.strings)  # the next symbol id: in no word yet
        if _SURROGATES[0] <= sep < _SURROGATES[1]:
            sep = _SURROGATES[1]
        joined = chr(sep).join(ws)
        codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
        at = np.flatnonzero((codes[:-1] == ord(ab[0])) & (codes[1:] == ord(ab[1])))  # a != b: no overlap
        if at.size == 0:
            return 0
        word = np.searchsorted(np.flatnonzero(codes == sep), at)  # separators before: the word's index
        occurrences = np.bincount(word, minlength=hl.size)
        once = occurrences[word] == 1
        at, word = at[once], word[once]
        word_ids = hl[word]
        weight = word_count[word_ids]
        merged_total = int(weight.sum())
        padded = np.concatenate(([sep], codes, [sep]))  # padded[i + 1] == codes[i]
        for side, neighbour in (("left", padded[at]), ("right", padded[at + 3])):
            has = neighbour != sep
            if not has.any():
                continue
            nb = neighbour[has]
            if sep < 1 << 16:  # numpy sorts 16-bit integers by radix: 5x faster here than 32-bit ones
                nb = nb.astype(np.uint16)
            order = np.argsort(nb, kind="stable")
            nb = nb[order]
            starts = np.flatnonzero(np.concatenate(([True], nb[1:] != nb[:-1])))
            totals = np.add.reduceat(weight[has][order], starts).tolist()
            groups = np.split(word_ids[has][order], starts[1:])
            for x, total, group in zip(nb[starts].tolist(), totals, groups, strict=True):
                ch = chr(x)
                if side == "left":
                    self._tally(ch + ab[0], ch + new, total, group.tolist(), lost, added)
                else:
                    self._tally(ab[1] + ch, new + ch, total, group.tolist(), lost, added)
        for j in np.flatnonzero(occurrences > 1).tolist():
            merged_total += self._merge_word(hll[j], ab, new, lost, added, triples)
        # every word rewritten at once (those without `ab` stay as they are)
        for wi, nw in zip(hll, joined.replace(ab, new).split(chr(sep)), strict=True):
            words[wi] = nw
        return merged_total


def _hold(where: dict[str, object], pair: str, wis: list[int]) -> None:
    """Add words to a pair's index where that index is still the initial numpy array: only when a merge
    spells an alphabet symbol ("#" + "##" is "##", then "##" + "###" is "###")."""
    where[pair] = where[pair].tolist() + wis  # type: ignore[attr-defined]
