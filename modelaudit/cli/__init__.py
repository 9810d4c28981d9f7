"""The `modelaudit` command: `console` is the console script's entry point (`main`, which
tests and callers use, returns the exit code instead of ending the process).

One module per job: `parser` (the grammar, all that `--help` loads), `main` (picks the
command), `scan` (the scan command) with its phases `settings` (settings file, excludes,
baseline, destinations), `policy` (a settings file's or baseline's suppressions), `sweep`
(the engine's run: a folder, several or remote targets, a cluster), `early` (the fork
server started before the sweep's imports), `logs` (logging, only when something can log),
`reports` (what is written and where) and `signals`; `rules` (the rules command). Each
imports what it needs at its top; a phase a run does not need is never imported.
"""

from __future__ import annotations

from .main import console, main
from .parser import build_parser, with_command

__all__ = ["build_parser", "console", "main", "with_command"]
