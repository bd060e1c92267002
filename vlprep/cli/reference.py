"""Write the CLI reference (docs/cli.md) from the commands' own --help, so the two cannot drift.

python -m vlprep.cli.reference > docs/cli.md
"""

from __future__ import annotations

import click

from vlprep.cli import cli


def _walk(command: click.Command, ctx: click.Context):
    yield ctx, command
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            yield from _walk(sub, click.Context(sub, info_name=name, parent=ctx))


def cli_reference() -> str:
    parts = [
        "# CLI reference",
        "",
        "Generated from `--help` by `python -m vlprep.cli.reference > docs/cli.md`; a test keeps it current.",
    ]
    root = click.Context(
        cli, info_name="vlprep", terminal_width=100, max_content_width=100, **cli.context_settings
    )
    for ctx, command in _walk(cli, root):
        parts += ["", f"## `{ctx.command_path}`", "", "```", command.get_help(ctx).rstrip(), "```"]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    click.echo(cli_reference(), nl=False)
