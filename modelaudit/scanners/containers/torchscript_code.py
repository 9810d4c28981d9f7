"""TorchScript source in a torch.jit.save archive (`code/**/*.py`) and the mobile bytecode of a
lite-interpreter one (`bytecode.pkl`): the builtins they call that reach the host's files.

TorchScript cannot import Python, so the Python-code checks find nothing in it; but
torch.jit.load compiles this source and runs a scripted class's `__setstate__` while loading
(and `forward` on every call), and a few builtins it may call touch the file system:
`aten::from_file` maps any path (with shared=True it creates, grows and writes the file),
`aten::save` writes a pickle to any path, torchvision's `image::read_file`/`write_file` read
and write any path. The loader resolves them through aliases (`m = torch; m.from_file`),
parentheses, line continuations and `getattr(torch, "from_" "file")`, so the source is judged
by its tokens (attribute names and getattr string literals), never compiled or run.
A scripted class may define a method of the same name, and torch writes a call of it on a
submodule as `sub = self.sub; (sub).save(x, )`: `find_file_ops_in` judges an archive's sources
together, and drops the calls `torchscript_methods` shows are such a method's.
`_load_for_lite_interpreter` runs `bytecode.pkl` instead of the source (which may be absent):
its operator table names the builtins as strings (`aten::from_file`), read with
`pickletools.genops`, a parser.
"""

from __future__ import annotations

import ast
import io
import pickletools
import re
import tokenize
from collections.abc import Sequence
from dataclasses import dataclass
from struct import error as struct_error
from typing import Final

from .torchscript_methods import ClassIndex, method_call_positions

#: Builtin (attribute) name → what calling it does to the host.
FILE_OPS: Final = {
    "from_file": "maps any file; with shared=True it creates, grows and writes it",
    "save": "writes a pickle to any path",
    "write_file": "writes bytes to any path (torchvision image::write_file)",
    "read_file": "reads any file into the model (torchvision image::read_file)",
}

#: Source past this many characters is judged by the fallback word search alone.
_MAX_TOKENIZED: Final = 8 << 20
_WORDS: Final = re.compile(r"\b(" + "|".join(FILE_OPS) + r")\b")
_SKIP: Final = frozenset(
    {tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT}
)


@dataclass(frozen=True)
class FileOpCall:
    """One reference to a file-reaching builtin: its name, line and enclosing `def`, and the
    column of an attribute (`x.save`; None for getattr literals and word-search hits, which
    are never taken for a method call)."""

    op: str
    line: int
    function: str | None
    column: int | None = None


@dataclass(frozen=True)
class Source:
    """One TorchScript source of an archive: `module` is the qualified name torch gives its
    classes (`__torch__.m` for `code/__torch__/m.py`), None when unknown; `indexed` when
    they are classes torch may load (not a zip member outside `code/`)."""

    text: str
    module: str | None
    indexed: bool = True


def _literal(token: str) -> str | None:
    """The value of one string token (a literal, parsed, never evaluated as code)."""
    try:
        value = ast.literal_eval(token)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, str) else None


def find_file_ops(text: str) -> list[FileOpCall]:
    """Every place the source names a file-reaching builtin as an attribute (`x.from_file`)
    or as getattr's string literal (`getattr(x, "from_file")`, adjacent literals joined).
    Source Python's tokenizer refuses (torch's own parser is more lenient) falls back to a
    word search, which over-reports rather than misses."""
    if len(text) > _MAX_TOKENIZED:
        return _word_search(text)
    try:
        tokens = [
            t for t in tokenize.generate_tokens(io.StringIO(text).readline) if t.type not in _SKIP
        ]
    except (tokenize.TokenError, SyntaxError):
        return _word_search(text)
    found: list[FileOpCall] = []
    function: str | None = None
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        prev = tokens[i - 1] if i else None
        if tok.type == tokenize.NAME and prev is not None and prev.string == "def":
            function = tok.string
        elif tok.type == tokenize.NAME and tok.string in FILE_OPS:
            if prev is not None and prev.string == ".":
                found.append(FileOpCall(tok.string, tok.start[0], function, tok.start[1]))
        elif tok.type == tokenize.STRING:
            j = i
            parts: list[str] = []
            while j < len(tokens) and tokens[j].type == tokenize.STRING:
                parts.append(_literal(tokens[j].string) or "")
                j += 1
            value = "".join(parts)
            if value in FILE_OPS and prev is not None and prev.string == ",":
                found.append(FileOpCall(value, tok.start[0], function))
            i = j
            continue
        i += 1
    return found


def find_file_ops_in(sources: Sequence[Source]) -> list[list[FileOpCall]]:
    """`find_file_ops` of each source, less the calls of a scripted class's own method of
    that name (its classes looked up in all the archive's indexed sources; nothing is
    parsed unless some source names a builtin as an attribute)."""
    found = [find_file_ops(s.text) for s in sources]
    if not any(c.column is not None for calls in found for c in calls):
        return found
    index = ClassIndex()
    for source in sources:
        if source.indexed:
            index.add(source.text, source.module)
    names = frozenset(FILE_OPS)
    for i, (source, calls) in enumerate(zip(sources, found, strict=True)):
        if any(c.column is not None for c in calls):
            methods = method_call_positions(source.text, index, source.module, names)
            found[i] = [c for c in calls if (c.line, c.column) not in methods]
    return found


def module_of(member: str) -> str | None:
    """`__torch__.a.b` for an archive's `<folder>/code/__torch__/a/b.py`, the qualified name
    torch.jit.load gives its classes' module; None for any other member."""
    parts = member.split("/")
    if len(parts) < 3 or parts[1] != "code" or not member.endswith(".py"):
        return None
    names = [*parts[2:-1], parts[-1][:-3]]
    return ".".join(names) if names[0] == "__torch__" else None


def _word_search(text: str) -> list[FileOpCall]:
    """Each match with its line, counted on from the match before (one pass over the text:
    counting from its start for every match was quadratic in a large source full of them)."""
    found: list[FileOpCall] = []
    line, counted = 1, 0
    for m in _WORDS.finditer(text):
        line += text.count("\n", counted, m.start())
        counted = m.start()
        found.append(FileOpCall(m.group(1), line, None))
    return found


def file_ops_in_bytecode(data: bytes) -> list[str]:
    """The file-reaching operators a mobile `bytecode.pkl` names (`ns::op` or `ns::op.overload`
    strings of its operator tables); a malformed tail ends the walk, keeping what was read."""
    found: dict[str, None] = {}  # in order, each once
    try:
        for _op, arg, _pos in pickletools.genops(data):
            if isinstance(arg, str) and "::" in arg:
                op = arg.rsplit("::", 1)[1].split(".", 1)[0]
                if op in FILE_OPS:
                    found.setdefault(arg)
    except (ValueError, EOFError, UnicodeDecodeError, struct_error):
        pass
    return list(found)
