"""The `vlprep` command. Each subcommand lives in its own module and is imported only when used,
so `vlprep --help` stays fast and one area's heavy imports (torch, ray) never slow another's."""

from __future__ import annotations

import importlib

import click

from vlprep import __version__

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


class LazyGroup(click.Group):
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


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vlprep")
def cli() -> None:
    """Turn image and video corpora into training-ready features for vision-language models,
    and train the subword vocabularies for their text side."""


def main() -> None:
    cli(prog_name="vlprep")
