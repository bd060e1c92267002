"""Vocabulary training: our WordPiece trainer (likelihood and frequency criteria) against Hugging Face's
BertWordPieceTokenizer.train on the same corpus and vocabulary size, plus sentencepiece BPE and unigram
with input sampling. Each run is a fresh child process, so wall time, CPU time and peak memory (max RSS,
the child and its own worker processes) are its own; CPU above wall means more than one core worked (and
for ours, the counting and training phases are shown apart). Then every vocabulary is measured on
held-out text with `vlprep vocab eval`'s measures (tokens per word, characters per token, unknown rate,
unigram log-likelihood per word, top-100 words whole).

    python benchmarks/vocab_bench.py [--quick] [--mb 50] [--vocab-size 30000] [--corpus PATH]
    python benchmarks/vocab_bench.py --real [--real-size 8000]
    python benchmarks/vocab_bench.py --train-cpu [--repeat 2]     # our trainer's CPU time only

The corpus is generated reproducibly (seed 0): Zipf-distributed words from a synthetic lexicon of stems
and affixes, in caption-like sentences with capitals, punctuation, digits, accents and some CJK; the
held-out text is 1 MB more from the same lexicon (other sentences). Both are cached under the system
temp directory. `--real` instead compares the two WordPiece criteria on real English: the docstrings of
this Python's standard library (all of Lib/, read with `ast`), 90% to train and 10% held out. Training
is CPU work; `--device` is accepted and ignored.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import report, timed  # noqa: E402

_ONSETS = [
    "",
    "b",
    "c",
    "d",
    "f",
    "g",
    "h",
    "j",
    "k",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "t",
    "v",
    "w",
    "z",
    "br",
    "ch",
    "cl",
    "dr",
    "fl",
    "gr",
    "pl",
    "pr",
    "sh",
    "sk",
    "st",
    "str",
    "th",
    "tr",
]
_NUCLEI = ["a", "e", "i", "o", "u", "ai", "ea", "ee", "oo", "ou", "y", "é", "ö"]
_CODAS = ["", "", "", "n", "r", "s", "t", "l", "m", "ng", "ck", "st", "nd", "rk"]
_SUFFIXES = ["", "", "", "", "s", "ed", "ing", "er", "ly", "ness", "tion", "able", "ful", "est"]
_PREFIXES = ["", "", "", "", "", "", "un", "re", "pre", "dis", "over", "sub"]
_PUNCT = [",", ",", ".", "!", "?", ";", ":", "-", "(", ")", "'s"]
_CJK = [chr(c) for c in range(0x4E00, 0x4E00 + 800)]


def make_lexicon(size: int, rng: np.random.Generator) -> list[str]:
    stems: set[str] = set()
    n_stems = max(size // 4, 100)
    while len(stems) < n_stems:
        n_syll = int(rng.integers(1, 4))
        stems.add(
            "".join(
                _ONSETS[rng.integers(len(_ONSETS))]
                + _NUCLEI[rng.integers(len(_NUCLEI))]
                + _CODAS[rng.integers(len(_CODAS))]
                for _ in range(n_syll)
            )
        )
    stem_list = sorted(stems)
    rng.shuffle(stem_list)
    words: set[str] = set()
    while len(words) < size:
        stem = stem_list[int(rng.zipf(1.3)) % len(stem_list)]
        words.add(_PREFIXES[rng.integers(len(_PREFIXES))] + stem + _SUFFIXES[rng.integers(len(_SUFFIXES))])
    out = sorted(words)
    rng.shuffle(out)
    return out


def write_corpus(
    path: str | os.PathLike,
    target_bytes: int,
    lexicon_size: int = 300_000,
    seed: int = 0,
    sentence_seed: int | None = None,
) -> int:
    """Write lines until `target_bytes` is reached; returns the number of lines. Same seed, same file;
    `sentence_seed` draws other sentences from the same lexicon (held-out text)."""
    rng = np.random.default_rng(seed)
    lexicon = make_lexicon(lexicon_size, rng)
    if sentence_seed is not None:
        rng = np.random.default_rng(sentence_seed)
    ranks = np.arange(1, lexicon_size + 1, dtype=np.float64)
    p = ranks**-1.05
    p /= p.sum()
    written = lines = 0
    with open(path, "w", encoding="utf-8") as f:
        while written < target_bytes:
            n = int(min(20_000, max(1_000, (target_bytes - written) // 150)))
            lengths = rng.integers(4, 18, size=n)
            idx = rng.choice(lexicon_size, size=int(lengths.sum()), p=p)
            extras = rng.random(size=idx.size)
            out_lines = []
            pos = 0
            for length in lengths:
                toks = []
                for k in range(pos, pos + int(length)):
                    w = lexicon[idx[k]]
                    r = extras[k]
                    if r < 0.04:
                        w = w.capitalize()
                    elif r < 0.05:
                        w = str(int(r * 100000) % 1000)
                    elif r < 0.055:
                        w = _CJK[int(r * 1e7) % len(_CJK)] + _CJK[int(r * 1e9) % len(_CJK)]
                    toks.append(w)
                    if 0.9 < r < 0.97:
                        toks.append(_PUNCT[int(r * 1000) % len(_PUNCT)])
                pos += int(length)
                toks[0] = toks[0].capitalize()
                out_lines.append(" ".join(toks) + " .")
            chunk = "\n".join(out_lines) + "\n"
            f.write(chunk)
            written += len(chunk.encode("utf-8"))
            lines += n
    return lines


def _child(kind: str, corpus: str, vocab_size: int, out: str, sample: int) -> dict:
    """Runs in a fresh process: train once, report seconds and peak RSS (MiB)."""
    start = time.perf_counter()
    extra: dict = {}
    if kind == "hf":
        from tokenizers import BertWordPieceTokenizer

        tok = BertWordPieceTokenizer(lowercase=True)
        tok.train(
            [corpus],
            vocab_size=vocab_size,
            min_frequency=2,
            limit_alphabet=1000,
            show_progress=False,
        )
        size = tok.get_vocab_size()
        seconds = time.perf_counter() - start
        Path(out).mkdir(parents=True, exist_ok=True)
        tok.save(str(Path(out) / "tokenizer.json"))
        start -= time.perf_counter() - start - seconds  # saving is not training
    elif kind.startswith("wordpiece"):
        from vlprep.tokenizers.subword.build import build_wordpiece

        summary = build_wordpiece([corpus], out, vocab_size=vocab_size, criterion=kind.split("-")[1])
        size = summary.vocab_size
        extra = {
            "count_s": summary.seconds_counting,
            "train_s": summary.seconds_training,
            "distinct_words": summary.distinct_words,
        }
    else:
        from vlprep.tokenizers.subword.build import build_sentencepiece

        summary = build_sentencepiece(
            [corpus],
            out,
            model_type=kind.split("-")[1],
            vocab_size=vocab_size,
            input_sentence_size=sample,
        )
        size = summary.vocab_size
    seconds = time.perf_counter() - start
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    own, workers = (u.ru_maxrss / 1024 for u in usage)
    return {
        "seconds": seconds,
        # CPU of the process and its counting workers since the process started (imports and Hugging
        # Face's save included, a few tenths): above `seconds` where more than one core works
        "cpu_s": sum(u.ru_utime + u.ru_stime for u in usage),
        "peak_mib": own,
        "worker_peak_mib": workers,
        "vocab": size,
        **extra,
    }


def eval_rows(outs: dict[str, Path], held_out: Path) -> tuple[list[dict], dict[str, float]]:
    """The measures of `vlprep vocab eval` for each trained vocabulary, on the held-out text."""
    from vlprep.tokenizers.subword.corpora import iter_lines
    from vlprep.tokenizers.subword.evaluate import evaluate, load_encoder

    lines = list(iter_lines([held_out]))
    rows, values = [], {}
    for kind, out in outs.items():
        r = evaluate(load_encoder(out), lines, name=kind, path=str(out))
        rows.append(
            {
                "vocabulary": kind,
                "size": r.vocab_size,
                "tokens/word": r.tokens_per_word,
                "chars/token": r.chars_per_token,
                "unk": r.unk_rate,
                "loglik/word": r.loglik_per_word,
                "top100 whole": r.top_words_whole,
            }
        )
        values[f"tokens_per_word_{kind}"] = r.tokens_per_word
        values[f"loglik_per_word_{kind}"] = r.loglik_per_word
        values[f"top100_whole_{kind}"] = r.top_words_whole
    return rows, values


def pretokenizer_speed(corpus: Path, max_bytes: int) -> dict[str, float]:
    """Word counting with our BertPreTokenizer against Hugging Face's BertNormalizer + BertPreTokenizer
    (which it equals, tests/test_vocab_hf.py), on the corpus's first `max_bytes`: per distinct
    whitespace token (what count_words does) and on whole blocks of lines."""
    from tokenizers.normalizers import BertNormalizer
    from tokenizers.pre_tokenizers import BertPreTokenizer as HFPreTokenizer

    from vlprep.tokenizers.subword import BertPreTokenizer, iter_text_blocks

    blocks, size = [], 0
    for block in iter_text_blocks([corpus]):
        blocks.append(block)
        size += len(block)
        if size >= max_bytes:
            break
    ours = BertPreTokenizer()
    tokens: Counter[str] = Counter()
    for block in blocks:
        ours.count_tokens(block, tokens)
    normalizer, pre = BertNormalizer(lowercase=True), HFPreTokenizer()

    def hf_per_token() -> Counter[str]:
        words: Counter[str] = Counter()
        for token, n in tokens.items():
            for word, _ in pre.pre_tokenize_str(normalizer.normalize_str(token)):
                words[word] += n
        return words

    def hf_blocks() -> Counter[str]:
        words: Counter[str] = Counter()
        for block in blocks:
            words.update(w for w, _ in pre.pre_tokenize_str(normalizer.normalize_str(block)))
        return words

    t_ours = timed(lambda: ours.words_of_tokens(tokens))
    t_tokens = timed(hf_per_token)
    t_blocks = timed(hf_blocks)
    assert ours.words_of_tokens(tokens) == hf_per_token() == hf_blocks()
    print(
        f"pre-tokenization of {size / 1e6:.1f} MB ({len(tokens)} distinct tokens): ours {t_ours:.2f} s, "
        f"Hugging Face per distinct token {t_tokens:.2f} s, on whole blocks {t_blocks:.2f} s (equal counts)"
    )
    return {
        "hf_pretokenize_per_token_time_over_ours": t_tokens / t_ours,
        "hf_pretokenize_blocks_time_over_ours": t_blocks / t_ours,
    }


def real_text_lines() -> list[str]:
    """Docstring lines of every module of this Python's standard library, in path order."""
    import ast

    lines: list[str] = []
    for path in sorted(Path(os.__file__).parent.rglob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc:
                    lines.extend(line.strip() for line in doc.splitlines() if line.strip())
    return lines


def real_text(vocab_size: int) -> None:
    """Likelihood against frequency on real English: held-out tokens per word and the top 100 words."""
    from vlprep.tokenizers.subword import BertPreTokenizer, WordPieceTokenizer
    from vlprep.tokenizers.subword.wordpiece_trainer import train_wordpiece

    lines = real_text_lines()
    cut = len(lines) * 9 // 10
    pre = BertPreTokenizer()
    counts = pre.count_words("\n".join(lines[:cut]))
    held_out = pre.words("\n".join(lines[cut:]))
    top = [w for w, _ in counts.most_common(100)]
    print(
        f"real text: {sum(map(len, lines)) / 1e6:.1f} MB of stdlib docstrings, {sum(counts.values())} "
        f"training words, {len(held_out)} held out, vocab {vocab_size}"
    )
    rows, tokens = [], {}
    for criterion in ("likelihood", "frequency"):
        start = time.perf_counter()
        vocab = train_wordpiece(counts, vocab_size, criterion=criterion)
        seconds = time.perf_counter() - start
        tok = WordPieceTokenizer(vocab.tokens)
        tokens[criterion] = sum(len(tok.tokenize_word(w)) for w in held_out)
        missing = [w for w in top if w not in set(vocab.tokens)]
        rows.append(
            {
                "criterion": criterion,
                "train_s": seconds,
                "tokens/word": tokens[criterion] / len(held_out),
                "top100 missing": len(missing),
            }
        )
    report(
        "vocab_real_text",
        rows,
        {"likelihood_tokens_over_frequency_tokens": tokens["likelihood"] / tokens["frequency"]},
    )


def train_cpu(corpus: Path, vocab_size: int, repeat: int) -> None:
    """CPU seconds (`time.process_time`) of `train_wordpiece` alone, both criteria alternated, on the
    corpus's word counts (counted once). Unlike wall time against Hugging Face's two threads, this hardly
    moves with the machine's load: run it at two commits to compare trainer versions."""
    from vlprep.tokenizers.subword import BertPreTokenizer, count_words, iter_text_blocks
    from vlprep.tokenizers.subword.wordpiece_trainer import train_wordpiece

    counts = count_words(iter_text_blocks([corpus]), BertPreTokenizer(), workers=1).counts
    cpu: dict[str, list[float]] = {"likelihood": [], "frequency": []}
    for _ in range(repeat):
        for criterion in cpu:
            start = time.process_time()
            vocab = train_wordpiece(counts, vocab_size, criterion=criterion)
            cpu[criterion].append(time.process_time() - start)
            print(f"  {criterion}: {cpu[criterion][-1]:.2f} s CPU, {len(vocab.tokens)} tokens", flush=True)
    rows = [
        {"criterion": c, "best_cpu_s": min(v), "runs": ", ".join(f"{x:.2f}" for x in v)}
        for c, v in cpu.items()
    ]
    print(f"{len(counts)} distinct words, vocab {vocab_size}")
    report(
        "vocab_train_cpu",
        rows,
        {"likelihood_cpu_over_frequency_cpu": min(cpu["likelihood"]) / min(cpu["frequency"])},
    )


def first_use() -> float:
    """Seconds of a tiny likelihood training in a fresh process. The first one after an install or an
    edit of the module compiles the selection with numba (several seconds) and caches it under
    __pycache__; later processes load it from there. Run before the timed runs, so that none of them
    compiles."""
    code = (
        "from vlprep.tokenizers.subword.wordpiece_trainer import train_wordpiece; "
        "train_wordpiece({'hello': 5, 'help': 3, 'yellow': 4}, 20, min_frequency=1)"
    )
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def run(kind: str, corpus: Path, vocab_size: int, out: Path, sample: int) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "--corpus",
        str(corpus),
        "--vocab-size",
        str(vocab_size),
        "--out",
        str(out / kind),
        "--sample",
        str(sample),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{kind} failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 MB corpus, vocab 1000: a smoke run")
    ap.add_argument("--mb", type=float, default=50.0, help="corpus size in MB (default 50)")
    ap.add_argument("--vocab-size", type=int, default=None, help="default 30000 (1000 with --quick)")
    ap.add_argument(
        "--corpus",
        type=Path,
        default=None,
        help="use this text file instead of generating one",
    )
    ap.add_argument(
        "--sample",
        type=int,
        default=None,
        help="sentencepiece input_sentence_size (default 100000; 2000 with --quick)",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="alternate the WordPiece runs this many times",
    )
    ap.add_argument("--skip-spm", action="store_true", help="only the WordPiece trainers")
    ap.add_argument(
        "--train-cpu",
        action="store_true",
        help="only our trainer's CPU time (both criteria, --repeat times) on the corpus's word counts",
    )
    ap.add_argument(
        "--real",
        action="store_true",
        help="likelihood vs frequency on stdlib docstrings",
    )
    ap.add_argument("--real-size", type=int, default=8000, help="vocabulary size for --real (8000)")
    ap.add_argument(
        "--device",
        default="cpu",
        help="accepted for uniformity; training runs on the CPU",
    )
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    vocab_size = args.vocab_size or (1000 if args.quick else 30000)
    sample = args.sample or (2000 if args.quick else 100_000)
    if args.child:
        print(json.dumps(_child(args.child, str(args.corpus), vocab_size, args.out, sample)))
        return
    if args.real:
        real_text(args.real_size)
        return

    mb = 1.0 if args.quick else args.mb
    cache = Path(tempfile.gettempdir()) / "vlprep-vocab-bench"
    cache.mkdir(exist_ok=True)
    corpus = args.corpus or cache / f"corpus-{mb:g}mb-seed0.txt"
    if not corpus.exists():
        t = time.perf_counter()
        write_corpus(corpus, int(mb * 1e6), lexicon_size=20_000 if args.quick else 300_000)
        print(f"generated {corpus} in {time.perf_counter() - t:.1f} s")
    held_mb, lexicon = (0.2, 20_000) if args.quick else (1.0, 300_000)
    held_out = cache / f"held-out-{held_mb:g}mb-lexicon{lexicon}.txt"
    if not held_out.exists():
        write_corpus(held_out, int(held_mb * 1e6), lexicon_size=lexicon, sentence_seed=1)
    size_mb = corpus.stat().st_size / 1e6
    print(
        f"corpus {corpus} ({size_mb:.1f} MB), vocab {vocab_size}, cpus {os.cpu_count()}, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    print(f"our likelihood trainer's first use: {first_use():.1f} s", flush=True)
    if args.train_cpu:
        train_cpu(corpus, vocab_size, args.repeat)
        return

    rows = []
    results: dict[str, list[dict]] = {}
    kinds = ["hf", "wordpiece-likelihood", "wordpiece-frequency"]
    eval_table: list[dict] = []
    eval_values: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            for kind in kinds:
                r = run(kind, corpus, vocab_size, Path(tmp), sample)
                results.setdefault(kind, []).append(r)
                rows.append(
                    {
                        "trainer": kind,
                        **{k: v for k, v in r.items() if k != "distinct_words"},
                    }
                )
                split = (
                    f" (counting {r['count_s']:.1f} s, training and writing {r['train_s']:.1f} s)"
                    if "count_s" in r
                    else ""
                )
                print(
                    f"  {kind}: {r['seconds']:.1f} s{split}, {r['cpu_s']:.1f} s CPU, "
                    f"peak {r['peak_mib']:.0f} MiB",
                    flush=True,
                )
        if not args.skip_spm:
            for kind in ("spm-bpe", "spm-unigram"):
                r = run(kind, corpus, vocab_size, Path(tmp), sample)
                results[kind] = [r]
                rows.append({"trainer": f"{kind} (sample {sample})", **r})
                print(
                    f"  {kind}: {r['seconds']:.1f} s, peak {r['peak_mib']:.0f} MiB",
                    flush=True,
                )
        outs = {k: Path(tmp) / k for k in results if (Path(tmp) / k).exists()}
        if args.corpus is None:  # held-out text from the generated corpus's lexicon
            eval_table, eval_values = eval_rows(outs, held_out)

    def best(kind: str) -> dict:
        return min(results[kind], key=lambda r: r["seconds"])

    hf = best("hf")
    ours = best("wordpiece-likelihood")
    ratios = {
        "hf_time_over_wordpiece_likelihood_time": hf["seconds"] / ours["seconds"],
        "hf_time_over_wordpiece_frequency_time": hf["seconds"] / best("wordpiece-frequency")["seconds"],
        "hf_peak_over_wordpiece_likelihood_peak": hf["peak_mib"]
        / (ours["peak_mib"] + ours["worker_peak_mib"]),
    }
    if not args.skip_spm:
        ratios["spm_bpe_time_over_wordpiece_likelihood_time"] = best("spm-bpe")["seconds"] / ours["seconds"]
        ratios["spm_unigram_time_over_wordpiece_likelihood_time"] = (
            best("spm-unigram")["seconds"] / ours["seconds"]
        )
    print(
        "(ratios above 1: our WordPiece is faster / smaller; our peak memory counts the main process "
        f"plus the largest counting worker; corpus {size_mb:.1f} MB, vocab {vocab_size})"
    )
    ratios.update(pretokenizer_speed(corpus, int(1e6 if args.quick else 10e6)))
    report("vocab", rows, ratios, eval_values)
    if eval_table:
        print(f"held-out text {held_out} (vocabularies of {vocab_size}):")
        report("vocab_eval", eval_table, {})


if __name__ == "__main__":
    main()
