"""Which pair the WordPiece likelihood criterion merges next: keys that bound each pair's exact gain,
symbol floors, and a lazy heap, compiled with numba.

The gain G(c, c_a, c_b, N) of merging a pair (a, b) that occurs c times is `likelihood_gain` (formula in
`wordpiece_trainer`). Facts about it (its derivatives; a == b reads c_b as absent and c_a - 2c for
c_a - c):

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

A pair's key K (count c) is one of two kinds:

  floor key  K = G(c, max(F_a, c), max(F_b, c), N_then)     (a == b: G(c, max(F_a, 2c), N_then));
  exact key  K = G(c, c_a, c_b, N_then), given to pairs examined and not chosen (see below), and renewed
             when it lapses (c_a, c_b or c fell) if it was at least `near` times the gain of the merge at
             hand: those pairs are near the top, and a floor key would have them examined again; the
             others go back to floor keys.

Claim: K >= G(p) now, for every live key. Exact keys: they are replaced (by a new exact key or a floor
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
a == b are always re-keyed when touched; their c is the number of occurrences a merge replaces (left to
right), which the trainer supplies. []

Selection: entries are popped in key order while their key is >= the best exact gain found so far; each
popped pair's exact gain is computed. Every pair not popped has gain <= key < that best, so the best
popped pair (ties: the smallest (left id, right id)) is the argmax over all candidates, ties included.
The popped losers go back with exact keys, which keeps the pairs near the top from being examined again
on every step. A pair has at most one live key (`live`); heap entries whose key is no longer the pair's
live one are skipped, and once most of the heap is such entries it is rebuilt from the live keys.

Cost: x is refreshed only when its count has fallen by a factor 1 + eps; a larger eps means fewer
refreshes and looser floor keys. At 50 MB / 30k pieces every eps from 0.25 to 4 took the same time
within the machine's noise, so the default is 1. Floating point: the gain is
written with log1p so that it never subtracts numbers of size N log N, and keys carry a relative margin
of 1e-9, far above rounding, so rounding cannot turn a key into less than the gain it bounds.

Why compiled: this bookkeeping is a few hundred thousand pops, examinations, renewals and re-keys per
30,000 merges, each a handful of operations. In Python (dicts of pairs, a heap of tuples, numpy for
batches) it took 3.4 s of the trainer's 8 s at 50 MB / 30k pieces, as long as rewriting the words, and
left the trainer 10-16% slower than Hugging Face's Rust trainer on two cores; compiled, it takes about
0.5 s. The words and the pair counts stay in Python (`wordpiece_trainer`); this module sees pairs as
integer ids. The heap is two flat arrays (keys, pair ids) with its own push and sift-down: numba's
`heapq` on a typed list of (key, id) tuples took 22x as long (2M pushes and 1M pops: 2.6 s against
0.12 s).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping

import numba
import numpy as np


def _compiled(fn: Callable) -> Callable:
    """`numba.njit` with numba's on-disk cache (next to this file, or in numba's per-user cache directory),
    so that only the first run compiles. Where neither is writable numba refuses to cache (a RuntimeError
    at import); then each process compiles afresh, which is slower but works."""
    try:
        return numba.njit(cache=True)(fn)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return numba.njit(fn)


# relative margin of keys over the gains they bound (module docstring: floating point)
KEY_MARGIN = 1e-9

# columns of the pair table (int64), one row per pair id
_A, _B, _ADJ, _CNT, _FLAGS, _STAMP, _EPOCH = range(7)
# _ADJ: adjacent occurrences (weighted), the count min_frequency applies to; _CNT: the occurrences a
# merge replaces (equal to _ADJ where a != b); _STAMP: last merge that marked it for a new key; _EPOCH:
# bumped when its exact key lapses, so that its old entries in the symbols' exact lists are stale
_EXACT, _EXCLUDED, _LINKED = 1, 2, 4
# counters (int64): heap entries, list nodes, pairs with a live key, merges, min_frequency
_HEAP_N, _NODES, _LIVE_N, _STAMP_N, _MIN_FREQ = range(5)
# float parameters: N, 1 / (1 + eps), near
_TOTAL, _INV, _NEAR = range(3)
# per-symbol list heads: all its pairs (pruned of dead ones on refresh), its exact-keyed pairs
_ALL, _EXACTS = 0, 1


@_compiled
def likelihood_gain(c: float, count_a: float, count_b: float, total: float, same: bool = False) -> float:
    """The exact change in L = sum_s c(s) log(c(s)/N) when c occurrences of the pair (a, b) become one
    symbol (see `wordpiece_trainer`); `same` for a == b, where `count_b` is ignored. Counts may be
    real-valued lower bounds (floors).

    Each term f(m - k) - f(m), f(x) = x log x, is written m log1p(-k/m) - k log(m - k) so that it never
    subtracts two numbers of size m log m; it is -m log m where k = m."""
    g = c * math.log(c)
    k = 2 * c if same else c
    if k >= count_a:
        g += -count_a * math.log(count_a)
    else:
        g += count_a * math.log1p(-k / count_a) - k * math.log(count_a - k)
    if not same:
        if c >= count_b:
            g += -count_b * math.log(count_b)
        else:
            g += count_b * math.log1p(-c / count_b) - c * math.log(count_b - c)
    if c >= total:
        return g + total * math.log(total)
    return g - (total * math.log1p(-c / total) - c * math.log(total - c))


@_compiled
def _as_key(g):
    """A gain raised by the margin and negated: the heap is a min-heap."""
    return -(g + KEY_MARGIN * (abs(g) + 1.0))


@_compiled
def _exact_gain(pairs, sym, fp, pid):
    a, b = pairs[pid, _A], pairs[pid, _B]
    return likelihood_gain(float(pairs[pid, _CNT]), float(sym[a]), float(sym[b]), fp[_TOTAL], a == b)


@_compiled
def _floor_key(pairs, ref, fp, pid):
    a, b = pairs[pid, _A], pairs[pid, _B]
    c = float(pairs[pid, _CNT])
    fa = ref[a] * fp[_INV]
    if a == b:
        return _as_key(likelihood_gain(c, max(fa, 2 * c), 0.0, fp[_TOTAL], True))
    fb = ref[b] * fp[_INV]
    return _as_key(likelihood_gain(c, max(fa, c), max(fb, c), fp[_TOTAL], False))


@_compiled
def _heap_push(heap_key, heap_pid, ctr, key, pid):
    i = ctr[_HEAP_N]
    ctr[_HEAP_N] = i + 1
    while i > 0:
        parent = (i - 1) >> 1
        if heap_key[parent] <= key:
            break
        heap_key[i] = heap_key[parent]
        heap_pid[i] = heap_pid[parent]
        i = parent
    heap_key[i] = key
    heap_pid[i] = pid


@_compiled
def _heap_pop(heap_key, heap_pid, ctr):
    """Removes the top entry, returns its pair id."""
    top = heap_pid[0]
    n = ctr[_HEAP_N] - 1
    ctr[_HEAP_N] = n
    if n > 0:
        _sift_down(heap_key, heap_pid, n, 0, heap_key[n], heap_pid[n])
    return top


@_compiled
def _sift_down(heap_key, heap_pid, n, i, key, pid):
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        if child + 1 < n and heap_key[child + 1] < heap_key[child]:
            child += 1
        if heap_key[child] >= key:
            break
        heap_key[i] = heap_key[child]
        heap_pid[i] = heap_pid[child]
        i = child
    heap_key[i] = key
    heap_pid[i] = pid


@_compiled
def _set_key(live, heap_key, heap_pid, ctr, pid, key):
    if live[pid] == key:
        return  # the live entry already says so
    if live[pid] == np.inf:
        ctr[_LIVE_N] += 1
    live[pid] = key
    _heap_push(heap_key, heap_pid, ctr, key, pid)


@_compiled
def _grown(nodes, ctr, more):
    """`nodes`, or a copy twice as large where `more` nodes would not fit."""
    if ctr[_NODES] + more <= nodes.shape[0]:
        return nodes
    bigger = np.empty((max(2 * nodes.shape[0], ctr[_NODES] + more), 3), dtype=nodes.dtype)
    bigger[: ctr[_NODES]] = nodes[: ctr[_NODES]]
    return bigger


@_compiled
def _link(nodes, head, ctr, which, x, pid, epoch):
    """Prepend pid to symbol x's list `which` (room must have been made)."""
    n = ctr[_NODES]
    ctr[_NODES] = n + 1
    nodes[n, 0] = pid
    nodes[n, 1] = head[x, which]
    nodes[n, 2] = epoch
    head[x, which] = n


