"""The documentation that is generated must be current."""

from pathlib import Path

from vlprep.cli.reference import cli_reference

ROOT = Path(__file__).parent.parent


def test_cli_reference_is_generated_from_help():
    committed = (ROOT / "docs" / "cli.md").read_text()
    assert committed == cli_reference(), "run: python -m vlprep.cli.reference > docs/cli.md"


def test_every_command_has_help_in_the_reference():
    text = (ROOT / "docs" / "cli.md").read_text()
    for command in (
        "inspect",
        "demo",
        "regions",
        "video",
        "convert",
        "export",
        "tokens fit",
        "tokens assign",
        "vocab wordpiece",
        "vocab bpe",
        "vocab unigram",
        "vocab eval",
        "manifest",
    ):
        assert f"## `vlprep {command}`" in text
