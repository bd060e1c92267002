"""`python -m vlprep`: the same as the `vlprep` command."""

from vlprep.cli import main

main()