@_compiled
def _make_exact(pairs, nodes, head, ctr, pid):
    if pairs[pid, _FLAGS] & _EXACT:
        return
    pairs[pid, _FLAGS] |= _EXACT
    a, b = pairs[pid, _A], pairs[pid, _B]
    _link(nodes, head, ctr, _EXACTS, a, pid, pairs[pid, _EPOCH])
    if b != a:
        _link(nodes, head, ctr, _EXACTS, b, pid, pairs[pid, _EPOCH])


@_compiled
def _forget_exact(pairs, pid):
    if pairs[pid, _FLAGS] & _EXACT:
        pairs[pid, _FLAGS] &= ~_EXACT
        pairs[pid, _EPOCH] += 1


@_compiled
def _mark(pairs, marked, n, stamp, pid):
    if pairs[pid, _STAMP] != stamp:
        pairs[pid, _STAMP] = stamp
        marked[n] = pid
        n += 1
    return n


@_compiled
def _select(pairs, live, sym, fp, ctr, heap_key, heap_pid, nodes, head, examined, examined_gain):
    """The candidate of largest exact gain (ties: smallest (left, right)), its gain, and the node array
    (grown where the losers' exact keys needed room). Pair id -1 where no candidate is left."""
    best, best_neg = -1, np.inf
    n = 0
    while ctr[_HEAP_N] > 0:
        top = heap_key[0]
        if best >= 0 and top > best_neg:
            break  # on a tie of keys the entry is popped: one examination more at most
        pid = _heap_pop(heap_key, heap_pid, ctr)
        if live[pid] != top:
            continue  # superseded by a newer key for the same pair
        live[pid] = np.inf
        ctr[_LIVE_N] -= 1
        if pairs[pid, _ADJ] < ctr[_MIN_FREQ]:
            continue
        neg = -_exact_gain(pairs, sym, fp, pid)
        examined[n] = pid
        examined_gain[n] = neg
        n += 1
        if best < 0 or neg < best_neg:
            best, best_neg = pid, neg
        elif neg == best_neg and (pairs[pid, _A], pairs[pid, _B]) < (pairs[best, _A], pairs[best, _B]):
            best = pid
    nodes = _grown(nodes, ctr, 2 * n)
    for i in range(n):  # the losers go back with exact keys
        pid = examined[i]
        if pid != best:
            _set_key(live, heap_key, heap_pid, ctr, pid, _as_key(-examined_gain[i]))
            _make_exact(pairs, nodes, head, ctr, pid)
    return best, -best_neg, nodes


