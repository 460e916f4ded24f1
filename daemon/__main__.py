"""`python -m genred` runs the CLI."""

from .cli import main

main()
