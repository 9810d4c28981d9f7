"""The pickle-analysis engine every pickle-bearing scanner uses (re-exported by the package).

`scan_pickle_stream` reads one or more stacked pickles from a stream with CPython's own
unpickler, every import replaced by an inert stub, and reports what loading would import and
call (see `stubs` for the recording, `policy` for the verdicts). A stream that breaks is
marked malformed but keeps what was seen before the break; embedded pickles in constants are
scanned within depth and size limits (`nested`).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from typing import BinaryIO, Final

from ...budget import BudgetExceeded, report_budget
from ...findings import Issue, IssueSeverity, ScanResult
from ...rules import pickle as R
from ..context import ScanContext
from . import hashcost, nested, positions, spans, structure, stubs
from .carried_code import collapse_carried_code
from .emulate import CUnpickler, PyUnpickler, run
from .info import PickleStreamInfo
from .reader import RECORD_LIMIT, Reader
from .readings import readings
from .spans import StringSpans
from .stubs import JoblibLayout, Session

_OPCODES: Final = frozenset(
    b"(.0123FGIJKLMNPQRSTUVXabcdeghijklopqrstu}]\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a"
    b"\x8b\x8c\x8d\x8e\x8f\x90\x91\x92\x93\x94\x95\x96\x97\x98)"
)


_FRAME_BYTE: Final = b"\x95"
_SLICE_FULL: Final = 1 << 12
_REREAD_EACH: Final = 1 << 20
_REREAD_BUDGET: Final = 64 << 20


def _seekable(f: BinaryIO) -> bool:
    try:
        return bool(f.seekable())
    except Exception:
        return False


def _first_proto(head: bytes) -> int:
    return head[1] if len(head) >= 2 and head[0] == 0x80 else 0


def scan_pickle_stream(
    fileobj: BinaryIO,
    result: ScanResult,
    *,
    location: Callable[[int | None], str],
    ctx: ScanContext,
    stacked: bool = True,
    joblib: bool = False,
    depth: int = 0,
) -> PickleStreamInfo:
    """Scan the pickles in `fileobj` from where it stands; see docs/pickle_api in the notes."""
    info = PickleStreamInfo()
    first_issue = len(result.issues)
    seekable = _seekable(fileobj)
    origin = fileobj.tell() if seekable else 0
    # (arguments by position: a class called with keywords packs them into a dict first)
    reader = Reader(fileobj, depth < _max_depth(ctx))
    seen_globals: set[str] = set()
    starts: set[int] = set()
    low_proto = False
    straddled = False
    index = 0
    while True:
        start = reader.pos
        if index > 0 and (not stacked or reader.at_eof()):
            break
        head = reader.look(2)
        if index > 0 and (not head or head[0] not in _OPCODES):
            break
        if index == 0 and not head:
            result.mark_inconclusive("malformed: empty pickle stream")
            info.complete = False
            break
        mark = len(result.issues)
        low_proto = low_proto or _first_proto(head) < 4
        reader.straddle = None
        outcome = _scan_one(reader, result, location, ctx, start, _first_proto(head), joblib)
        straddle = reader.straddle
        straddled = straddled or straddle is not None
        python = joblib
        if outcome == "memo" and not seekable:
            # (a member read through a decoder: the bytes read so far are recorded, and
            # when they hold the rest of the stream it is read again from that copy)
            copy = _whole_stream(fileobj, reader)
            if copy is not None:
                fileobj, seekable, origin = io.BytesIO(copy), True, 0
        if outcome in ("joblib", "stub-type", "memo") and seekable:
            # Restart this pickle with the pure-Python unpickler: joblib's inline arrays,
            # a NEWOBJ on a call result that a real loader would have as a class, or a memo
            # index the C unpickler's memo array could not grow to (a dict holds it).
            del result.issues[mark:]
            fileobj.seek(origin + start)
            mode = "joblib" if outcome == "joblib" else "c_like"
            first = outcome
            search = reader.find_candidates
            reader = Reader(fileobj, find_candidates=search and mode != "joblib")
            reader.base = start
            reader._scanned_to = start
            outcome = _scan_one(
                reader, result, location, ctx, start, _first_proto(head), joblib, mode
            )
            if mode == "joblib":
                reader.find_candidates = search
                if search:
                    reader.search_unskipped(fileobj, origin, start, reader.pos)
                _shadow_plain_load(
                    fileobj, origin, start, result, location, ctx, _first_proto(head)
                )
            if first == "memo":
                _report_memo_index(fileobj, origin, start, result, location)
            joblib = joblib or mode == "joblib"
            python = True
        if outcome == "memo":
            # (unseekable, and longer than the reader's record: not read again)
            outcome = "out of memory while reading (a memo index past what the loader can allocate)"
        session, error = outcome if isinstance(outcome, tuple) else (None, outcome)
        if straddle is None and error is not None and python and _PY_FRAME_ERRORS in error:
            straddle = reader.pos
        straddled = straddled or straddle is not None
        if session is not None and straddle is not None:
            _other_readings(
                _pickle_bytes(fileobj, seekable, origin, start, reader),
                start,
                straddle,
                session,
                error,
                result,
                location,
                ctx,
                _first_proto(head),
                python,
            )
        if session is not None:
            info.storage_keys |= session.storage_keys
            for g in session.globals:
                if g not in seen_globals:
                    seen_globals.add(g)
                    info.globals.append(g)
            _nested_from_calls(session, result, location, ctx, depth, start)
        if error is not None:
            meaningful = session is not None and session.meaningful
            if index > 0 and not meaningful:
                del result.issues[mark:]
                break
            info.complete = False
            info.end = reader.pos
            result.mark_inconclusive(f"malformed: {error}")
            result.add_issue(
                f"Malformed pickle stream: {error}",
                severity=IssueSeverity.INFO,
                location=location(reader.pos),
                details={"position": reader.pos, "pickle_index": index},
                rule=R.MALFORMED_PICKLE,
            )
            if session is not None and session.events and straddle is None:
                _pin_positions(fileobj, seekable, origin, start, session, location)
            break
        starts.add(start)
        info.pickles += 1
        info.end = reader.pos
        if session is not None and session.events and straddle is None:
            _pin_positions(fileobj, seekable, origin, start, session, location)
        index += 1
    result.bytes_scanned += info.end
    reread: Callable[[int, int], bytes] | None = None
    if seekable:

        def reread(at: int, size: int) -> bytes:
            fileobj.seek(origin + at)
            return fileobj.read(size)

    _nested_from_candidates(
        reader,
        result,
        location,
        ctx,
        depth,
        info.end,
        starts,
        seen_globals,
        low_proto,
        reread,
        straddled,
    )
    if seekable:
        try:  # noqa: SIM105 (contextlib.suppress costs three Python calls per pickle)
            fileobj.seek(origin + info.end)
        except (OSError, ValueError):
            pass
    if depth == 0:
        _report_candidates_refused(result, ctx, location(info.end))
    collapse_carried_code(result.issues, first_issue)
    if ctx.config.get("strict"):
        _escalate_unknown(result.issues[first_issue:])
    return info


def _report_candidates_refused(result: ScanResult, ctx: ScanContext, where: str) -> None:
    """Embedded-pickle candidates left unscanned by the file's count: some bytes a loader
    might unpickle were not judged, so the file is inconclusive (said once per file)."""
    budget = ctx.expansion
    if budget.candidates_refused and not budget.candidates_reported:
        budget.candidates_reported = True
        report_budget(
            result, where, BudgetExceeded("embedded pickle candidates", budget.candidate_cap)
        )


def _escalate_unknown(issues: list[Issue]) -> None:
    """--strict: an import nobody vouched for is treated as dangerous, not just unusual."""
    for issue in issues:
        if issue.rule == R.UNKNOWN_GLOBAL and issue.severity is IssueSeverity.WARNING:
            issue.severity = IssueSeverity.CRITICAL
            issue.details["strict"] = True


def scan_pickle_bytes(
    data: bytes,
    result: ScanResult,
    *,
    location: Callable[[int | None], str],
    ctx: ScanContext,
    depth: int = 0,
    stacked: bool = True,
    joblib: bool = False,
) -> PickleStreamInfo:
    """`scan_pickle_stream` over bytes already in memory."""
    return scan_pickle_stream(
        io.BytesIO(data),
        result,
        location=location,
        ctx=ctx,
        stacked=stacked,
        joblib=joblib,
        depth=depth,
    )


def _scan_one(
    reader: Reader,
    result: ScanResult,
    location: Callable[[int | None], str],
    ctx: ScanContext,
    start: int,
    proto: int,
    joblib: bool,
    mode: str = "",
) -> tuple[Session, str | None] | str:
    python = joblib or mode in ("joblib", "c_like")
    joblib = joblib or mode == "joblib"
    # joblib's raw array bytes sit between opcodes: the walk cannot size arguments past them
    stop, head = _cut_before_the_load(reader, lengths=not joblib, memo=not python)
    memo_cut = stop is not None and stop.reason == "memo"
    if not python and stop is None:
        rest = _read_as_bytes(reader)
        if rest is not None:
            done = _load_in_memory(rest, reader, result, location, ctx, proto)
            if done is not None:
                return done, None
    session = Session(result, location, proto, joblib=joblib)
    unpickler: CUnpickler | PyUnpickler
    if python:
        unpickler = PyUnpickler(reader, session, c_like=mode == "c_like")
        py = unpickler
        session.pos = lambda: py.op_pos
    else:
        unpickler = CUnpickler(reader, session)
    error: str | None = None
    try:
        value = run(unpickler, session, ctx.memory_budget)
        _check_structure(session, value, reader.pos - start, head)
        del value
        if isinstance(unpickler, PyUnpickler) and mode != "c_like":
            _python_memo_index(unpickler.top_memo, reader.pos - start, start, result, location)
    except JoblibLayout:
        return "joblib"
    except RecursionError:
        error = "structure nested too deeply"
    except MemoryError:
        if not python and hashcost.huge_memo_put(head) is not None:
            return "memo"
        error = "out of memory while reading"
    except EOFError as exc:
        error = f"truncated ({exc or 'unexpected end of data'})"
    except Exception as exc:
        text = str(exc)
        if not python and "NEWOBJ" in text and "type" in text:
            return "stub-type"
        error = f"{type(exc).__name__}: {text}"
        _note_extension(session, text)
    finally:
        del unpickler
    if memo_cut and error is not None:
        # the load ran into the cut at the huge PUT (or failed before it): the dict memo
        # reading says which
        return "memo"
    if stop is not None and stop.reason == "hash":
        # the load ran into the cut (or failed before it): the budget is the reason
        report_budget(
            result,
            location(start + stop.at),
            BudgetExceeded("dict key hashing", hashcost.HASH_BUDGET),
        )
        error = None
    elif stop is not None and stop.reason == "length":
        error = (
            f"truncated (an argument at byte {start + stop.at} announces {stop.announced} "
            f"bytes, {stop.left} are left)"
        )
    return session, error


def _check_structure(session: Session, value: object, length: int, head: bytes) -> None:
    """Report a pure-data pickle built as a resource bomb (`structure`)."""
    if (
        session.globals
        or length > structure.MAX_STREAM
        or (
            session.n_calls == 0
            and not session.used_persistent
            and structure.cannot_flag(head, length)
        )
    ):
        return
    reason = structure.check(value, length)
    if reason:
        session.report(
            "structure",
            0,
            f"Crafted pickle structure: {reason}",
            IssueSeverity.WARNING,
            R.STRUCTURE_BOMB,
            "Pickles written by Python never look like this; the stream is built to "
            "exhaust memory or time in whatever walks the loaded object.",
            "",
            "",
            "STOP",
        )


def _read_as_bytes(reader: Reader) -> bytes | None:
    """The rest of the stream, all buffered, when reading it from a copy cannot differ from
    reading it through the reader: it holds no FRAME byte at all, or it is one FRAME running
    to its last byte, a STOP, after the protocol header."""
    if not reader.eof:
        return None
    data = reader.buf[reader.off :]
    if data.find(_FRAME_BYTE) < 0:  # (`in` tries the byte as an integer first, and raises)
        return data
    n = len(data)
    if n < 12 or data[0] != 0x80 or data[2] != 0x95 or data[-1] != 0x2E:
        return None
    return data if int.from_bytes(data[3:11], "little") == n - 11 else None


def _report_memo_index(
    fileobj: BinaryIO,
    origin: int,
    start: int,
    result: ScanResult,
    location: Callable[[int | None], str],
) -> None:
    """The WARNING for a pickle read again because its memo index ran the C unpickler out of
    memory: `pickle.load` tries the same allocation, on any machine."""
    here = fileobj.tell()
    try:
        fileobj.seek(origin + start)
        head = fileobj.read(hashcost.WINDOW)
    finally:
        fileobj.seek(here)
    found = hashcost.huge_memo_put(head)
    if found is not None:
        _memo_issue(result, location, start + found[0], found[1])


def _python_memo_index(
    index: int,
    length: int,
    start: int,
    result: ScanResult,
    location: Callable[[int | None], str],
) -> None:
    """The same WARNING for a stream the pure-Python unpickler read (joblib's reading, and a
    compressed stream's): its dict held the index, but `pickle.load` of the same bytes (a
    `.pkl.gz` through pandas or gzip) sizes its table to it. An index past the stream's
    length and past `MEMO_INDEX_FLOOR` no honest writer makes."""
    if index >= hashcost.MEMO_INDEX_FLOOR and index > length:
        _memo_issue(result, location, start, index)


def _memo_issue(
    result: ScanResult, location: Callable[[int | None], str], position: int, index: int
) -> None:
    result.add_issue(
        f"Crafted pickle structure: memo index {index} makes pickle.load allocate "
        f"{16 * index / 2**30:.1f} GiB for its memo table",
        severity=IssueSeverity.WARNING,
        location=location(position),
        details={"memo_index": index, "position": position},
        why="Python numbers memo entries from 0 as it stores them; an index this far past "
        "the stream's length is written to exhaust the loader's memory (it fails, or stalls "
        "the machine). The stream was read with a memo that holds it, and judged in full.",
        rule=R.STRUCTURE_BOMB,
    )


def _load_in_memory(
    data: bytes,
    reader: Reader,
    result: ScanResult,
    location: Callable[[int | None], str],
    ctx: ScanContext,
    proto: int,
) -> Session | None:
    """Load the next pickle from the stream's remaining bytes without the reader's Python
    callbacks; None (its findings withdrawn) unless the load succeeds.

    A reading can differ from the reader's only where an opcode straddles the end of a
    frame buffer (see `reader`). Without a FRAME there is none; with one frame that runs to
    the end of the stream, past it there is only the end, which no successful load reads.
    So a load that succeeds is the reader's load, and ends where the reader would (the C
    unpickler reads a file without `peek` exactly, a frame whole). A load that fails is read
    again through the reader, which says how the failure met a frame's end.
    """
    mark = len(result.issues)
    session = Session(result, location, proto)
    source = io.BytesIO(data)
    # (the budget from these bytes: a member read through a decoder has no size to ask,
    # and taken as 256 MiB it let a 2 KB pickle's memo index allocate 2.6 GB first)
    unpickler = CUnpickler(source, session, len(data))
    try:
        value = run(unpickler, session, ctx.memory_budget)
        consumed = source.tell()
        if 0 < consumed <= len(data):
            _check_structure(session, value, consumed, data)
            reader.consume(consumed)
            return session
    except Exception:
        pass
    finally:
        del unpickler
    del result.issues[mark:]
    return None


def _cut_before_the_load(
    reader: Reader, *, lengths: bool, memo: bool = False
) -> tuple[hashcost.Stop | None, bytes]:
    """Stop the load before an opcode whose dict-key or set-member hashing would pass the
    budget, or (`lengths`) whose counted argument is longer than the rest of the stream
    (`hashcost`); the stop's offset is from the reader's position. Also returns the head of
    the stream that was judged. `memo`: a PUT of an index no writer uses is a stop too (the
    C load runs to it, so a joblib layout before it is still told; the caller then reads the
    stream with a dict memo)."""
    window = reader.look(hashcost.WINDOW)
    stop = hashcost.first_stop(window, reader.remaining() if lengths else None, memo=memo)
    if stop is not None:
        reader.cut(reader.pos + stop.at)
    return stop, window


def _shadow_plain_load(
    fileobj: BinaryIO,
    origin: int,
    start: int,
    result: ScanResult,
    location: Callable[[int | None], str],
    ctx: ScanContext,
    proto: int,
) -> None:
    """Read a joblib-layout pickle once more as `pickle.load` would, through the array bytes.

    A file can be a polyglot: joblib skips the bytes after an array wrapper, plain pickle.load
    executes them as opcodes. Only CRITICAL findings of this reading count; what the array
    bytes look like as opcodes is otherwise noise.
    """
    here = fileobj.tell()
    shadow = ScanResult(scanner_name=result.scanner_name)
    try:
        fileobj.seek(origin + start)
        reader = Reader(fileobj, find_candidates=False)
        reader.base = start
        stop, head = _cut_before_the_load(reader, lengths=True, memo=True)  # the array bytes too
        session = Session(shadow, location, proto, joblib=True)
        unpickler: CUnpickler | PyUnpickler = CUnpickler(reader, session)
        huge_put = False
        try:
            run(unpickler, session, ctx.memory_budget)
        except MemoryError:
            huge_put = hashcost.huge_memo_put(head) is not None
        except EOFError:
            # (the walk cut the load at a PUT the C memo table cannot hold)
            huge_put = stop is not None and stop.reason == "memo"
        except Exception:
            pass
        finally:
            del unpickler
        if huge_put:
            # as in `_scan_one`: a dict memo holds the index; read on past it
            fileobj.seek(origin + start)
            reader = Reader(fileobj, find_candidates=False)
            reader.base = start
            _cut_before_the_load(reader, lengths=True)
            session = Session(shadow, location, proto, joblib=True)
            unpickler = PyUnpickler(reader, session, c_like=True)
            with contextlib.suppress(Exception):
                run(unpickler, session, ctx.memory_budget)
            del unpickler
        if session.events:
            _pin_positions(fileobj, True, origin, start, session, location)
    finally:
        fileobj.seek(here)
    existing = {i.message for i in result.issues}
    for issue in shadow.issues:
        if issue.severity is IssueSeverity.CRITICAL and issue.message not in existing:
            issue.details["interpretation"] = "pickle.load"
            result.issues.append(issue)


#: How the pure-Python unpickler refuses an opcode that runs past its frame.
_PY_FRAME_ERRORS: Final = "before end of"
_NO_PEEK: Final = "file object without peek (torch.load, io.BytesIO)"
_STRADDLE_WHY: Final = (
    "A FRAME announces fewer bytes than the opcode at its end needs. Reading from a file, "
    "the C unpickler drops the rest of the frame and reads the argument after it; reading "
    "bytes, it reads straight on. Python never writes this: the file is built so that a "
    "scanner and a loader see different programs."
)


def _pickle_bytes(
    fileobj: BinaryIO, seekable: bool, origin: int, start: int, reader: Reader
) -> bytes | None:
    """The bytes from this pickle's start to the end of the stream (bounded)."""
    if seekable:
        here = fileobj.tell()
        try:
            fileobj.seek(origin + start)
            return fileobj.read(RECORD_LIMIT)
        except (OSError, ValueError):
            return None
        finally:
            with contextlib.suppress(OSError, ValueError):
                fileobj.seek(here)
    if reader.record is None:
        return None
    reader.look(RECORD_LIMIT - len(reader.record))
    record = reader.record
    return bytes(record[start:]) if record is not None else None