@_compiled
def _exclude(pairs, pid):
    """Never a candidate again (its piece would be too long)."""
    _forget_exact(pairs, pid)
    pairs[pid, _FLAGS] |= _EXCLUDED


@_compiled
def _start(pairs, live, ref, fp, ctr, heap_key, heap_pid, nodes, head, n_pairs):
    """Lists and floor-keys the pairs 0..n_pairs-1 (counts filled in); returns the node array."""
    nodes = _grown(nodes, ctr, 2 * n_pairs)
    for pid in range(n_pairs):
        _relink(pairs, nodes, head, ctr, pid)
        if pairs[pid, _ADJ] >= ctr[_MIN_FREQ]:
            _set_key(live, heap_key, heap_pid, ctr, pid, _floor_key(pairs, ref, fp, pid))
    return nodes


@_compiled
def _relink(pairs, nodes, head, ctr, pid):
    """Lists a pair under its symbols unless it is listed (a pruned pair can come back)."""
    if pairs[pid, _ADJ] > 0 and not pairs[pid, _FLAGS] & _LINKED:
        pairs[pid, _FLAGS] |= _LINKED
        a, b = pairs[pid, _A], pairs[pid, _B]
        _link(nodes, head, ctr, _ALL, a, pid, 0)
        if b != a:
            _link(nodes, head, ctr, _ALL, b, pid, 0)


