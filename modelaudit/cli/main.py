"""`main`: parse the command line, then import the chosen command's module, once."""

from __future__ import annotations

import atexit
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from .parser import COMMANDS, build_parser, removed_flag_message, with_command

__all__ = ["console", "main"]


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
    if args.command == "scan":
        # Forked before the scan command's imports, which then run beside the worker's.
        from .head_start import head_start

        head_start(args)
    # A command's module is imported only when it runs: `--help` and `rules` never load the
    # scan's settings, engine or reporters.
    command = importlib.import_module(f".{args.command}", __package__)
    code: int = command.run(args, argv)
    return code


def console() -> NoReturn:
    """The `modelaudit` command and `python -m modelaudit.cli`: `main`, then `exit_now`."""
    # httpx imports its own command-line client (click, rich, pygments: 30-40 ms before a
    # remote scan's first request) unless that import fails; this process never runs it.
    # (The CLI owns its process; a library caller's httpx is left as it is.)
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    try:
        code = main()
    except SystemExit as exc:  # argparse's --help, --version and usage errors
        if not (exc.code is None or isinstance(exc.code, int)):
            raise
        code = exc.code or 0
    exit_now(code)


def exit_now(code: int) -> NoReturn:
    """End the process without the interpreter's teardown.

    Freeing every module and object one at a time cost a one-file run 10-15 ms of its ~110
    (what a pre-commit hook pays per commit) and does nothing a process exit does not: exit
    handlers still run and the standard streams are flushed. Where a thread that is not a
    daemon still runs, the usual exit waits for it, as before; so it does under a profiler
    or a tracer (cProfile, coverage), which write their data once the program returns."""
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)
    threading = sys.modules.get("threading")
    if threading is not None:
        main_thread = threading.main_thread()
        for thread in threading.enumerate():
            if thread is not main_thread and not thread.daemon and thread.is_alive():
                sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            code = code or 120  # what the interpreter exits with when it cannot flush
    os._exit(code)
