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
  "##a ##a ##a" merges once). See `likelihood_selection.likelihood_gain`.
- `frequency`: count(ab), what Hugging Face's WordPieceTrainer does (it is BPE with a `##` prefix).

Counts are weighted by word frequency. Only pairs seen at least `min_frequency` times (adjacent
occurrences) are candidates. Ties go to the pair whose (left id, right id) is smallest, ids being the
order in which tokens enter the vocabulary. `min_gain` stops the likelihood criterion once the best gain
falls below it (the "likelihood no longer increases enough" stop of the WordPiece description).

Which pair the likelihood criterion merges next is found by `likelihood_selection`, compiled with
numba: the gain is not monotone in the counts, so it keeps keys that provably bound each pair's gain
(the proof is in that module's docstring) and examines only the pairs whose bound reaches the best gain.
The words and pair counts stay here, in Python, for both criteria.

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
                sid = len(self.strings)
            self.strings.append(s)
            self.string_id[s] = sid
            self.sym_count.append(0)
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
        """Merge the pair of largest exact likelihood gain, which `LikelihoodSelection` finds."""
        # imported here: numba and the LLVM it loads (0.2 s, ~150 MiB resident) only where this runs
        from vlprep.tokenizers.subword.likelihood_selection import LikelihoodSelection

        pc = self.pair_count
        strings = self.strings
        words = self.words
        wcount = self.word_count
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

        selection = LikelihoodSelection(
            self.sym_count,
            # every symbol id stays below this: the vocabulary, and the surrogate gap it may skip
            max(len(self.sym_count), vocab_size) + _SURROGATES[1] - _SURROGATES[0] + 1,
            pc,
            merges_of_same,
            eps=eps,
            min_frequency=min_frequency,
            near=_NEAR,
        )
        merges: list[tuple[str, str]] = []
        while self.n_symbols < vocab_size:
            found = selection.select()
            if found is None:
                break
            k, gain = found
            if min_gain is not None and gain < min_gain:
                self.stop = "min_gain"
                break
            piece = self._piece(k, max_piece_length)
            if piece is None:
                selection.exclude(k)
                continue
            a, b = ord(k[0]), ord(k[1])
            new = self._new_symbol(piece)
            created, decreased, merged = self._merge(k, chr(new), triples)
            merges.append((strings[a], strings[b]))  # type: ignore[arg-type]
            selection.merged(k, new, merged, gain, created, decreased)
            if _CHECK_KEYS and (unbounded := selection.first_unbounded()) is not None:
                raise RuntimeError(f"the key of {unbounded!r} is no upper bound after {merges[-1]}")
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
            pc[pair] = pc.get(pair, 0) + c
        pc.pop(ab, None)  # every occurrence is gone
        lost.pop(ab, None)
        for pair in [p for p in lost if not pc[p]]:  # dead pairs leave the tables (one can come back)
            del pc[pair]
            where.pop(pair, None)
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
