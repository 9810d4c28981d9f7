"""A counting, chunked reader that the unpickler pulls from.

The C unpickler prefetches through `peek` and advances with `read`, so handing it this reader
keeps its per-opcode work in C while we learn exactly how many bytes it consumed. Each chunk
is searched once for byte patterns of embedded pickles (raw, base64, hex, zlib) as it passes.
"""

from __future__ import annotations

import re
import zlib
from typing import BinaryIO, Final

CHUNK: Final = 1 << 20
_PEEK: Final = 1 << 18
_OVERLAP: Final = 64
_MAX_CANDIDATES: Final = 256
_SLICE: Final = 1 << 12
_PIECE: Final = 64 << 20

#: Where an embedded pickle may start: raw protocol 2-5, a protocol-0 GLOBAL line, base64 of
#: either or of a zlib/gzip stream, hex of a protocol header or of zlib, a zlib/gzip stream.
#: One pattern per literal prefix: the regex engine skips ahead on a literal, not on an
#: alternation, so separate patterns cost a fraction of one combined pattern.
CANDIDATE_PATTERNS: Final = tuple(
    re.compile(p)
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
#: The same, as one pattern, for searching small decoded payloads.
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

    def __init__(self, fileobj: BinaryIO, *, find_candidates: bool = True) -> None:
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
            parts.append(chunk)
            have += len(chunk)
        self.base += self.off
        self.buf = parts[0] if len(parts) == 1 else b"".join(parts)
        self.off = 0

    def _search(self, chunk: bytes) -> None:
        if len(self.candidates) >= _MAX_CANDIDATES:
            return
        start = self._scanned_to - len(self._tail)
        data = self._tail + chunk
        skip = len(self._tail)
        for pattern in CANDIDATE_PATTERNS:
            for m in pattern.finditer(data):
                if m.end() <= skip:
                    continue
                piece = data[m.start() : m.start() + _SLICE]
                if not _plausible(piece):
                    continue
                self.candidates.append((start + m.start(), piece))
                if len(self.candidates) >= _MAX_CANDIDATES:
                    return
        self._scanned_to += len(chunk)
        self._tail = data[-_OVERLAP:]

    # -- the file protocol the unpicklers use

    def peek(self, n: int = 1) -> bytes:
        if self.off >= len(self.buf):
            self._fill(1)
        return self.buf[self.off : self.off + max(n, _PEEK)]

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            self._fill(1 << 62)
            out = self.buf[self.off :]
            self.off = len(self.buf)
            return out
        if len(self.buf) - self.off < n:
            self._fill(n)
        out = self.buf[self.off : self.off + n]
        self.off += len(out)
        return out

    def readinto(self, b: bytearray | memoryview) -> int:
        """Large constants go straight from the file into the loader's buffer."""
        view = memoryview(b).cast("B")
        n = len(view)
        have = min(len(self.buf) - self.off, n)
        view[:have] = self.buf[self.off : self.off + have]
        self.off += have
        done = have
        while done < n and not self.eof:
            piece = self.f.read(min(n - done, _PIECE))
            if not piece:
                self.eof = True
                break
            if self.find_candidates:
                self._search(piece)
            view[done : done + len(piece)] = piece
            done += len(piece)
        self.base += self.off
        self.buf, self.off = b"", 0
        self.base += done - have
        return done

    def readline(self) -> bytes:
        while True:
            i = self.buf.find(b"\n", self.off)
            if i >= 0:
                out = self.buf[self.off : i + 1]
                self.off = i + 1
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

    def at_eof(self) -> bool:
        if self.off < len(self.buf):
            return False
        self._fill(1)
        return self.off >= len(self.buf)