def _whole_stream(fileobj: BinaryIO, reader: Reader) -> bytes | None:
    """The whole stream out of the reader's record of an unseekable source (read on to its
    end, up to RECORD_LIMIT); None unless the record holds all of it."""
    data = _pickle_bytes(fileobj, False, 0, 0, reader)
    return data if data is not None and reader.eof and reader.record is not None else None


def _fingerprint(session: Session, error: str | None) -> tuple[tuple[str, ...], int, bool]:
    return tuple(session.globals), session.n_calls, error is None


def _other_readings(
    data: bytes | None,
    start: int,
    straddle: int,
    session: Session,
    error: str | None,
    result: ScanResult,
    location: Callable[[int | None], str],
    ctx: ScanContext,
    proto: int,
    python: bool,
) -> None:
    """Read a straddling pickle as `pickle.loads` and `open()` would; report a difference."""
    primary = _fingerprint(session, error)
    own = "pickle._Unpickler (joblib)" if python else _NO_PEEK
    summary: dict[str, dict[str, object]] = {own: _summary(session, error)}
    differing: list[tuple[str, ScanResult]] = []
    if data is None:
        summary["other readings"] = {"error": "the stream could not be read again"}
    else:
        stop = hashcost.first_stop(data[: hashcost.WINDOW], len(data))
        data = data if stop is None else data[: stop.at]
        for name, make in readings(no_peek=python):
            shadow = ScanResult(scanner_name=result.scanner_name)
            other = Session(shadow, location, proto, joblib=True)
            unpickler = CUnpickler(make(data), other, size=len(data))
            other_error: str | None = None
            try:
                run(unpickler, other, ctx.memory_budget)
            except Exception as exc:
                other_error = f"{type(exc).__name__}: {str(exc)[:200]}"
            finally:
                del unpickler
            if name.startswith("pickle.loads") and other.events:
                _pin_positions(io.BytesIO(data), True, -start, start, other, location)
            summary[name] = _summary(other, other_error)
            if _fingerprint(other, other_error) != primary:
                differing.append((name, shadow))
        if not differing:
            return
    result.add_issue(
        "Pickle reads differently from a file than from bytes: an opcode straddles a FRAME",
        severity=IssueSeverity.CRITICAL,
        location=location(straddle),
        details={
            "position": straddle,
            "opcode": "FRAME",
            "module": "",
            "function": "",
            "readings": summary,
        },
        why=_STRADDLE_WHY,
        rule=R.FRAME_STRADDLE,
    )
    existing = {i.message for i in result.issues}
    for name, shadow in differing:
        for issue in shadow.issues:
            if issue.severity.rank >= IssueSeverity.WARNING.rank and issue.message not in existing:
                existing.add(issue.message)
                issue.details["interpretation"] = name
                result.issues.append(issue)