@_compiled
def _lapsed(pairs, sym, ref, fp, nodes, head, marked, n, stamp, x):
    """Marks the pairs of x whose keys lapse now that c_x fell: its exact-keyed pairs, and all its pairs
    where x falls below its floor (a refresh). Returns the new number of marked pairs."""
    if sym[x] < ref[x] * fp[_INV]:
        ref[x] = float(sym[x])
        prev, node = -1, head[x, _ALL]
        while node >= 0:
            pid = nodes[node, 0]
            if pairs[pid, _ADJ] > 0:
                n = _mark(pairs, marked, n, stamp, pid)
                prev = node
            else:  # dead pairs leave the list (a merge can bring one back: _relink)
                pairs[pid, _FLAGS] &= ~_LINKED
                if prev < 0:
                    head[x, _ALL] = nodes[node, 1]
                else:
                    nodes[prev, 1] = nodes[node, 1]
            node = nodes[node, 1]
    node = head[x, _EXACTS]
    while node >= 0:
        pid = nodes[node, 0]
        if nodes[node, 2] == pairs[pid, _EPOCH] and pairs[pid, _FLAGS] & _EXACT:
            n = _mark(pairs, marked, n, stamp, pid)
        node = nodes[node, 1]
    head[x, _EXACTS] = -1  # every pair on it is re-keyed, exact ones listed anew
    return n


@_compiled
def _after_merge(
    pairs,
    live,
    sym,
    ref,
    fp,
    ctr,
    heap_key,
    heap_pid,
    nodes,
    head,
    marked,
    ab,
    new,
    occurrences,
    gain,
    ids,
    adjacent,
    merge_count,
    rose,
):
    """After the merge of pair `ab` (`occurrences` replaced, by symbol `new`, at `gain`): for every pair
    whose count changed, its id, adjacent count, merge count (read where a == b) and whether it rose.
    Re-keys what the module docstring requires; returns the node and heap arrays (grown if needed)."""
    stamp = ctr[_STAMP_N] + 1
    ctr[_STAMP_N] = stamp
    a, b = pairs[ab, _A], pairs[ab, _B]
    fp[_TOTAL] -= occurrences
    sym[a] -= occurrences
    sym[b] -= occurrences
    sym[new] += occurrences
    ref[new] = max(ref[new], float(sym[new]))
    pairs[ab, _ADJ] = 0
    pairs[ab, _CNT] = 0
    _forget_exact(pairs, ab)
    nodes = _grown(nodes, ctr, 2 * ids.size)
    n = 0
    for i in range(ids.size):
        pid = ids[i]
        pairs[pid, _ADJ] = adjacent[i]
        pairs[pid, _CNT] = merge_count[i] if pairs[pid, _A] == pairs[pid, _B] else adjacent[i]
        _relink(pairs, nodes, head, ctr, pid)
        if rose[i]:
            n = _mark(pairs, marked, n, stamp, pid)
        elif live[pid] != np.inf and (live[pid] > 0.0 or pairs[pid, _A] == pairs[pid, _B]):
            # a pair a != b whose count fell keeps a key >= 0 (its negation <= 0): module docstring
            n = _mark(pairs, marked, n, stamp, pid)
    n = _lapsed(pairs, sym, ref, fp, nodes, head, marked, n, stamp, a)
    if b != a:
        n = _lapsed(pairs, sym, ref, fp, nodes, head, marked, n, stamp, b)
    if ctr[_HEAP_N] + n > heap_key.shape[0]:
        size = max(2 * heap_key.shape[0], ctr[_HEAP_N] + n)
        heap_key = np.concatenate((heap_key, np.empty(size - heap_key.shape[0])))
        heap_pid = np.concatenate((heap_pid, np.empty(size - heap_pid.shape[0], dtype=heap_pid.dtype)))
    nodes = _grown(nodes, ctr, 2 * n)
    near_key = -gain * fp[_NEAR] if gain > 0 else -np.inf
    min_freq = ctr[_MIN_FREQ]
    for i in range(n):
        pid = marked[i]
        if pairs[pid, _FLAGS] & _EXACT:
            # Pairs whose exact key was near this merge's gain get new exact keys (a floor key would
            # have them examined again); the others leave the exact lists for floor keys.
            key = live[pid]
            _forget_exact(pairs, pid)
            if not (key == np.inf or key > near_key or pairs[pid, _ADJ] < min_freq):
                _set_key(live, heap_key, heap_pid, ctr, pid, _as_key(_exact_gain(pairs, sym, fp, pid)))
                _make_exact(pairs, nodes, head, ctr, pid)
                continue
        if pairs[pid, _FLAGS] & _EXCLUDED or pairs[pid, _ADJ] < min_freq:
            continue
        _set_key(live, heap_key, heap_pid, ctr, pid, _floor_key(pairs, ref, fp, pid))
    if ctr[_HEAP_N] > 2 * ctr[_LIVE_N] + 65536:
        _rebuild(live, ctr, heap_key, heap_pid, marked.shape[0])
    return nodes, heap_key, heap_pid


