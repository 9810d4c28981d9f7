"""After the scan: suppressions, then the report (and SBOM) written where asked, and the
lines a CI log needs on stderr when the report goes elsewhere."""

from __future__ import annotations

import argparse
import sys

from ..findings import FileStatus
from ..output import STDOUT, OutputError, use_color, write
from ..redact import Redactor, report_redactor
from ..report import ScanReport
from ..reporters import get_renderer
from ..reporters.safe import printable
from ..reporters.text import summary_line
from .messages import error
from .settings import Plan
from .signals import finish_on_signals

__all__ = ["import_writers", "settle", "write_reports"]

#: Errored files named on stderr when the report goes elsewhere; the rest are counted.
_STDERR_FILES = 20


def settle(plan: Plan, report: ScanReport) -> None:
    """The scan is over: signals now let the report be written; the policy and the accepted
    findings are applied."""
    finish_on_signals(already_signalled=(report.interrupted or "").startswith("Interrupted by"))
    report.fail_on = plan.fail_on
    if plan.suppress is not None:
        plan.suppress(report)


def import_writers(args: argparse.Namespace) -> None:
    """Import the renderer (and the SBOM builder) now: the one-file run calls this while its
    worker scans, so that the report is written as soon as the result is in."""
    get_renderer(args.format)
    if args.sbom:
        from .. import sbom  # noqa: F401


def write_reports(args: argparse.Namespace, report: ScanReport) -> int:
    """Write the SBOM and the report; the exit code (2 if a write failed)."""
    failed_writes = 0
    if args.sbom:
        # Deferred: the SBOM builder (hashlib, license tables) is only for --sbom.
        from ..sbom import build_sbom

        try:
            write(args.sbom, build_sbom(report))
        except OutputError as exc:
            error(f"cannot write SBOM {args.sbom}: {exc}")
            failed_writes += 1
    render = get_renderer(args.format)
    to_stdout = args.output in (None, STDOUT)
    color = to_stdout and use_color(sys.stdout)
    red = report_redactor(report)
    with report.settled():
        data = red.bytes(render(report, color=color, verbose=args.verbose, quiet=args.quiet))
        try:
            write(args.output or STDOUT, data)
        except OutputError as exc:
            error(f"cannot write report {args.output}: {exc}")
            failed_writes += 1
        if not to_stdout or args.format != "text":
            _errors_to_stderr(report, red)
        if not to_stdout and not args.quiet:
            where = "" if failed_writes else f" (report: {args.output})"
            _stderr_line(f"modelaudit: {summary_line(report)}{where}", red)
        exit_code: int = report.exit_code
    return 2 if failed_writes else exit_code


def _stderr_line(text: str, red: Redactor) -> None:
    data = (printable(text) + "\n").encode()
    sys.stderr.buffer.write(red.bytes(data))
    sys.stderr.flush()


def _errors_to_stderr(report: ScanReport, red: Redactor) -> None:
    """When the report is a file or machine-readable, a CI log would otherwise show nothing:
    each target that failed (a refused or missing credential names its variable) and each
    file that could not be scanned get one line on stderr."""
    lines = []
    for err in report.target_errors:
        message = err["error"]
        if not message.startswith(err["target"]):
            message = f"{err['target']}: {message}"
        lines.append(f"modelaudit: error: {printable(message)}")
    failed = (
        [f for f in report.files if f.status is FileStatus.ERROR] if report.tally().error else []
    )
    for fr in failed[:_STDERR_FILES]:
        reason = fr.status_reason or "error"
        message = reason if reason.startswith(fr.path) else f"{fr.path}: {reason}"
        lines.append(f"modelaudit: error: {printable(message)}")
    if len(failed) > _STDERR_FILES:
        lines.append(f"modelaudit: error: ... and {len(failed) - _STDERR_FILES} more files")
    if lines:
        text = ("\n".join(lines) + "\n").encode()
        sys.stderr.buffer.write(red.bytes(text))
        sys.stderr.flush()
