"""Word counts of a corpus under BERT pre-tokenization, in parallel over blocks of lines.

Whitespace-separated tokens are counted first (`str.split` and `Counter`, both C code) and each
distinct token is normalized and split into BERT words only once, at the end: a corpus has far fewer
distinct tokens than tokens. Worker processes each take blocks of a few MB from a bounded queue (so the
corpus is streamed, never read ahead), keep their own token counts, and return their word counts once;
the parent only reads and adds up one table per worker. A corpus of a block or two is counted in the
calling process: starting workers would cost more than it saves.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import queue
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from vlprep.tokenizers.subword.bert_pretokenizer import BertPreTokenizer, _unicode_tables


@dataclass
class WordCounts:
    counts: Counter[str]
    lines: int
    words: int

    @property
    def distinct(self) -> int:
        return len(self.counts)


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _lines_in(block: str) -> int:
    return block.count("\n") + 1


def _worker(config: dict[str, bool], tasks: multiprocessing.Queue, results: multiprocessing.Queue) -> None:
    # Token tables hold no reference cycles; a collection would also walk (and copy on write) every object
    # a forked worker inherited from its parent.
    gc.disable()
    try:
        pretokenizer = BertPreTokenizer(**config)
        tokens: Counter[str] = Counter()
        while True:
            block = tasks.get()
            if block is None:
                break
            pretokenizer.count_tokens(block, tokens)
        results.put(("ok", pretokenizer.words_of_tokens(tokens)))
    except BaseException as exc:  # reported to the parent, which raises
        results.put(("error", f"{type(exc).__name__}: {exc}"))


def count_words(
    blocks: Iterable[str],
    pretokenizer: BertPreTokenizer | None = None,
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> WordCounts:
    """Count the words of `blocks` (strings of newline-separated lines). `progress(n_lines)` is called
    as blocks are handed out."""
    pretokenizer = pretokenizer or BertPreTokenizer()
    workers = default_workers() if workers is None else max(1, workers)
    it = iter(blocks)
    head: list[str] = []
    for block in it:
        head.append(block)
        if len(head) >= 2:
            break
    lines = 0
    if workers == 1 or len(head) < 2:
        tokens: Counter[str] = Counter()
        for block in _chain(head, it):
            pretokenizer.count_tokens(block, tokens)
            n = _lines_in(block)
            lines += n
            if progress is not None:
                progress(n)
        total = pretokenizer.words_of_tokens(tokens)
    else:
        total, lines = _count_parallel(_chain(head, it), pretokenizer, workers, progress)
    total.pop("", None)
    return WordCounts(counts=total, lines=lines, words=sum(total.values()))


def _count_parallel(
    blocks: Iterator[str],
    pretokenizer: BertPreTokenizer,
    workers: int,
    progress: Callable[[int], None] | None,
) -> tuple[Counter[str], int]:
    # fork where there is one: workers start in milliseconds and, unlike spawn, do not re-run a caller's
    # script that lacks a __main__ guard; they only run pure-Python string code
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    _unicode_tables()  # built once here, inherited by forked workers
    tasks = ctx.Queue(maxsize=2 * workers)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(pretokenizer.config(), tasks, results), daemon=True)
        for _ in range(workers)
    ]
    gc.freeze()  # keep the parent's objects out of the workers' collections (copy-on-write)
    try:
        for p in procs:
            p.start()
    finally:
        gc.unfreeze()
    lines = 0
    try:
        for block in blocks:
            _put(tasks, block, procs)
            n = _lines_in(block)
            lines += n
            if progress is not None:
                progress(n)
        for _ in procs:
            _put(tasks, None, procs)
        total: Counter[str] = Counter()
        for _ in procs:
            status, payload = _get(results, procs)
            if status != "ok":
                raise RuntimeError(f"word counting worker failed: {payload}")
            total.update(payload)
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
    return total, lines


def _put(tasks: multiprocessing.Queue, item: str | None, procs: list) -> None:
    while True:
        try:
            tasks.put(item, timeout=1.0)
            return
        except queue.Full:
            _check_alive(procs)


def _get(results: multiprocessing.Queue, procs: list) -> tuple[str, object]:
    while True:
        try:
            return results.get(timeout=1.0)
        except queue.Empty:
            _check_alive(procs)


def _check_alive(procs: list) -> None:
    dead = [p.exitcode for p in procs if not p.is_alive() and p.exitcode not in (0, None)]
    if dead:
        raise RuntimeError(f"a word counting worker died (exit code {dead[0]}); out of memory?")


def _chain(head: list[str], rest: Iterator[str]) -> Iterator[str]:
    yield from head
    yield from rest
