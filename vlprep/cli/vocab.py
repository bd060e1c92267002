"""`vlprep vocab bpe|unigram|wordpiece CORPUS... --vocab-size N --out DIR`: subword vocabularies."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from tqdm import tqdm

from . import SuggestingGroup
from .config_file import config_options
from .output import bars_off, emit_json, fail

_FORMATS = ["auto", "text", "jsonl", "coco"]


def _corpus_options(fn):
    fn = config_options(fn)
    fn = click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")(fn)
    fn = click.option(
        "--format",
        "fmt",
        type=click.Choice(_FORMATS),
        default="auto",
        show_default=True,
        help="Corpus format; auto: *.jsonl JSONL, *.json COCO captions, anything else text (.gz for all).",
    )(fn)
    fn = click.option(
        "--field",
        default="caption",
        show_default=True,
        help="JSONL field holding the text (dotted path; a list of strings gives one line each).",
    )(fn)
    fn = click.option("--out", required=True, type=click.Path(path_type=Path), help="Output directory.")(fn)
    fn = click.option("--vocab-size", required=True, type=click.IntRange(min=1), help="Vocabulary size.")(fn)
    fn = click.argument(
        "corpora",
        metavar="CORPUS...",
        nargs=-1,
        required=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
    )(fn)
    return fn


@click.group("vocab", cls=SuggestingGroup)
def vocab_group() -> None:
    """Train subword vocabularies: BPE and unigram (sentencepiece) or WordPiece (likelihood merges), and
    compare them (`vocab eval`)."""


def _bar(desc: str, unit: str, as_json: bool) -> tqdm:
    # disable=None: only on a terminal, so that logs are not filled with progress bars
    return tqdm(desc=desc, unit=unit, disable=bars_off(as_json), leave=False, file=sys.stderr)


def _run(job, bars: list) -> object:
    """Run a vocabulary job; on failure close the progress bars first, then print one line."""
    from vlprep.tokenizers.subword.errors import VocabError

    try:
        return job()
    except VocabError as exc:
        error, code = str(exc), 2 if exc.usage else 1
    except (RuntimeError, ValueError, OSError) as exc:
        error, code = str(exc), 1
    finally:
        for bar in bars:
            if bar is not None:
                bar.close()
    fail(error, code=code)


def _spm_command(model_type: str):
    @_corpus_options
    @click.option(
        "--input-sentence-size",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="Train on a uniform random sample of this many sentences (0: all; sentencepiece keeps "
        "every training sentence in memory).",
    )
    @click.option(
        "--character-coverage",
        type=float,
        default=0.9995,
        show_default=True,
        help="Share of characters covered by the alphabet (1.0 for small alphabets).",
    )
    @click.option("--byte-fallback", is_flag=True, help="Unknown characters become UTF-8 byte pieces.")
    @click.option(
        "--user-defined-symbols", default="", help="Comma-separated symbols always kept as one piece."
    )
    @click.option(
        "--spm-option",
        "spm_options",
        multiple=True,
        metavar="KEY=VALUE",
        help="Any other sentencepiece trainer option (repeatable).",
    )
    @click.option("--verbose", is_flag=True, help="Show sentencepiece's own log.")
    def command(
        corpora,
        vocab_size,
        out,
        field,
        fmt,
        as_json,
        input_sentence_size,
        character_coverage,
        byte_fallback,
        user_defined_symbols,
        spm_options,
        verbose,
    ):
        from vlprep.tokenizers.subword.build import build_sentencepiece
        from vlprep.tokenizers.subword.sentencepiece import parse_options

        try:
            options = parse_options(spm_options)
        except ValueError as exc:
            fail(str(exc), code=2)
        symbols = [s for s in user_defined_symbols.split(",") if s]
        bar = _bar("lines read", " lines", as_json)
        summary = _run(
            lambda: build_sentencepiece(
                corpora,
                out,
                model_type=model_type,
                vocab_size=vocab_size,
                field=field,
                fmt=fmt,
                input_sentence_size=input_sentence_size,
                character_coverage=character_coverage,
                byte_fallback=byte_fallback,
                user_defined_symbols=symbols,
                options=options,
                on_lines=bar.update,
                verbose=verbose,
            ),
            [bar],
        )
        _finish(summary, as_json)

    command.__doc__ = (
        f"{'BPE' if model_type == 'bpe' else 'Unigram'} vocabulary with sentencepiece: writes OUT/spm.model "
        "and OUT/spm.vocab."
    )
    return command


vocab_group.command("bpe")(_spm_command("bpe"))
vocab_group.command("unigram")(_spm_command("unigram"))


@vocab_group.command("wordpiece")
@_corpus_options
@click.option(
    "--criterion",
    type=click.Choice(["likelihood", "frequency"]),
    default="likelihood",
    show_default=True,
    help="likelihood: the pair whose merge most raises the corpus likelihood under a unigram model "
    "(WordPiece as published); frequency: the most frequent pair (what Hugging Face's WordPieceTrainer "
    "does).",
)
@click.option(
    "--min-gain",
    type=float,
    default=None,
    help="likelihood only: stop once the best merge raises the log-likelihood by less than this (0: stop "
    "when no merge raises it)  [default: fill --vocab-size].",
)
@click.option("--cased", is_flag=True, help="Keep case and accents (no lower-casing, no accent stripping).")
@click.option(
    "--min-frequency",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Only pairs seen at least this often are merged.",
)
@click.option(
    "--limit-alphabet",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Keep the most frequent characters; others are dropped from words.",
)
@click.option(
    "--max-piece-length",
    type=click.IntRange(min=1),
    default=None,
    help="Longest piece, in characters without the ## prefix  [default: no limit].",
)
@click.option(
    "--special-tokens",
    default="[PAD],[UNK],[CLS],[SEP],[MASK]",
    show_default=True,
    help="Comma-separated special tokens, written first.",
)
@click.option("--unk-token", default="[UNK]", show_default=True)
@click.option(
    "--max-input-chars-per-word",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Longer words encode as the unknown token (stored in tokenizer.json).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Processes counting words  [default: all CPUs].",
)
def wordpiece_cmd(
    corpora,
    vocab_size,
    out,
    field,
    fmt,
    as_json,
    criterion,
    min_gain,
    cased,
    min_frequency,
    limit_alphabet,
    max_piece_length,
    special_tokens,
    unk_token,
    max_input_chars_per_word,
    workers,
):
    """WordPiece vocabulary with our trainer: writes OUT/vocab.txt (BERT format) and OUT/tokenizer.json
    (Hugging Face)."""
    from vlprep.tokenizers.subword.build import build_wordpiece

    if min_gain is not None and criterion != "likelihood":
        fail("--min-gain applies to --criterion likelihood only", code=2)
    specials = [s for s in special_tokens.split(",") if s]
    lines_bar = _bar("lines read", " lines", as_json)
    bars = [lines_bar, None]

    def on_merges(n: int) -> None:
        if bars[1] is None:
            lines_bar.close()
            bars[1] = _bar("merges", " merges", as_json)
        bars[1].update(n - bars[1].n)

    summary = _run(
        lambda: build_wordpiece(
            corpora,
            out,
            vocab_size=vocab_size,
            field=field,
            fmt=fmt,
            lowercase=not cased,
            criterion=criterion,
            min_frequency=min_frequency,
            min_gain=min_gain,
            limit_alphabet=limit_alphabet,
            max_piece_length=max_piece_length,
            special_tokens=specials,
            unk_token=unk_token,
            max_input_chars_per_word=max_input_chars_per_word,
            workers=workers,
            on_lines=lines_bar.update,
            on_merges=on_merges,
        ),
        bars,
    )
    _finish(summary, as_json)


def _finish(summary, as_json: bool) -> None:
    if as_json:
        emit_json(summary.as_dict())
    else:
        click.echo(summary.line())


@vocab_group.command("eval")
@click.argument("vocabs", metavar="VOCAB...", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--corpus",
    "corpora",
    multiple=True,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Held-out text to measure on (repeatable; same formats as training).",
)
@click.option("--field", default="caption", show_default=True, help="JSONL field holding the text.")
@click.option("--format", "fmt", type=click.Choice(_FORMATS), default="auto", show_default=True)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Measure how many of the corpus's TOP most frequent words are kept whole.",
)
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Also draw the table as a PNG.")
@click.option("--json", "as_json", is_flag=True, help="Print the measures as JSON.")
@config_options
def eval_cmd(vocabs, corpora, field, fmt, top, plot, as_json):
    """Compare vocabularies on held-out text: tokens per word, characters per token, unknown rate, unigram
    log-likelihood per word, share of the most frequent words kept whole. VOCAB is a WordPiece vocab.txt
    or tokenizer.json, a sentencepiece .model, or a directory holding one."""
    from vlprep.tokenizers.subword.corpora import iter_lines
    from vlprep.tokenizers.subword.evaluate import evaluate, load_encoder, short_names, table

    if plot is not None and plot.suffix.lower() != ".png":
        fail(f"--plot writes a PNG: give a .png path, not {plot}", code=2)

    def job():
        encoders = [load_encoder(v) for v in vocabs]  # all checked before the corpus is read
        lines = list(iter_lines(corpora, field=field, fmt=fmt))
        names = short_names(vocabs)
        return [
            evaluate(enc, lines, name=name, path=str(v), top=top)
            for enc, name, v in zip(encoders, names, vocabs)
        ]

    results = _run(job, [])
    if plot is not None:
        from vlprep.tokenizers.subword.eval_plot import plot as draw

        plot.parent.mkdir(parents=True, exist_ok=True)
        draw(results, plot)
    if as_json:
        emit_json([r.as_dict() for r in results])
    else:
        click.echo(table(results))
        click.echo(
            f"{len(results)} vocabularies on {results[0].words} held-out words"
            + (f"; plot: {plot}" if plot is not None else "")
        )