def _summary(session: Session, error: str | None) -> dict[str, object]:
    return {"imports": session.globals[:20], "calls": session.n_calls, "error": error}


def _note_extension(session: Session, message: str) -> None:
    if "extension code" in message:
        code = message.rsplit(" ", 1)[-1]
        session.report(
            "ext",
            0,
            f"Extension code {code} names a global through copyreg's registry",
            IssueSeverity.CRITICAL,
            R.EXTENSION_CODE,
            "EXT1/EXT2/EXT4 resolve through the loading process's copyreg extension registry, "
            "so they can name any callable the loading program registered; nothing in the file "
            "says which.",
            "copyreg",
            f"extension:{code}",
            "EXT",
        )


def _pin_positions(
    fileobj: BinaryIO,
    seekable: bool,
    origin: int,
    start: int,
    session: Session,
    location: Callable[[int | None], str],
) -> None:
    if not seekable or session.pos is not None:
        return
    here = fileobj.tell()
    try:
        fileobj.seek(origin + start)
        full = session.need_all
        pins = positions.walk(
            fileobj,
            base=-origin,
            need_globals=-1 if full else session.need_globals,
            need_calls=-1 if full else session.need_calls,
        )
    finally:
        fileobj.seek(here)
    for kind, ordinal, issue in session.events:
        pos: int | None = None
        op: str | None = None
        if kind == "global" and 0 < ordinal <= len(pins.globals):
            pos, op = pins.globals[ordinal - 1]
        elif kind == "call" and 0 < ordinal <= len(pins.calls):
            pos, op = pins.calls[ordinal - 1]
        elif kind == "ext" and pins.extensions:
            pos, op, code = pins.extensions[-1]
            issue.details["code"] = code
        if pos is not None:
            issue.details["position"] = pos
            if op:
                issue.details["opcode"] = op
            issue.location = location(pos)


