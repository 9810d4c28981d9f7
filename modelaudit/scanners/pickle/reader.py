"""A counting, chunked reader that the unpickler pulls from, read as a real file is.

The C unpickler prefetches through `peek` and advances with `read`, so handing it this reader
keeps its per-opcode work in C while we learn exactly how many bytes it consumed. Each chunk
is searched once for byte patterns of embedded pickles (raw, base64, hex, zlib) as it passes.

Frames: the C unpickler reads what a FRAME announces with one `read(n)` when the frame is not
already in its buffer, and an opcode whose argument runs past the end of such a buffer loses
the bytes left in it (it reads the whole argument afresh after the frame). `pickle.loads`
reads the same bytes straight through. This reader never lets frame data sit in a `peek`
result, so every frame is read the way `io.BytesIO` (torch's zip loader) and large frames
from `open()` are read; when an opcode reaches past a frame (the only way the readings can
part) it sets `straddle`, and the engine reads the pickle the other ways too.
"""

from __future__ import annotations

import io
import os
import re
import zlib
from typing import BinaryIO, Final

from ...lazy_re import LazyPattern

CHUNK: Final = 1 << 20
_PEEK: Final = 1 << 18
_OVERLAP: Final = 64
_MAX_CANDIDATES: Final = 256
_SLICE: Final = 1 << 12
_PIECE: Final = 64 << 20
#: Chunks up to this size are searched with the combined pattern first: on a few hundred
#: bytes one search costs less than starting eleven, on long text with no match it costs more.
_SMALL: Final = 1 << 10
#: The most of an unseekable stream kept for reading a straddling pickle again.
RECORD_LIMIT: Final = 64 << 20
_FRAME: Final = 0x95
_FRAME_BYTE: Final = b"\x95"
#: A FRAME longer than this fails in every reading (no file holds it), so only shorter ones
#: need their bytes kept out of a peek.
_MAX_FRAME_BITS: Final = 40
#: Frame buffers of exactly one length-prefixed header whose payload follows the frame: the C
#: pickler writes big str objects so, and the payload read then starts where the frame ends.
_HEADER_ONLY: Final = {ord("X"): 4, 0x8D: 8}

#: Where an embedded pickle may start: raw protocol 2-5, a protocol-0 GLOBAL line, base64 of
#: either or of a zlib/gzip stream, hex of a protocol header or of zlib, a zlib/gzip stream.
#: One pattern per literal prefix: the regex engine skips ahead on a literal, not on an
#: alternation, so separate patterns cost a fraction of one combined pattern on long chunks
#: (compiled on first use: small chunks are searched with the combined one first).
CANDIDATE_PATTERNS: Final = tuple(
    LazyPattern(p)
    for p in (
        rb"\x80[\x02-\x05][\x95(\]}cN)KJMI\x8c\x8d\x8e\x88\x89\x93\x8a]",
        rb"c[A-Za-z_][\w.]{0,80}\n[A-Za-z_][\w.]{0,80}\n",
        rb"gA[SNIU][A-Za-z0-9+/_-]{13}",
        rb"Y[0-3][A-Za-z0-9+/]{14}",
        rb"e[JNFA][A-Za-z0-9+/_-]{14}",
        rb"H4sI[A-Za-z0-9+/_-]{12}",
        rb"800[2-5][0-9a-fA-F]{12}",
        rb"78(?:9[cC]|[dD][aA]|01|5[eE])[0-9a-fA-F]{12}",
        rb"1[fF]8[bB]08[0-9a-fA-F]{10}",
        rb"x[\x01\x5e\x9c\xda]",
        rb"\x1f\x8b\x08",
    )
)
#: The same, as one pattern, for searching small decoded payloads. Each pattern starts with a
#: literal byte of its own, so at any offset at most one of them matches.
CANDIDATE_RE: Final = re.compile(b"|".join(p.pattern for p in CANDIDATE_PATTERNS))


