"""A small scanner for reporter tests: findings with rules, CWEs, byte positions, archive
members, metadata and failures, on `.mdl` files whose text says what to report.

It never loads anything: it only searches the bytes for markers.
"""

from __future__ import annotations

from modelaudit.rules import define_rule
from modelaudit.scanners.base import BaseScanner, IssueSeverity, ScanResult

RULE_EXEC = define_rule(
    "MA9901",
    "TestPosixSystem",
    "The test file references posix.system, which runs a shell command when loaded.",
    "Do not load this file; rebuild the model from trusted code.",
    severity=IssueSeverity.CRITICAL,
    cwe=502,
)
RULE_ODD = define_rule(
    "MA9902",
    "TestOddMarker",
    "The test file carries a suspicious marker.",
    "Inspect the file before loading it.",
)
RULE_NOTE = define_rule(
    "MA9903",
    "TestNote",
    "An informational fact about the test file.",
    "Nothing to do.",
    severity=IssueSeverity.INFO,
)

POSIX_SYSTEM_PICKLE = b"\x80\x02cposix\nsystem\nX\x04\x00\x00\x00echo\x85R."


class ReportingTestScanner(BaseScanner):
    name = "reporting_test"
    description = "Marker-driven scanner for reporter tests"
    supported_extensions = [".mdl"]

    def scan(self, path: str) -> ScanResult:
        result = self._create_result()
        with open(path, "rb") as f:
            data = f.read(1 << 20)
        result.bytes_scanned = len(data)
        if b"explode" in data:
            raise RuntimeError("scanner failure requested by the test file")
        pos = data.find(b"cposix\nsystem")
        if pos >= 0:
            result.add_issue(
                "Suspicious module reference found: posix.system",
                severity=IssueSeverity.CRITICAL,
                location=self.location(path, pos=pos),
                details={"module": "posix", "function": "system", "position": pos},
                why="Loading the file runs a shell command chosen by its author.",
                rule=RULE_EXEC,
            )
        for index in range(data.count(b"odd")):
            result.add_issue(
                f"Odd marker number {index}",
                severity=IssueSeverity.WARNING,
                location=self.location(path, member=f"inner/part{index}.bin", pos=index),
                details={"index": index},
                why="The marker is unexplained.",
                rule=RULE_ODD,
            )
        if b"note" in data:
            result.add_issue("A note", severity=IssueSeverity.INFO, location=path, rule=RULE_NOTE)
        if b"truncated" in data:
            result.mark_inconclusive("malformed: the test file says it is truncated")
        for line in data.splitlines():
            if line.startswith(b"license="):
                result.metadata["license"] = line[8:].decode()
            if line.startswith(b"copyright="):
                result.metadata["copyright"] = line[10:].decode()
            if line.startswith(b"arch="):
                result.metadata["architectures"] = [line[5:].decode()]
                result.metadata["model_type"] = "llama"
                result.metadata["task"] = "text-generation"
        result.finish(success=True)
        return result