@_compiled
def _rebuild(live, ctr, heap_key, heap_pid, n_pairs):
    """Most entries are superseded: the heap anew from the live keys (the same selection)."""
    n = 0
    for pid in range(n_pairs):
        if live[pid] != np.inf:
            heap_key[n] = live[pid]
            heap_pid[n] = pid
            n += 1
    ctr[_HEAP_N] = n
    for i in range(n // 2 - 1, -1, -1):
        _sift_down(heap_key, heap_pid, n, i, heap_key[i], heap_pid[i])


@_compiled
def _first_unbounded(pairs, live, sym, fp, ctr, n_pairs):
    """For tests: a candidate whose live key is below its exact gain, or -1."""
    for pid in range(n_pairs):
        if pairs[pid, _ADJ] < ctr[_MIN_FREQ] or pairs[pid, _FLAGS] & _EXCLUDED:
            continue
        if live[pid] == np.inf or -live[pid] < _exact_gain(pairs, sym, fp, pid):
            return pid
    return -1


class LikelihoodSelection:
    """The compiled state, with pairs named by their 2-character strings on the Python side."""

    def __init__(
        self,
        sym_count: list[int],
        symbol_capacity: int,
        pair_count: Mapping[str, int],
        merge_count: Callable[[str], int],
        *,
        eps: float,
        min_frequency: int,
        near: float,
    ) -> None:
        self.pair_count = pair_count  # the trainer's, kept up to date by its merges
        self.merge_count = merge_count  # occurrences a merge of (x, x) replaces
        self.pair_of: list[str] = []
        self.pid_of: dict[str, int] = {}
        self.same: set[str] = set()  # pairs (x, x): their merge count comes from `merge_count`
        cap = max(1024, 2 * len(pair_count))
        self.pairs = np.zeros((cap, 7), dtype=np.int64)
        self.live = np.full(cap, np.inf)
        self.marked = np.zeros(cap, dtype=np.int64)
        self.examined_gain = np.zeros(cap)
        self.sym = np.zeros(symbol_capacity, dtype=np.int64)
        self.sym[: len(sym_count)] = sym_count
        self.ref = self.sym.astype(np.float64)
        self.head = np.full((symbol_capacity, 2), -1, dtype=np.int32)
        self.nodes = np.zeros((4 * cap, 3), dtype=np.int32)
        self.heap_key = np.zeros(cap)
        self.heap_pid = np.zeros(cap, dtype=np.int32)
        self.ctr = np.zeros(5, dtype=np.int64)
        self.ctr[_MIN_FREQ] = min_frequency
        self.fp = np.array([float(sum(sym_count)), 1.0 / (1.0 + eps), near])
        ks = list(pair_count)
        self._add(ks)  # ids 0, 1, ... in the order of `ks`
        self.pairs[: len(ks), _ADJ] = self.pairs[: len(ks), _CNT] = list(pair_count.values())
        for k in self.same:
            self.pairs[self.pid_of[k], _CNT] = merge_count(k)
        self.nodes = _start(
            self.pairs, self.live, self.ref, self.fp, self.ctr, self.heap_key, self.heap_pid, self.nodes,
            self.head, len(ks),
        )  # fmt: skip

    def _add(self, ks: Iterable[str]) -> None:
        """Ids for the pairs `ks` not seen before (the tables grow by doubling)."""
        fresh = list(itertools.filterfalse(self.pid_of.__contains__, ks))
        if not fresh:
            return
        first = len(self.pair_of)
        self.pid_of.update(zip(fresh, range(first, first + len(fresh))))
        self.pair_of.extend(fresh)
        while len(self.pair_of) > self.pairs.shape[0]:
            cap = 2 * self.pairs.shape[0]
            self.pairs = np.concatenate((self.pairs, np.zeros_like(self.pairs)))
            self.live = np.concatenate((self.live, np.full(cap - self.live.size, np.inf)))
            self.marked = np.zeros(cap, dtype=np.int64)
            self.examined_gain = np.zeros(cap)
        codes = np.frombuffer("".join(fresh).encode("utf-32-le"), dtype=np.uint32).reshape(-1, 2)
        self.pairs[first : first + len(fresh), _A] = codes[:, 0]
        self.pairs[first : first + len(fresh), _B] = codes[:, 1]
        self.same.update(fresh[i] for i in np.flatnonzero(codes[:, 0] == codes[:, 1]).tolist())

    def select(self) -> tuple[str, float] | None:
        """The pair to merge (or exclude) next and its exact gain; None where no candidate is left."""
        pid, gain, self.nodes = _select(
            self.pairs, self.live, self.sym, self.fp, self.ctr, self.heap_key, self.heap_pid, self.nodes,
            self.head, self.marked, self.examined_gain,
        )  # fmt: skip
        return None if pid < 0 else (self.pair_of[pid], gain)

    def exclude(self, k: str) -> None:
        _exclude(self.pairs, self.pid_of[k])

    def merged(
        self, k: str, new: int, occurrences: int, gain: float, rose: Iterable[str], fell: Iterable[str]
    ) -> None:  # fmt: skip
        """After merging `k` into symbol `new`: the pairs whose count rose and those whose count fell
        (a pair may be in both), their counts now in the trainer's `pair_count`."""
        self._add(rose)  # a pair whose count fell has an id
        changed = dict.fromkeys(fell, False)
        changed.update(dict.fromkeys(rose, True))
        ks = list(changed)
        adjacent = np.array(list(map(self.pair_count.get, ks, itertools.repeat(0))), dtype=np.int64)
        merge_count = adjacent
        if same := self.same.intersection(changed):
            merge_count = adjacent.copy()
            for k2 in same:
                merge_count[ks.index(k2)] = self.merge_count(k2)
        self.nodes, self.heap_key, self.heap_pid = _after_merge(
            self.pairs, self.live, self.sym, self.ref, self.fp, self.ctr, self.heap_key, self.heap_pid,
            self.nodes, self.head, self.marked, self.pid_of[k], new, occurrences, gain,
            np.array(list(map(self.pid_of.__getitem__, ks)), dtype=np.int64), adjacent, merge_count,
            np.array(list(changed.values()), dtype=np.bool_),
        )  # fmt: skip

    def first_unbounded(self) -> str | None:
        """For tests: a candidate whose key does not bound its exact gain."""
        pid = _first_unbounded(self.pairs, self.live, self.sym, self.fp, self.ctr, len(self.pair_of))
        return None if pid < 0 else self.pair_of[pid]
