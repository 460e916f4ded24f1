"""`python -m genred` runs the CLI (through the launcher: see `genred.launch`)."""

from .launch import main

main()
