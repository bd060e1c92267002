"""`vlprep recipes`: the named recipes of `vlprep regions` and `vlprep video`, with every parameter."""

from __future__ import annotations

import click

from .config_file import config_options
from .output import emit_json


def _lines(value: object, indent: str) -> list[str]:
    if isinstance(value, dict):
        out = []
        for key, item in value.items():
            if isinstance(item, dict):
                out += [f"{indent}{key}:", *_lines(item, indent + "  ")]
            elif key == "plus_one" and item is None:  # the weights format's box convention
                out.append(f"{indent}{key}: the weights format's")
            else:
                out.append(f"{indent}{key}: {list(item) if isinstance(item, tuple) else item}")
        return out
    return [f"{indent}{value}"]


@click.command("recipes")
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the recipes as JSON.")
@config_options
def recipes_cmd(names, as_json):
    """List the recipes (`--recipe NAME` of `vlprep regions` and `vlprep video`): what each reproduces,
    the reference code, its checkpoint and every parameter. NAMES limits the list."""
    from vlprep.extractors.regions.recipes import DEFAULT
    from vlprep.extractors.regions.recipes import RECIPES as REGION_RECIPES
    from vlprep.extractors.video.recipes import ALIASES, MODEL_DEFAULTS
    from vlprep.extractors.video.recipes import RECIPES as VIDEO_RECIPES

    table = {"regions": {}, "video": {}}
    for name, recipe in REGION_RECIPES.items():
        entry = recipe.to_dict()
        entry["default"] = name == DEFAULT
        table["regions"][name] = entry
    for name, recipe in VIDEO_RECIPES.items():
        entry = recipe.to_dict()
        entry["default_of_model"] = recipe.model if MODEL_DEFAULTS.get(recipe.model) == name else None
        entry["aliases"] = [alias for alias, target in ALIASES.items() if target == name]
        table["video"][name] = entry
    known = {**table["regions"], **table["video"], **dict.fromkeys(ALIASES)}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise click.BadParameter(
            f"no recipe {', '.join(unknown)} (known: {', '.join(sorted(known))})", param_hint="NAMES"
        )
    wanted = {ALIASES.get(n, n) for n in names}
    if wanted:
        table = {kind: {k: v for k, v in recipes.items() if k in wanted} for kind, recipes in table.items()}
    if as_json:
        emit_json(table)
        return
    for kind, recipes in table.items():
        for name, entry in recipes.items():
            notes = []
            if entry.get("default"):
                notes.append("default of `vlprep regions`")
            if entry.get("default_of_model"):
                notes.append(f"default of `vlprep video --model {entry['default_of_model']}`")
            if entry.get("aliases"):
                notes.append("alias " + ", ".join(entry["aliases"]))
            click.echo(f"{kind} {name}" + (f"  ({'; '.join(notes)})" if notes else ""))
            click.echo(f"  reproduces: {entry['reproduces']}")
            click.echo(f"  reference:  {entry['reference']}")
            click.echo(f"  checkpoint: {entry['checkpoint']}")
            click.echo("  parameters:")
            for line in _lines(entry["parameters"], "    "):
                click.echo(line)
            click.echo("")
    count = sum(len(r) for r in table.values())
    noun = "recipe" if count == 1 else "recipes"
    click.echo(f"{count} {noun} ({len(table['regions'])} regions, {len(table['video'])} video)")