def _max_depth(ctx: ScanContext) -> int:
    return int(ctx.config.get("max_pickle_depth", min(int(ctx.config.get("max_depth", 5)), 3)))


def _nested_from_calls(
    session: Session,
    result: ScanResult,
    location: Callable[[int | None], str],
    ctx: ScanContext,
    depth: int,
    start: int,
) -> None:
    if session.nested_over:
        report_budget(
            result,
            location(None),
            BudgetExceeded("nested pickle bytes", stubs.NESTED_BUDGET),
        )
    if session.forward_over:
        report_budget(
            result,
            location(None),
            BudgetExceeded("calls handed to registrars and partials", stubs.FORWARD_BUDGET),
        )
    if session.handed_over:
        report_budget(
            result,
            location(None),
            BudgetExceeded(
                "argument values checked for handed-over callables", stubs.HANDED_BUDGET
            ),
        )
    if session.escape_over:
        report_budget(
            result,
            location(None),
            BudgetExceeded(
                "argument values checked for resolvers handed over", stubs.ESCAPE_BUDGET
            ),
        )
    for data, stacked, label, trusted in session.nested:
        if trusted:
            nested.scan_blob(
                data,
                result,
                location=location,
                ctx=ctx,
                depth=depth + 1,
                stacked=stacked,
                label=label,
                scan=scan_pickle_bytes,
            )
        else:
            nested.scan_candidate(
                data,
                start,
                result,
                location=location,
                ctx=ctx,
                depth=depth + 1,
                seen=set(),
                scan=scan_pickle_bytes,
                encoding="latin-1 string",
            )


