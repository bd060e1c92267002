"""`vlprep tokens fit` and `vlprep tokens assign`: visual words by hierarchical k-means (VideoBERT)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from tqdm import tqdm

from . import SuggestingGroup
from .config_file import config_options
from .output import bars_off, emit_json, fail, quiet_stdout


@click.group("tokens", cls=SuggestingGroup)
def tokens_group() -> None:
    """Visual tokens: fit a hierarchical k-means codebook on feature stores, then map features to ids."""


def _fmt_errors(errors: list[float]) -> str:
    return " ".join(f"{e:.4g}" for e in errors)


@tokens_group.command("fit")
@click.argument(
    "stores", metavar="STORE...", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path)
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Codebook file to write (.h5).")
@click.option("--levels", default=4, show_default=True, type=click.IntRange(min=1), help="Depth of the tree.")
@click.option(
    "--branching",
    default=12,
    show_default=True,
    type=click.IntRange(min=2),
    help="Children per node (k of each k-means).",
)
@click.option(
    "--sample",
    type=click.IntRange(min=1),
    default=None,
    help="Rows to fit on, drawn uniformly  [default: 50 per leaf].",
)
@click.option(
    "--iters", default=20, show_default=True, type=click.IntRange(min=1), help="k-means iterations per node."
)
@click.option(
    "--n-init",
    default=3,
    show_default=True,
    type=click.IntRange(min=1),
    help="k-means runs per node at the top levels (best kept).",
)
@click.option(
    "--init-levels",
    default=2,
    show_default=True,
    type=click.IntRange(min=0),
    help="How many top levels get --n-init runs.",
)
@click.option(
    "--max-points-per-centroid",
    default=256,
    show_default=True,
    type=click.IntRange(min=1),
    help="Each node's k-means trains on at most this many points per child (a random subset).",
)
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--normalize",
    type=click.Choice(["none", "l2"]),
    default="none",
    show_default=True,
    help="Normalise features before clustering (stored in the codebook, applied at assignment).",
)
@click.option("--field", default="features", show_default=True, help="Store field holding the features.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@config_options
def fit_cmd(
    stores,
    out,
    levels,
    branching,
    sample,
    iters,
    n_init,
    init_levels,
    max_points_per_centroid,
    seed,
    normalize,
    field,
    as_json,
):
    """Fit a LEVELS-deep, BRANCHING-way k-means tree on the features of one or more stores."""
    from vlprep.pipelines.tokens import store_rows
    from vlprep.tokenizers.visual import fit

    quiet = bars_off(as_json)
    t0 = time.perf_counter()
    bars: dict[str, tqdm] = {}

    def on_rows(n: int) -> None:
        if "rows" not in bars:
            bars["rows"] = tqdm(desc="sample", unit="rows", disable=quiet, file=sys.stderr)
        bars["rows"].update(n)

    def on_level(level: int, nodes: int) -> None:
        for bar in bars.values():
            bar.close()
        bars.clear()
        bars["level"] = tqdm(
            total=nodes, desc=f"level {level}/{levels}", unit="node", disable=quiet, file=sys.stderr
        )

    def on_node() -> None:
        bars["level"].update(1)

    try:
        codebook = fit(
            store_rows([str(s) for s in stores], field),
            levels=levels,
            branching=branching,
            sample=sample,
            iters=iters,
            seed=seed,
            normalize=normalize,
            n_init=n_init,
            init_levels=init_levels,
            max_points_per_centroid=max_points_per_centroid,
            field=field,
            on_rows=on_rows,
            on_level=on_level,
            on_node=on_node,
        )
    except ValueError as exc:  # no usable feature rows: the data, not the options
        fail(str(exc), 1)
    finally:
        for bar in bars.values():
            bar.close()
    codebook.params["sources"] = [str(s) for s in stores]
    codebook.save(out)
    summary = codebook.summary()
    summary.update(out=str(out), seconds=round(time.perf_counter() - t0, 3))
    summary["warnings"] = fit_warnings(summary)
    if as_json:
        emit_json(summary)
        return
    st = summary
    for warning in summary["warnings"]:
        click.echo(f"warning: {warning}", err=True)
    click.echo(
        f"tokens fit: {st['sample_size']:,} points (of {st['points_seen']:,}), "
        f"{st['leaves_used']:,}/{st['vocab_size']:,} leaves used, "
        f"tiny/empty/duplicated nodes "
        f"{sum(st['tiny_nodes'])}/{sum(st['empty_nodes'])}/{sum(st['duplicated_nodes'])}, "
        f"error per level {_fmt_errors(st['error'])}, {st['seconds']:.1f} s -> {out}"
    )


def fit_warnings(summary: dict) -> list[str]:
    """What a user should know about a fit that "worked": far fewer rows than leaves leaves most leaves
    empty, so most token ids can never be assigned."""
    rows, leaves = summary["points_seen"], summary["vocab_size"]
    if rows < leaves:
        return [
            f"{rows:,} rows for {leaves:,} leaves: at most {rows:,} token ids can ever be used; fit on more "
            "features or use fewer --levels / a smaller --branching"
        ]
    return []


@tokens_group.command("assign")
@click.argument("store", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--codebook",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="Codebook from `tokens fit`.",
)
@click.option(
    "--out", type=click.Path(path_type=Path), help="Token store to write (same ids; tokens + timestamps)."
)
@click.option("--in-place", is_flag=True, help="Add a `tokens` field to STORE itself (atomically) instead.")
@click.option("--field", default="features", show_default=True, help="Store field holding the features.")
@click.option(
    "--workers",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Ray tasks at once (0: in this process).",
)
@click.option(
    "--address",
    default=None,
    help="Ray cluster to join  [default: $RAY_ADDRESS if set, else a local Ray when --workers > 0].",
)
@click.option(
    "--chunk-items", default=256, show_default=True, type=click.IntRange(min=1), help="Items per task."
)
@click.option(
    "--shard-size",
    default=1000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Items per shard of the new store.",
)
@click.option("--overwrite", is_flag=True, help="Wipe an existing output store first instead of resuming it.")
@click.option("--device", default="cpu", show_default=True, help="torch device for the descent (cpu, cuda).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@config_options
def assign_cmd(
    store,
    codebook,
    out,
    in_place,
    field,
    workers,
    address,
    chunk_items,
    shard_size,
    overwrite,
    device,
    as_json,
):
    """Map the features of STORE to token ids with a codebook (tree descent)."""
    from vlprep.pipelines.tokens import assign_store
    from vlprep.store import FeatureStore

    if in_place == (out is not None):
        raise click.UsageError("give exactly one of --out STORE2 and --in-place")
    total = len(FeatureStore(store))
    bar = tqdm(total=total, desc="assign", unit="item", disable=bars_off(as_json), file=sys.stderr)
    with quiet_stdout(), bar:
        summary = assign_store(
            store,
            codebook,
            out,
            in_place=in_place,
            field=field,
            workers=workers,
            address=address,
            chunk_items=chunk_items,
            shard_size=shard_size,
            overwrite=overwrite,
            device=device,
            progress=bar.update,
        )
    if as_json:
        emit_json(summary)
        return
    click.echo(
        f"tokens assign: {summary['ok']:,} ok, {summary['failed']:,} failed, {summary['skipped']:,} skipped, "
        f"{summary.get('tokens', 0):,} tokens, {summary['seconds']:.1f} s -> {summary['out']}"
    )
