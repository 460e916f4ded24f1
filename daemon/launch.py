"""The `genred` executable: for `genred run`, a stop signal is a clean stop from the start.

Importing the CLI (click, pydantic, the config models) takes a few hundred milliseconds,
and building the plugins longer; a SIGTERM in that time would end the process by the
signal (exit -15) before the daemon's own handlers are in place. So this module, which
imports nothing heavy, has SIGTERM and SIGINT noted first (`genred.early_stop`), from
about 60 ms after exec (Python's own start). Other commands keep the default behaviour
(Ctrl-C interrupts them at once).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from . import early_stop


def subcommand(args: Sequence[str]) -> str | None:
    """The command `args` run (`genred --config X run` → "run"), before click parses them."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--config":
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def main(argv: list[str] | None = None) -> None:
    if subcommand(sys.argv[1:] if argv is None else argv) == "run":
        early_stop.install()
    from .cli import main as cli_main

    cli_main(argv)


if __name__ == "__main__":  # pragma: no cover
    main()
