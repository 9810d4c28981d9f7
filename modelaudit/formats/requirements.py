"""Where pip would fetch a requirement from: the index, or somewhere a model's author chose.

A requirements line (pip's requirements-file grammar, also used by MLflow's `python_env.yaml`
and the `pip:` section of a conda environment) either names a package on the configured index
(`numpy==2.4.6`, `scikit-learn>=1.4; python_version>'3.8'`) or points pip elsewhere: a VCS
checkout (`git+https://...`), a URL (`pkg @ https://...`, `https://.../x.whl`), a local path
(`./wheel.whl`, `-e ../src`), another index (`--index-url`, `--extra-index-url`,
`--find-links`, `--trusted-host`), or another requirements file (`-r URL`). Whatever comes from
there runs its build and install code on the machine that restores the environment.

Parsing is one pass over the lines, never a network or file access.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Final

#: Options that make pip look for packages somewhere other than the default index.
INDEX_OPTIONS: Final = {
    "-i": "index",
    "--index-url": "index",
    "--extra-index-url": "index",
    "-f": "index",
    "--find-links": "index",
    "--trusted-host": "index",
}
#: Options whose value is a requirement or a file of requirements.
_VALUE_OPTIONS: Final = {
    "-e": "editable",
    "--editable": "editable",
    "-r": "include",
    "--requirement": "include",
    "-c": "include",
    "--constraint": "include",
}
#: Every long option pip's requirements-file parser knows: optparse takes any unambiguous
#: prefix of one (`--index` is `--index-url`, `--extra` `--extra-index-url`).
_PIP_LONG_OPTIONS: Final = (
    "--index-url",
    "--extra-index-url",
    "--no-index",
    "--find-links",
    "--trusted-host",
    "--editable",
    "--requirement",
    "--constraint",
    "--no-binary",
    "--only-binary",
    "--prefer-binary",
    "--require-hashes",
    "--pre",
    "--use-feature",
    "--hash",
    "--config-settings",
    "--global-option",
)
_VCS: Final = re.compile(r"^(git|hg|svn|bzr)\+", re.IGNORECASE)
_URL: Final = re.compile(r"^[a-z][a-z0-9+.-]*://|^file:", re.IGNORECASE)
_DIRECT: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\s*(\[[^\]]*\])?\s*@\s*(\S+)")
_ARCHIVE: Final = (".whl", ".tar.gz", ".tgz", ".tar.bz2", ".zip", ".tar", ".conda")
MAX_SHOWN: Final = 300
#: What each kind of `ExternalSource` fetches from, in words for a finding.
SOURCE_WHERE: Final = {
    "vcs": "a version-control checkout",
    "url": "a URL",
    "local path": "a local path",
    "index": "a package index the model chose",
    "editable": "an editable source",
    "include": "a requirements file elsewhere",
}
_MLFLOW_PIN: Final = re.compile(r"^mlflow(-skinny)?\s*==", re.IGNORECASE)


@dataclass(frozen=True)
class ExternalSource:
    """A requirement pip would not take from the default index."""

    line: int
    text: str
    #: "vcs", "url", "local path", "index", "editable" or "include"
    kind: str
    target: str


def logical_lines(text: str) -> list[tuple[int, str]]:
    """pip's lines: backslash continuations joined, comments (`#` at the start or after a
    space) removed, blank lines dropped; numbered from 1 as the file's first physical line."""
    out: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        if not pending:
            start = number
        if raw.endswith("\\"):
            pending.append(raw[:-1])
            continue
        pending.append(raw)
        line = _strip_comment("".join(pending)).strip()
        pending = []
        if line:
            out.append((start, line))
    if pending:
        line = _strip_comment("".join(pending)).strip()
        if line:
            out.append((start, line))
    return out


def pins_mlflow_first(text: str) -> bool:
    """MLflow's own requirements file: its first requirement pins MLflow (`mlflow==X`, or
    `mlflow-skinny==X`), the line `save_model` and `log_model` always write first."""
    for raw in io.StringIO(text):
        line = _strip_comment(raw.rstrip("\r\n")).strip()
        if line:
            return _MLFLOW_PIN.match(line) is not None
    return False


def _strip_comment(line: str) -> str:
    if line.lstrip().startswith("#"):
        return ""
    match = re.search(r"\s#", line)
    return line[: match.start()] if match else line


def location_kind(target: str) -> str | None:
    """ "vcs", "url" or "local path" when `target` is not a name on an index, else None."""
    if _VCS.match(target):
        return "vcs"
    if _URL.match(target):
        return "url"
    if (
        target.startswith((".", "/", "~", "\\"))
        or re.match(r"^[A-Za-z]:[\\/]", target)
        or "/" in target
        or "\\" in target
        or target.lower().endswith(_ARCHIVE)
    ):
        return "local path"
    return None


def _option(line: str) -> tuple[str, str] | None:
    """(`--option`, value) for an option line, value '' when the option takes none.

    pip splits option text like a shell (tabs separate too) and optparse expands an
    unambiguous prefix of a long option, so `--index\thttps://...` is `--index-url`."""
    if not line.startswith("-"):
        return None
    parts = line.split(None, 1)
    head, rest = parts[0], parts[1] if len(parts) > 1 else ""
    if "=" in head and head.startswith("--"):
        name, _, value = head.partition("=")
        return _long_option(name), (value + " " + rest).strip()
    if head.startswith("--"):
        return _long_option(head), rest.strip()
    for short in ("-i", "-f", "-e", "-r", "-c"):
        if head.startswith(short) and len(head) > 2:
            return short, (head[2:] + " " + rest).strip()
    return head, rest.strip()


def _long_option(name: str) -> str:
    """The long option `name` stands for: itself when exact, else the one pip option it is
    an unambiguous prefix of."""
    if name in _PIP_LONG_OPTIONS:
        return name
    matches = [o for o in _PIP_LONG_OPTIONS if o.startswith(name)]
    return matches[0] if len(matches) == 1 else name


def external_sources(text: str) -> list[ExternalSource]:
    """Every line of a requirements text that points pip away from the default index."""
    found: list[ExternalSource] = []
    for number, line in logical_lines(text):
        source = judge_line(line, number)
        if source is not None:
            found.append(source)
    return found


def judge_line(line: str, number: int = 0) -> ExternalSource | None:
    """One logical requirements line, judged; None for a package taken from the index."""
    shown = line[:MAX_SHOWN]
    option = _option(line)
    if option is not None:
        name, value = option
        value = value.split()[0] if value.split() else ""
        if name in INDEX_OPTIONS:
            return ExternalSource(number, shown, INDEX_OPTIONS[name], value)
        kind = _VALUE_OPTIONS.get(name)
        if kind == "editable":
            return ExternalSource(number, shown, "editable", value)
        if kind == "include" and location_kind(value) is not None:
            # `-r requirements.txt` beside the file is how MLflow links its own files
            return ExternalSource(number, shown, "include", value)
        return None
    direct = _DIRECT.match(line)
    if direct:
        return ExternalSource(
            number, shown, location_kind(direct.group(2)) or "url", direct.group(2)
        )
    words = line.split(";", 1)[0].split()
    if not words:
        return None  # only an environment marker: pip rejects it, nothing is fetched
    target = words[0]
    kind = location_kind(target)
    return ExternalSource(number, shown, kind, target) if kind else None
