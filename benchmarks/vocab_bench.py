"""Vocabulary training: our WordPiece trainer (likelihood and frequency criteria) against Hugging Face's
BertWordPieceTokenizer.train on the same corpus and vocabulary size, plus sentencepiece BPE and unigram
with input sampling. Each run is a fresh child process, so wall time and peak memory (max RSS, the
child and its own worker processes) are its own.

    python benchmarks/vocab_bench.py [--quick] [--mb 50] [--vocab-size 30000] [--corpus PATH]

The corpus is generated reproducibly (seed 0): Zipf-distributed words from a synthetic lexicon of stems
and affixes, in caption-like sentences with capitals, punctuation, digits, accents and some CJK. It is
cached under the system temp directory. Training is CPU work; `--device` is accepted and ignored.
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
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import report  # noqa: E402

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
    path: str | os.PathLike, target_bytes: int, lexicon_size: int = 300_000, seed: int = 0
) -> int:
    """Write lines until `target_bytes` is reached; returns the number of lines. Same seed, same file."""
    rng = np.random.default_rng(seed)
    lexicon = make_lexicon(lexicon_size, rng)
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
        tok.train([corpus], vocab_size=vocab_size, min_frequency=2, limit_alphabet=1000, show_progress=False)
        size = tok.get_vocab_size()
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
            [corpus], out, model_type=kind.split("-")[1], vocab_size=vocab_size, input_sentence_size=sample
        )
        size = summary.vocab_size
    seconds = time.perf_counter() - start
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mib": own, "worker_peak_mib": workers, "vocab": size, **extra}


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
    ap.add_argument("--corpus", type=Path, default=None, help="use this text file instead of generating one")
    ap.add_argument(
        "--sample",
        type=int,
        default=None,
        help="sentencepiece input_sentence_size (default 100000; 2000 with --quick)",
    )
    ap.add_argument("--repeat", type=int, default=1, help="alternate the WordPiece runs this many times")
    ap.add_argument("--skip-spm", action="store_true", help="only the WordPiece trainers")
    ap.add_argument("--device", default="cpu", help="accepted for uniformity; training runs on the CPU")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    vocab_size = args.vocab_size or (1000 if args.quick else 30000)
    sample = args.sample or (2000 if args.quick else 100_000)
    if args.child:
        print(json.dumps(_child(args.child, str(args.corpus), vocab_size, args.out, sample)))
        return

    mb = 1.0 if args.quick else args.mb
    cache = Path(tempfile.gettempdir()) / "vlprep-vocab-bench"
    cache.mkdir(exist_ok=True)
    corpus = args.corpus or cache / f"corpus-{mb:g}mb-seed0.txt"
    if not corpus.exists():
        t = time.perf_counter()
        write_corpus(corpus, int(mb * 1e6), lexicon_size=20_000 if args.quick else 300_000)
        print(f"generated {corpus} in {time.perf_counter() - t:.1f} s")
    size_mb = corpus.stat().st_size / 1e6
    print(f"corpus {corpus} ({size_mb:.1f} MB), vocab {vocab_size}, cpus {os.cpu_count()}")

    rows = []
    results: dict[str, list[dict]] = {}
    kinds = ["hf", "wordpiece-likelihood", "wordpiece-frequency"]
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            for kind in kinds:
                r = run(kind, corpus, vocab_size, Path(tmp), sample)
                results.setdefault(kind, []).append(r)
                rows.append({"trainer": kind, **{k: v for k, v in r.items() if k != "distinct_words"}})
                print(f"  {kind}: {r['seconds']:.1f} s, peak {r['peak_mib']:.0f} MiB", flush=True)
        if not args.skip_spm:
            for kind in ("spm-bpe", "spm-unigram"):
                r = run(kind, corpus, vocab_size, Path(tmp), sample)
                results[kind] = [r]
                rows.append({"trainer": f"{kind} (sample {sample})", **r})
                print(f"  {kind}: {r['seconds']:.1f} s, peak {r['peak_mib']:.0f} MiB", flush=True)

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
    report("vocab", rows, ratios)


if __name__ == "__main__":
    main()
