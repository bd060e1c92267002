"""WordPiece vocabulary training by bottom-up merges.

Words start as characters, the first as is and the others as `##` continuation pieces. Each step merges
the adjacent pair (a, b) with the best score:

- `likelihood` (Schuster & Nakajima; what BERT describes): count(ab) / (count(a) * count(b)), the gain in
  unigram log-likelihood of the corpus, up to a monotone transform;
- `frequency`: count(ab), what Hugging Face's WordPieceTrainer does (it is BPE with a `##` prefix).

Counts are weighted by word frequency. Only pairs seen at least `min_frequency` times are candidates.

Incremental updates. A merge changes the counts of the pairs around its occurrences (found through a
pair -> words index) and lowers count(a) and count(b), which *raises* the score of every other pair that
contains a or b. A lazy max-heap whose stale keys are only ever too high cannot express that. Instead each
symbol x remembers the count R(x) it had when the heap keys of all its pairs were last refreshed, and is
refreshed again (all its pairs re-pushed with exact scores) once count(x) falls below R(x) / (1 + eps).
Any pair's true score is then at most key * (1 + eps)^2, so the best pair is found by popping every entry
whose key is within that factor of the best exact score seen, recomputing them exactly. With eps = 5% a
symbol is refreshed O(log(count drop) / eps) times instead of after every merge that touches it, and the
pop window holds a handful of entries. For `frequency` the factor is 1 and this is the usual lazy heap.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

DEFAULT_SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
CRITERIA = ("likelihood", "frequency")
# Symbols are code points so that a word is a `str` of them: finding and replacing a pair is then
# `str.find` / `str.replace`, in C, and a pair is a 2-character string. The surrogate block is skipped.
_SURROGATES = (0xD800, 0xE000)
_MAX_SYMBOLS = 0x110000 - (_SURROGATES[1] - _SURROGATES[0])


@dataclass
class WordPieceVocab:
    """A trained vocabulary: `tokens` in id order (special tokens, alphabet, then learned pieces)."""

    tokens: list[str]
    special_tokens: list[str]
    alphabet_size: int
    merges: list[tuple[str, str]] = field(default_factory=list)
    prefix: str = "##"

    def __len__(self) -> int:
        return len(self.tokens)


def merged_piece(left: str, right: str, prefix: str = "##") -> str:
    """The piece made of `left` followed by the continuation piece `right`."""
    return left + (right[len(prefix) :] if right.startswith(prefix) else right)


def likelihood_score(pair_count: int, count_a: int, count_b: int) -> float:
    return pair_count / (count_a * count_b)


def train_wordpiece(
    word_counts: Mapping[str, int],
    vocab_size: int,
    *,
    criterion: str = "likelihood",
    min_frequency: int = 2,
    limit_alphabet: int | None = 1000,
    max_piece_length: int | None = None,
    special_tokens: tuple[str, ...] | list[str] = DEFAULT_SPECIAL_TOKENS,
    prefix: str = "##",
    eps: float = 0.05,
    progress: Callable[[int], None] | None = None,
) -> WordPieceVocab:
    """Learn a WordPiece vocabulary of `vocab_size` tokens (fewer if the corpus runs out of pairs; more if
    the special tokens and the alphabet alone exceed it). `progress(n)` is called with merges done."""
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, not {criterion!r}")
    if vocab_size >= _MAX_SYMBOLS:
        raise ValueError(f"vocab_size must be below {_MAX_SYMBOLS}")
    state = _MergeState(word_counts, special_tokens, limit_alphabet, prefix)
    n_alphabet = state.n_symbols - len(state.special_tokens)
    merges: list[tuple[str, str]] = []
    if state.pair_count:
        merges = state.run(
            vocab_size=vocab_size,
            likelihood=criterion == "likelihood",
            min_frequency=max(1, min_frequency),
            max_piece_length=max_piece_length,
            eps=eps if criterion == "likelihood" else 0.0,
            progress=progress,
        )
    return WordPieceVocab(
        tokens=[t for t in state.strings if t is not None],
        special_tokens=state.special_tokens,
        alphabet_size=n_alphabet,
        merges=merges,
        prefix=prefix,
    )


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
        for t in self.special_tokens:
            self._new_symbol(t)
        self.word_count: list[int] = []
        self.words: list[str] = []
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

        same = word_of[:-1] == word_of[1:]
        if not same.any():
            return
        keys = (sym[:-1][same] << 21) | sym[1:][same]  # code points fit in 21 bits
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
        totals = np.add.reduceat(weight[:-1][same][order], starts)
        pair_words = word_of[:-1][same][order]
        ukeys = keys[starts]
        left = (ukeys >> 21).astype(np.uint32)
        right = (ukeys & ((1 << 21) - 1)).astype(np.uint32)
        pair_text = np.stack([left, right], axis=1).tobytes().decode("utf-32-le")
        pairs = [pair_text[i : i + 2] for i in range(0, len(pair_text), 2)]
        self.pair_count = dict(zip(pairs, totals.tolist(), strict=True))
        self.where = dict(zip(pairs, np.split(pair_words, starts[1:]), strict=True))
        pairs_of = self.pairs_of
        for k in pairs:
            pairs_of[ord(k[0])].append(k)
            pairs_of[ord(k[1])].append(k)

    def run(
        self,
        vocab_size: int,
        likelihood: bool,
        min_frequency: int,
        max_piece_length: int | None,
        eps: float,
        progress: Callable[[int], None] | None,
    ) -> list[tuple[str, str]]:
        pc = self.pair_count
        sc = self.sym_count
        strings = self.strings
        plen = len(self.prefix)
        excluded: set[str] = set()
        last_key: dict[str, float] = {}
        heap: list[tuple[float, str]] = []

        def key_of(k: str, count: int) -> float:
            if likelihood:
                return -(count / (sc[ord(k[0])] * sc[ord(k[1])]))
            return -float(count)

        for k, count in pc.items():
            if count >= min_frequency:
                key = key_of(k, count)
                last_key[k] = key
                heap.append((key, k))
        heapq.heapify(heap)
        ref_count = list(sc)
        window = (1.0 + eps) ** 2 * (1.0 + 1e-9) if eps > 0 else 1.0
        merges: list[tuple[str, str]] = []
        pop, heappush = heapq.heappop, heapq.heappush

        def push(k: str) -> None:
            count = pc.get(k, 0)
            if count < min_frequency or k in excluded:
                return
            key = key_of(k, count)
            if last_key.get(k) != key:
                last_key[k] = key
                heappush(heap, (key, k))

        while self.n_symbols < vocab_size and heap:
            # Pop every entry that might beat the best exact score seen (see the module docstring).
            best: tuple[float, str] | None = None
            examined: list[tuple[float, str]] = []
            while heap:
                top_key, k = heap[0]
                if best is not None and (top_key * window, k) > best:
                    break
                pop(heap)
                if last_key.get(k) != top_key:
                    continue  # superseded by a newer entry for the same pair
                count = pc.get(k, 0)
                if count < min_frequency:
                    del last_key[k]
                    continue
                exact = (key_of(k, count), k)
                examined.append(exact)
                if best is None or exact < best:
                    best = exact
            for entry in examined:
                if entry is not best:
                    last_key[entry[1]] = entry[0]
                    heappush(heap, entry)
            if best is None:
                break
            k = best[1]
            del last_key[k]
            a, b = ord(k[0]), ord(k[1])
            piece = strings[a] + strings[b][plen:]
            if max_piece_length is not None:
                bare = piece[plen:] if piece.startswith(self.prefix) else piece
                if len(bare) > max_piece_length:
                    excluded.add(k)
                    continue
            new = self._new_symbol(piece)
            if len(ref_count) < len(sc):
                ref_count.extend([0] * (len(sc) - len(ref_count)))
            created = self._merge(k, chr(new))
            merges.append((strings[a], strings[b]))
            ref_count[new] = max(ref_count[new], sc[new])
            for k2 in created:
                push(k2)
            if eps > 0:
                for x in (a, b) if a != b else (a,):
                    if sc[x] * (1.0 + eps) < ref_count[x]:
                        ref_count[x] = sc[x]
                        alive = []
                        for k2 in self.pairs_of[x]:
                            if pc.get(k2, 0) > 0:
                                alive.append(k2)
                            else:  # dead pairs leave the tables (a word can bring one back)
                                pc.pop(k2, None)
                                self.where.pop(k2, None)
                        self.pairs_of[x] = alive
                        for k2 in alive:
                            push(k2)
            if progress is not None:
                progress(len(merges))
        return merges

    def _merge(self, ab: str, new: str) -> set[str]:
        """Replace every pair `ab` by the symbol `new` in the words that hold it; returns the pairs whose
        count rose. Symbol and pair counts change by each word's count."""
        pc = self.pair_count
        words = self.words
        wcount = self.word_count
        where = self.where
        pairs_of = self.pairs_of
        added: dict[str, int] = {}  # pair -> count gained; every such pair contains `new`
        holders = where.pop(ab, ())
        holders = set(holders.tolist() if isinstance(holders, np.ndarray) else holders)
        merged_total = 0
        for wi in holders:
            w = words[wi]
            i = w.find(ab)
            if i < 0:
                continue
            c = wcount[wi]
            if w.find(ab, i + 2) < 0:
                # the usual case, one occurrence: the pairs on either side change
                merged_total += c
                if i > 0:
                    pc[w[i - 1 : i + 1]] -= c
                    pair = w[i - 1] + new
                    added[pair] = added.get(pair, 0) + c
                    try:
                        where[pair].append(wi)  # type: ignore[attr-defined]
                    except KeyError:
                        where[pair] = [wi]
                    except AttributeError:  # see _hold
                        _hold(where, pair, wi)
                if i + 2 < len(w):
                    pc[w[i + 1 : i + 3]] -= c
                    pair = new + w[i + 2]
                    added[pair] = added.get(pair, 0) + c
                    try:
                        where[pair].append(wi)  # type: ignore[attr-defined]
                    except KeyError:
                        where[pair] = [wi]
                    except AttributeError:  # see _hold
                        _hold(where, pair, wi)
                words[wi] = w[:i] + new + w[i + 2 :]
            else:
                nw = w.replace(ab, new)
                merged_total += c * (len(w) - len(nw))
                for p in range(len(w) - 1):
                    pc[w[p : p + 2]] -= c
                for p in range(len(nw) - 1):
                    pair = nw[p : p + 2]
                    if new in pair:
                        added[pair] = added.get(pair, 0) + c
                        try:
                            where[pair].append(wi)  # type: ignore[attr-defined]
                        except KeyError:
                            where[pair] = [wi]
                        except AttributeError:  # see _hold
                            _hold(where, pair, wi)
                    else:
                        pc[pair] += c
                words[wi] = nw
        for pair, c in added.items():
            old = pc.get(pair, 0)
            if old <= 0:  # new, or back from zero after a merge spelled an existing piece
                pairs_of[ord(pair[0])].append(pair)
                pairs_of[ord(pair[1])].append(pair)
            pc[pair] = old + c
        pc.pop(ab, None)  # every occurrence is gone
        sc = self.sym_count
        sc[ord(ab[0])] -= merged_total
        sc[ord(ab[1])] -= merged_total
        sc[ord(new)] += merged_total
        return set(added)


def _hold(where: dict[str, object], pair: str, wi: int) -> None:
    """Add a word to a pair's index where that index is still the initial numpy array: only when a merge
    spells an alphabet symbol ("#" + "##" is "##", then "##" + "###" is "###")."""
    where[pair] = where[pair].tolist() + [wi]  # type: ignore[attr-defined]
