"""`main`: parse the command line, then import the chosen command's module, once."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from .parser import COMMANDS, build_parser, removed_flag_message, with_command

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    removed = removed_flag_message(argv)
    if removed:
        print(removed, file=sys.stderr)
        return 2
    parser = build_parser()
    args = parser.parse_args(with_command(argv))
    if args.command not in COMMANDS:
        parser.print_help(sys.stderr)
        return 2
    # A command's module is imported only when it runs: `--help` and `rules` never load the
    # scan's settings, engine or reporters.
    command = importlib.import_module(f".{args.command}", __package__)
    code: int = command.run(args, argv)
    return code