def _nested_from_candidates(
    reader: Reader,
    result: ScanResult,
    location: Callable[[int | None], str],
    ctx: ScanContext,
    depth: int,
    end: int,
    starts: set[int],
    seen: set[str],
    low_proto: bool,
    reread: Callable[[int, int], bytes] | None,
    straddled: bool,
) -> None:
    if not reader.candidates:
        return
    budget = _REREAD_BUDGET
    todo = [
        (at, data)
        for at, data in reader.candidates
        if at < end and at not in starts and not reader.in_skipped(at)
    ]
    if low_proto:
        # A protocol 0-3 stream's own GLOBAL opcodes look like protocol-0 pickles: only one
        # that a string or bytes argument starts with is a candidate (checked on the bytes
        # just before it, without a walk; which is how an embedded pickle is stored).
        read = _reader_bytes(reader, reread)
        todo = [
            (at, d)
            for at, d in todo
            if d[:1] != b"c"
            or (read is not None and not straddled and spans.starts_argument(read, at))
        ]
    if not todo:
        return  # most often the stream's own header, already read as a pickle
    # Where the readings of a straddling stream part, offsets mean different things: no filter.
    walk = None if straddled else _string_spans(reader, reread, [at for at, _ in todo], end)
    for at, data in todo:
        if reread is not None and budget > 0 and len(data) >= _SLICE_FULL:
            # the slice kept while streaming is short; a seekable source gives the whole run
            data = reread(at, min(_REREAD_EACH, budget))
            budget -= len(data)
        nested.scan_candidate(
            data,
            at,
            result,
            location=location,
            ctx=ctx,
            depth=depth + 1,
            seen=seen,
            scan=scan_pickle_bytes,
            reachable=None if walk is None else walk.inside,
        )


def _reader_bytes(
    reader: Reader, reread: Callable[[int, int], bytes] | None
) -> Callable[[int, int], bytes] | None:
    """Stream bytes by offset: read again from a seekable source, else from the record."""
    if reread is not None:
        return reread
    record = reader.record
    if record is None:
        return None
    kept = record

    def read(at: int, size: int) -> bytes:
        return bytes(kept[at : at + size])

    return read


def _string_spans(
    reader: Reader,
    reread: Callable[[int, int], bytes] | None,
    queries: list[int],
    end: int,
) -> StringSpans:
    """The outer stream's string arguments, walked only if a candidate has findings."""
    return StringSpans(
        _reader_bytes(reader, reread), queries, start=0, end=end, skipped=reader.skipped
    )


__all__ = ["PickleStreamInfo", "scan_pickle_bytes", "scan_pickle_stream"]
