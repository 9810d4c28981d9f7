"""Rules the engine itself reports (MA0000-MA0099, MA9000-MA9099): unfinished scans, limits,
unknown formats, --blacklist matches and sandbox refusals."""

from __future__ import annotations

from ..findings import IssueSeverity
from .catalogue import define_rule

GENERIC = define_rule(
    "MA0000",
    "GenericFinding",
    "A scanner reported a finding without a specific rule.",
    "Read the finding's message and details; treat the file as untrusted until explained.",
)
SCAN_TIMEOUT = define_rule(
    "MA0001",
    "ScanTimeout",
    "The scan of this file did not finish within its deadline.",
    "Raise --timeout (or --file-timeout) and scan again; until then the file is unverified.",
)
FILE_TOO_LARGE = define_rule(
    "MA0002",
    "FileTooLarge",
    "The file is larger than --max-size and was not read.",
    "Raise --max-size (for example --max-size 3GB) to scan it; until then it is unverified.",
    severity=IssueSeverity.INFO,
)
UNKNOWN_FORMAT = define_rule(
    "MA0003",
    "UnknownFormat",
    "No scanner recognises this file's format.",
    "Check that the file is a model in a supported format; an unknown file may still be loaded "
    "by custom code, so do not trust it blindly.",
    severity=IssueSeverity.INFO,
)
SCAN_ERROR = define_rule(
    "MA0004",
    "ScanError",
    "The scanner failed on this file.",
    "The file could not be analysed and is unverified. Re-run with --verbose and report a bug "
    "if the file is legitimate.",
)
MALFORMED = define_rule(
    "MA0005",
    "MalformedFile",
    "The file is truncated or corrupt, so its content could not be fully analysed.",
    "A loader may still execute the part before the damage. Replace the file with a known-good "
    "copy.",
)
BLACKLISTED = define_rule(
    "MA0006",
    "BlacklistedName",
    "The file or the model it carries matches a --blacklist pattern.",
    "Remove the model or the pattern; the pattern was set by your own policy.",
    severity=IssueSeverity.CRITICAL,
)
MISSING_DEPENDENCY = define_rule(
    "MA0007",
    "MissingDependency",
    "A library needed to scan this format is not installed.",
    "Install the library named in the message and scan again.",
)
LFS_POINTER = define_rule(
    "MA0008",
    "GitLfsPointer",
    "The file is a Git LFS pointer: the content it stands for is not in this checkout, so it "
    "was not scanned.",
    "Fetch the content (`git lfs pull`, or `lfs: true` in a CI checkout) and scan again, or "
    "scan the repository where it lives (hf://, s3://...).",
    severity=IssueSeverity.INFO,
)
SANDBOX_VIOLATION = define_rule(
    "MA9001",
    "SandboxViolation",
    "Scanning this file tried to start a process, load native code, open a network connection "
    "or unpickle an object.",
    "Treat the file as hostile: its content drove a parser into an action that loading it "
    "would also take. Do not load it; report it to whoever published it.",
    severity=IssueSeverity.CRITICAL,
    cwe=502,
)
ANALYSIS_BUDGET = define_rule(
    "MA9004",
    "AnalysisBudget",
    "The analysis of this file stopped at one of its work or memory budgets (shared or nested "
    "structure, repeated references, too many items), so the rest was not analysed.",
    "Files written by the real libraries stay far below these budgets; a file that reaches "
    "one is built to exhaust scanners. Findings made before the budget ran out are kept; "
    "treat the file as unverified.",
    severity=IssueSeverity.INFO,
    cwe=400,
)
RESOURCE_LIMIT = define_rule(
    "MA9002",
    "ResourceLimit",
    "Scanning this file exceeded a worker resource limit (memory, CPU time or file size).",
    "The file may be a decompression or expansion bomb. Raise the worker limits only if you "
    "trust its origin; until then it is unverified.",
    severity=IssueSeverity.INFO,
    cwe=400,
)
FINDINGS_TRUNCATED = define_rule(
    "MA9003",
    "FindingsTruncated",
    "This file produced more findings of one rule than a report keeps; the rest are counted.",
    "Every finding of this rule is as serious as the ones shown; fix or remove the file.",
    severity=IssueSeverity.INFO,
    cwe=400,
)