def _plausible(data: bytes) -> bool:
    """Cheap check that a zlib/gzip candidate really starts a compressed stream."""
    if data[:1] == b"x" or data[:2] == b"\x1f\x8b":
        wbits = 15 if data[:1] == b"x" else 31
        try:
            return bool(zlib.decompressobj(wbits).decompress(data[:1024], 64))
        except zlib.error:
            return False
    return True


class Reader:
    """File-like view of `fileobj` from where it stands; positions are relative to that."""

    def __init__(self, fileobj: BinaryIO, find_candidates: bool = True) -> None:
        self.f = fileobj
        self.buf = b""
        self.off = 0
        self.base = 0  # stream offset of buf[0]
        self.eof = False
        self.find_candidates = find_candidates
        self.candidates: list[tuple[int, bytes]] = []
        self._scanned_to = 0
        self._tail = b""
        #: Stream ranges skipped as raw data (joblib arrays): the loader never parses them,
        #: so byte patterns found there are not embedded pickles.
        self.skipped: list[tuple[int, int]] = []
        #: The last bytes handed out, to know whether a FRAME header ends where we stand.
        self._recent = b""
        #: The frame buffer handed out last, until the unpickler asks for anything else.
        self._frame: tuple[bytes, int] | None = None
        #: Stream offset where an opcode argument ran past the end of a frame buffer.
        self.straddle: int | None = None
        #: A copy of what was read from an unseekable source (bounded), so the engine can
        #: read a pickle again the other ways a loader would.
        self.record: bytearray | None = None if _seekable(fileobj) else bytearray()

    @property
    def pos(self) -> int:
        return self.base + self.off

    def _fill(self, need: int) -> None:
        """Make at least `need` bytes available in buf[off:] unless the stream ends."""
        have = len(self.buf) - self.off
        if have >= need or self.eof:
            return
        parts = [self.buf[self.off :]] if have else []
        while have < need:
            # never ask the file for more than a bounded piece: a length field in a hostile
            # stream must not turn into one huge allocation
            chunk = self.f.read(min(max(CHUNK, need - have), _PIECE))
            if not chunk:
                self.eof = True
                break
            if self.find_candidates:
                self._search(chunk)
            self._keep(chunk)
            parts.append(chunk)
            have += len(chunk)
        self.base += self.off
        self.buf = parts[0] if len(parts) == 1 else b"".join(parts)
        self.off = 0

    def _keep(self, chunk: bytes) -> None:
        record = self.record
        if record is not None:
            if len(record) + len(chunk) <= RECORD_LIMIT:
                record += chunk
            else:
                self.record = None

    def _search(self, chunk: bytes) -> None:
        if len(self.candidates) >= _MAX_CANDIDATES:
            return
        start = self._scanned_to - len(self._tail)
        data = self._tail + chunk
        skip = len(self._tail)
        patterns: tuple[LazyPattern[bytes], ...] = CANDIDATE_PATTERNS
        first = CANDIDATE_RE.search(data) if len(data) <= _SMALL else None
        if first is None and len(data) <= _SMALL:
            patterns = ()
        elif first is not None and CANDIDATE_RE.search(data, first.start() + 1) is None:
            # the only match there is (a small pickle's own header, most often): the patterns
            # start with distinct literal bytes, so it is the one pattern matching there
            patterns = ()
            if first.end() > skip and self._take(start, first.start(), data):
                return
        for pattern in patterns:
            for m in pattern.finditer(data):
                if m.end() > skip and self._take(start, m.start(), data):
                    return
        self._scanned_to += len(chunk)
        self._tail = data[-_OVERLAP:]

    def _take(self, start: int, at: int, data: bytes) -> bool:
        """Keep the candidate at `data[at:]` if plausible; True once the list is full."""
        piece = data[at : at + _SLICE]
        if _plausible(piece):
            self.candidates.append((start + at, piece))
        return len(self.candidates) >= _MAX_CANDIDATES

    # -- the file protocol the unpicklers use

    def look(self, n: int) -> bytes:
        """The next `n` bytes without consuming them (for the engine, not the unpickler)."""
        if len(self.buf) - self.off < n:
            self._fill(n)
        return self.buf[self.off : self.off + n]

    def peek(self, n: int = 1) -> bytes:
        """What the C unpickler may read ahead: never past a FRAME header it might execute.

        An empty result makes the unpickler `read` exactly what it needs, as from a file
        without `peek`; that is how a frame's bytes are always handed out.
        """
        if self._frame is not None:
            return b""
        if len(self.buf) - self.off < 9:
            self._fill(9)
        off = self.off
        buf = self.buf
        end = min(len(buf), off + max(n, _PEEK))
        recent = self._recent
        if _FRAME_BYTE in recent:
            window = recent + buf[off : off + 9]
            i = window.find(_FRAME_BYTE, 0, len(recent))
            while i >= 0:
                if _plausible_frame(window, i):
                    header_end = i + 9 - len(recent)
                    if header_end == 0:
                        return b""
                    end = min(end, off + header_end)
                    break
                i = window.find(_FRAME_BYTE, i + 1, len(recent))
        k = buf.find(_FRAME_BYTE, off, end)
        while k >= 0:
            if _plausible_frame(buf, k):
                end = min(end, k + 9)
                break
            k = buf.find(_FRAME_BYTE, k + 1, end)
        return buf[off:end]

    def _handed(self, out: bytes, n: int) -> None:
        """Track frame buffers: the bytes a FRAME header announces, read in one call."""
        recent = self._recent
        if self._frame is not None:
            frame, self._frame = self._frame, None
            if n > 1 and not _header_only(*frame, n):
                self.straddle = self.pos - len(out) if self.straddle is None else self.straddle
        if (
            n > 0
            and len(recent) == 9
            and recent[0] == _FRAME
            and int.from_bytes(recent[1:], "little") == n == len(out)
        ):
            self._frame = (out[:9], n)
        self._recent = (recent + out[-9:])[-9:]

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            self._fill(1 << 62)
            out = self.buf[self.off :]
            self.off = len(self.buf)
            self._handed(out, len(out))
            return out
        if len(self.buf) - self.off < n:
            self._fill(n)
        out = self.buf[self.off : self.off + n]
        self.off += len(out)
        self._handed(out, n)
        return out

    def readinto(self, b: bytearray | memoryview) -> int:
        """Large constants go straight from the file into the loader's buffer."""
        # an argument copied in part from a frame buffer loses nothing: not a straddle
        self._frame = None
        view = memoryview(b).cast("B")
        n = len(view)
        have = min(len(self.buf) - self.off, n)
        view[:have] = self.buf[self.off : self.off + have]
        self.off += have
        done = have
        if done == n:
            if done:
                self._recent = (self._recent + bytes(view[max(0, done - 9) : done]))[-9:]
            return done
        while done < n and not self.eof:
            piece = self.f.read(min(n - done, _PIECE))
            if not piece:
                self.eof = True
                break
            if self.find_candidates:
                self._search(piece)
            self._keep(piece)
            view[done : done + len(piece)] = piece
            done += len(piece)
        self.base += self.off
        self.buf, self.off = b"", 0
        self.base += done - have
        if done:
            self._recent = (self._recent + bytes(view[max(0, done - 9) : done]))[-9:]
        return done

    def readline(self) -> bytes:
        if self._frame is not None:
            self._frame = None
            if self.straddle is None:
                self.straddle = self.pos
        while True:
            i = self.buf.find(b"\n", self.off)
            if i >= 0:
                out = self.buf[self.off : i + 1]
                self.off = i + 1
                self._recent = (self._recent + out[-9:])[-9:]
                return out
            if self.eof:
                return self.read(-1)
            self._fill(len(self.buf) - self.off + 1)

    def skip(self, n: int) -> int:
        """Advance past raw data without keeping it (joblib arrays)."""
        start = self.pos
        done = self._skip(n)
        if done:
            self.skipped.append((start, start + done))
        return done

    def in_skipped(self, at: int) -> bool:
        return any(lo <= at < hi for lo, hi in self.skipped)

    def search_unskipped(self, fileobj: BinaryIO, origin: int, lo: int, hi: int) -> None:
        """Look for embedded pickles in [lo, hi) outside the skipped raw data.

        Used after a joblib-layout read done without searching: the array bytes, which are
        most of such a file and never parsed by the loader, are not searched at all.
        """
        gaps: list[tuple[int, int]] = []
        cur = lo
        for a, b in sorted(self.skipped):
            if a > cur:
                gaps.append((cur, min(a, hi)))
            cur = max(cur, b)
        if cur < hi:
            gaps.append((cur, hi))
        here = fileobj.tell()
        try:
            for a, b in gaps:
                fileobj.seek(origin + a)
                self._scanned_to, self._tail = a, b""
                left = b - a
                while left > 0 and len(self.candidates) < _MAX_CANDIDATES:
                    chunk = fileobj.read(min(CHUNK, left))
                    if not chunk:
                        break
                    self._search(chunk)
                    left -= len(chunk)
        finally:
            fileobj.seek(here)

    def _skip(self, n: int) -> int:
        avail = len(self.buf) - self.off
        if n <= avail:
            self.off += n
            return n
        self.off = len(self.buf)
        left = n - avail
        done = avail
        seekable = getattr(self.f, "seekable", None)
        if seekable is not None and seekable():
            here = self.f.tell()
            end = self.f.seek(0, 2)
            target = min(here + left, end)
            self.f.seek(target)
            done += target - here
            self.base += len(self.buf) + (target - here)
            self.buf, self.off = b"", 0
            if target - here < left:
                self.eof = True
            self._scanned_to, self._tail = self.base, b""
            return done
        self.record = None
        while left > 0:
            chunk = self.f.read(min(CHUNK, left))
            if not chunk:
                self.eof = True
                break
            left -= len(chunk)
            done += len(chunk)
        self.base += len(self.buf) + (done - avail)
        self.buf, self.off = b"", 0
        self._scanned_to, self._tail = self.base, b""
        return done

    def remaining(self) -> int | None:
        """Bytes from `pos` to the end of the stream, when the source knows its size."""
        buffered = len(self.buf) - self.off
        if self.eof:
            return buffered
        f = self.f
        try:
            # bytes in memory have no fileno to try
            size = len(f.getbuffer()) if type(f) is io.BytesIO else os.fstat(f.fileno()).st_size
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            getbuffer = getattr(f, "getbuffer", None)
            if getbuffer is None:
                return None
            view = getbuffer()
            size = len(view)
            del view
        try:
            return max(0, size - f.tell()) + buffered
        except (AttributeError, OSError, ValueError):
            return None

    def consume(self, n: int) -> None:
        """The unpickler read the next `n` buffered bytes from a copy of them."""
        end = self.off + n
        self._recent = (self._recent + self.buf[max(self.off, end - 9) : end])[-9:]
        self.off = end

    def cut(self, end: int) -> None:
        """Hand out nothing past stream offset `end`, which must already be buffered: the
        unpickler meets the end of the data there (a load stopped at a budget)."""
        keep = end - self.base
        if self.off <= keep < len(self.buf):
            self.buf = self.buf[:keep]
        self.eof = True

    def at_eof(self) -> bool:
        if self.off < len(self.buf):
            return False
        self._fill(1)
        return self.off >= len(self.buf)


def _seekable(f: BinaryIO) -> bool:
    try:
        return bool(f.seekable())
    except Exception:
        return False


def _plausible_frame(data: bytes, at: int) -> bool:
    """Whether a FRAME opcode at `at` could announce a frame some file holds (unknown: yes)."""
    length = data[at + 1 : at + 9]
    return len(length) < 8 or int.from_bytes(length, "little") >> _MAX_FRAME_BITS == 0


def _header_only(head: bytes, length: int, n: int) -> bool:
    size = _HEADER_ONLY.get(head[0]) if head else None
    return size is not None and length == size + 1 and int.from_bytes(head[1:length], "little") == n
