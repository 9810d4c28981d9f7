"""The product's public reference page (`data/reference-advanced-usage.txt`, a copy of
`shared/reference/`), and the examples read out of it.

The page is stored as text without indentation, so code blocks are matched line by line:
a snippet a test runs must be, line for line once stripped, a run of consecutive lines of
the page. Commands are taken from the page itself; `promptfoo scan-model` is the page's
front end to this scanner and is run as `modelaudit scan` with the same arguments.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data"
REFERENCE = DATA / "reference-advanced-usage.txt"
FRONT_END = "promptfoo scan-model"
#: Targets the page scans that live on a server, not in the working directory.
REMOTE = re.compile(r"^[\"']?(hf://|https?://|s3://|gs://|r2://|models:/)")


def text() -> str:
    return REFERENCE.read_text(encoding="utf-8")


def lines() -> list[str]:
    return [line.strip() for line in text().splitlines() if line.strip()]


def commands() -> list[str]:
    """Every `promptfoo scan-model` command of the page, continuations joined, as written
    after the prefix a YAML recipe puts before it (`run:`, `- `, `entry:`)."""
    joined: list[str] = []
    pending = ""
    for line in text().splitlines():
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1].rstrip() + " "
            continue
        joined.append(pending + line.strip())
        pending = ""
    found = []
    for line in joined:
        at = line.find(FRONT_END)
        if at >= 0:
            found.append(line[at:].strip())
    return found


def as_modelaudit(command: str) -> str:
    return "modelaudit scan" + command[len(FRONT_END) :]


def as_modelaudit_script(script: str) -> str:
    return script.replace(FRONT_END, "modelaudit scan")


def is_remote(command: str) -> bool:
    rest = command[len(FRONT_END) :].split()
    return bool(rest) and bool(REMOTE.match(rest[0]))


def assert_from_reference(snippet: str) -> None:
    """`snippet`, stripped line by line, is a run of consecutive lines of the page."""
    wanted = [line.strip() for line in snippet.splitlines() if line.strip()]
    page = lines()
    for start in range(len(page) - len(wanted) + 1):
        if page[start : start + len(wanted)] == wanted:
            return
    raise AssertionError(f"not in the reference as written:\n{snippet}")


def json_example(after: str, before: str) -> Any:
    """The JSON document the page shows between two headings."""
    body = text().split(after, 1)[1].split(before, 1)[0]
    return json.loads(body[body.index("{") : body.rindex("}") + 1])
