"""The `vlprep` command. Each subcommand lives in its own module and is imported only when used,
so `vlprep --help` stays fast and one area's heavy imports (torch, ray) never slow another's.

Every failure ends the same way (cli/errors.py): one line on stderr and exit 2 (usage) or 1 (data);
`vlprep -v COMMAND ...` adds the traceback, `-q` keeps only the summary and the errors."""

from __future__ import annotations

import difflib
import importlib
import sys

import click

from vlprep import __version__

from . import errors

# name -> "module:attribute"; modules are relative to vlprep.cli
COMMANDS: dict[str, str] = {
    "inspect": "inspect:inspect_cmd",
    "demo": "demo:demo_cmd",
    "regions": "regions:regions_cmd",
    "convert": "interop:convert_cmd",
    "export": "interop:export_cmd",
    "video": "video:video_cmd",
    "recipes": "recipes:recipes_cmd",
    "tokens": "tokens:tokens_group",
    "vocab": "vocab:vocab_group",
    "manifest": "manifest:manifest_cmd",
    "repair": "repair:repair_cmd",
}

# Global flags a user may also type after the subcommand (`vlprep inspect X -v`); only short forms are
# moved, since a subcommand may own the long ones (`vocab bpe --verbose` shows sentencepiece's log).
_GLOBAL_SHORT = {"-v", "-vv", "-vvv", "-q"}


class SuggestingGroup(click.Group):
    """A group that answers a mistyped command with the closest names ("did you mean")."""

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            close = difflib.get_close_matches(name, self.list_commands(ctx), n=3, cutoff=0.6)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            ctx.fail(f"No such command {name!r}.{hint}")
        return super().resolve_command(ctx, args)


class LazyGroup(SuggestingGroup):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if self.get_command(ctx, name) is not None)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(f"vlprep.cli.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"vlprep.cli.{module_name}":
                return None  # that capability has not landed in this build
            raise
        return getattr(module, attr)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            head, tail = args[: args.index("--")], args[args.index("--") :]
        else:
            head, tail = args, []
        moved = [a for a in head if a in _GLOBAL_SHORT]
        rest = [a for a in head if a not in _GLOBAL_SHORT]
        return super().parse_args(ctx, moved + rest + tail)

    def invoke(self, ctx: click.Context):
        # The one place where an error becomes a line and an exit code; click's own usage errors
        # (exit 2) and explicit exits pass through untouched.
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit):
            raise
        except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - the top-level handler
            sys.exit(errors.report(exc, ctx.meta.get("vlprep.verbose", 0)))


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vlprep")
@click.option("-v", "--verbose", count=True, help="Show tracebacks and Ray's own INFO log lines.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or notes: only the summary and errors.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """Turn image and video corpora into training-ready features for vision-language models,
    and train the subword vocabularies for their text side."""
    ctx.meta["vlprep.verbose"] = verbose
    ctx.meta["vlprep.quiet"] = quiet
    from .logs import configure_logging

    configure_logging(verbose=verbose, quiet=quiet)


def main() -> None:
    cli(prog_name="vlprep")
