"""`--config FILE.yaml` and `--print-config` for every command that takes options.

The file's keys are the options' names (`cpus_per_worker`, `cpus-per-worker` or `--cpus-per-worker`) and
the arguments' (`inputs`, `store_path`); its values become the command's defaults, so flags on the command
line win. `--print-config` writes the effective configuration as YAML and exits without running: that
file given back as `--config` reproduces the run."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

_PRINT_KEY = "vlprep.print_config"
_OWN = ("config", "print_config", "help")


def _key(param: click.Parameter) -> str:
    """The YAML key of a parameter: its first long flag (`--json` -> json), else its name."""
    from vlprep.pipelines.config import normalize_key

    longs = [o for o in param.opts if o.startswith("--")]
    return normalize_key(longs[0]) if isinstance(param, click.Option) and longs else str(param.name)


def _load(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    # Eager: runs before the other parameters, so the file's values become their defaults.
    if not value:
        return value
    from vlprep.pipelines.config import ConfigError, load_config, normalize_key

    names: dict[str, str] = {}
    for p in ctx.command.params:
        if p.name in _OWN or p.name is None:
            continue
        names[p.name] = p.name
        names[_key(p)] = p.name
        for opt in p.opts:
            names[normalize_key(opt)] = p.name
    try:
        config = load_config(value, known=names)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    ctx.default_map = {**(ctx.default_map or {}), **{names[k]: v for k, v in config.items()}}
    return value


def _mark(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.meta[_PRINT_KEY] = True
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def effective_config(ctx: click.Context) -> dict[str, Any]:
    """{key: value} of every parameter of the running command, as `--config` reads it."""
    return {
        _key(p): _plain(ctx.params.get(p.name))
        for p in ctx.command.params
        if p.name not in _OWN and p.name in ctx.params
    }


def config_options(f: Callable) -> Callable:
    """Adds --config and --print-config to a click command function (apply below @click.command)."""

    @functools.wraps(f)
    def command(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        if ctx.meta.get(_PRINT_KEY):
            import yaml

            click.echo(yaml.safe_dump(effective_config(ctx), sort_keys=False, allow_unicode=True), nl=False)
            return None
        return f(*args, **kwargs)

    command = click.option(
        "--print-config",
        is_flag=True,
        expose_value=False,
        callback=_mark,
        help="Print the effective configuration as YAML (usable as --config) and exit.",
    )(command)
    return click.option(
        "--config",
        type=click.Path(dir_okay=False),
        is_eager=True,
        expose_value=False,
        callback=_load,
        help="YAML file of options (keys as the flags); flags win.",
    )(command)
