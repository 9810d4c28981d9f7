"""Streaming, bounded decompression shared by compressed files, joblib and zip members.

A decompression bomb must give a finding, never exhaust memory or disk, so a reader never
produces more than `limit` bytes in total, stops once the output/input ratio exceeds
`max_ratio` past `ratio_floor` bytes, and reports why it stopped (`limit_hit`, `error`,
`truncated`) instead of raising into whatever consumes the stream (a pickle walker, tarfile).
"""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any, BinaryIO, Final, Protocol

from ..expansion import ExpansionBudget

CHUNK: Final = 1 << 20

#: Stream kinds and the magic that starts another stream of the same kind.
_MAGIC: Final[dict[str, bytes]] = {
    "gzip": b"\x1f\x8b",
    "bzip2": b"BZh",
    "xz": b"\xfd7zXZ\x00",
    "lz4": b"\x04\x22\x4d\x18",
    "zlib": b"\x78",
    "lzma": b"\x5d",
    "zstd": b"\x28\xb5\x2f\xfd",
}
#: zstd and lz4 skippable frames (0x184D2A50-5F, little-endian): decoders step over them.
_SKIPPABLE: Final = b"\x2a\x4d\x18"
KINDS: Final = frozenset({*_MAGIC, "deflate", "zip_lzma"})
#: Bytes that tell whether another stream starts: the longest magic, or a skippable frame's.
_MAGIC_SPAN: Final = 6


class _Decoder(Protocol):
    @property
    def eof(self) -> bool: ...
    @property
    def needs_input(self) -> bool: ...
    @property
    def unused_data(self) -> bytes: ...
    def feed(self, data: bytes, max_out: int) -> bytes: ...


class _ZlibDecoder:
    def __init__(self, wbits: int) -> None:
        self._d = zlib.decompressobj(wbits)
        self._tail = b""

    @property
    def eof(self) -> bool:
        return self._d.eof

    @property
    def needs_input(self) -> bool:
        return not self._tail

    @property
    def unused_data(self) -> bytes:
        return self._d.unused_data

    def feed(self, data: bytes, max_out: int) -> bytes:
        out = self._d.decompress(self._tail + data if self._tail else data, max_out)
        self._tail = self._d.unconsumed_tail
        return out


class _ObjDecoder:
    """bz2, lzma and lz4.frame decompressors share the needs_input/max_length protocol.

    bz2 and lzma are imported by the decoder that needs them: most zips (a PyTorch
    checkpoint, a `.keras` archive) only ever store or deflate, and the two imports cost a
    one-file run milliseconds."""

    def __init__(self, obj: Any) -> None:
        self._d = obj

    @property
    def eof(self) -> bool:
        return bool(self._d.eof)

    @property
    def needs_input(self) -> bool:
        return bool(self._d.needs_input)

    @property
    def unused_data(self) -> bytes:
        return bytes(self._d.unused_data or b"")

    def feed(self, data: bytes, max_out: int) -> bytes:
        return bytes(self._d.decompress(data, max_out))


class _LzmaDecoder(_ObjDecoder):
    """lzma's own error class, which the reader does not import, becomes a ValueError."""

    def feed(self, data: bytes, max_out: int) -> bytes:
        import lzma

        try:
            return self._feed(data, max_out)
        except lzma.LZMAError as exc:
            raise ValueError(str(exc)) from exc

    def _feed(self, data: bytes, max_out: int) -> bytes:
        return bytes(self._d.decompress(data, max_out))


class _ZstdDecoder(_ObjDecoder):
    """Zstandard (the standard library's `compression.zstd` from Python 3.14, or its
    backport); its error class becomes a ValueError."""

    def __init__(self, obj: Any, error: type[Exception]) -> None:
        super().__init__(obj)
        self._error = error

    def feed(self, data: bytes, max_out: int) -> bytes:
        try:
            return bytes(self._d.decompress(data, max_out))
        except self._error as exc:
            raise ValueError(str(exc)) from exc


def _zstd() -> Any:
    try:
        from compression import zstd  # type: ignore[import-not-found]
    except ImportError:
        try:
            from backports import zstd  # type: ignore[no-redef]
        except ImportError as exc:
            raise MissingCodec(
                "zstd not available (Python 3.14+ or backports.zstd), cannot decompress Zstandard"
            ) from exc
    return zstd


class _ZipLzmaDecoder(_LzmaDecoder):
    """Zip method 14: a 4-byte version/size prefix and LZMA1 properties before raw data."""

    def __init__(self) -> None:
        self._head = b""
        super().__init__(None)

    @property
    def eof(self) -> bool:
        return self._d is not None and bool(self._d.eof)

    @property
    def needs_input(self) -> bool:
        return self._d is None or bool(self._d.needs_input)

    def _feed(self, data: bytes, max_out: int) -> bytes:
        if self._d is None:
            self._head += data
            if len(self._head) < 4:
                return b""
            (psize,) = struct.unpack_from("<H", self._head, 2)
            if len(self._head) < 4 + psize:
                return b""
            import lzma

            filt = lzma._decode_filter_properties(  # type: ignore[attr-defined]
                lzma.FILTER_LZMA1, self._head[4 : 4 + psize]
            )
            self._d = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[filt])
            data, self._head = self._head[4 + psize :], b""
        return bytes(self._d.decompress(data, max_out))


def _decoder(kind: str) -> _Decoder:
    if kind == "gzip":
        return _ZlibDecoder(31)
    if kind == "zlib":
        return _ZlibDecoder(15)
    if kind == "deflate":
        return _ZlibDecoder(-15)
    if kind == "bzip2":
        import bz2

        return _ObjDecoder(bz2.BZ2Decompressor())
    if kind in ("xz", "lzma"):
        import lzma

        form = lzma.FORMAT_XZ if kind == "xz" else lzma.FORMAT_ALONE
        return _LzmaDecoder(lzma.LZMADecompressor(form))
    if kind == "zip_lzma":
        return _ZipLzmaDecoder()
    if kind == "lz4":
        try:
            import lz4.frame
        except ImportError as exc:
            raise MissingCodec("lz4 not installed, cannot decompress LZ4 streams") from exc
        return _ObjDecoder(lz4.frame.LZ4FrameDecompressor())
    if kind == "zstd":
        zstd = _zstd()
        return _ZstdDecoder(zstd.ZstdDecompressor(), zstd.ZstdError)
    raise ValueError(f"unknown compression {kind}")


def _starts_stream(kind: str, rest: bytes) -> bool:
    """Whether `rest` starts another stream the loader would decode: the kind's magic, or for
    zstd and lz4 a skippable frame too (`ZstdFile`, and `LZ4FrameFile`, which joblib reads
    `.lz4` pickles with, go on past one: `_compression.DecompressReader` starts a new
    decompressor on whatever follows a frame, and `LZ4FrameDecompressor` takes a skippable
    frame as a whole frame, ending it with the rest as `unused_data`)."""
    if rest.startswith(_MAGIC.get(kind, b"\x00\x00")):
        return True
    return kind in ("zstd", "lz4") and rest[1:4] == _SKIPPABLE and rest[0] & 0xF0 == 0x50


class MissingCodec(Exception):
    """The library that decodes this stream is not installed."""


class Window(io.RawIOBase):
    """A read-only, seekable view of `length` bytes of `f` starting at `start`."""

    def __init__(self, f: BinaryIO, start: int, length: int) -> None:
        super().__init__()
        self._f = f
        self._start = start
        self._length = max(0, length)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._length}[whence]
        self._pos = min(max(0, base + offset), self._length)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self._length - self._pos)
        if n <= 0:
            return 0
        self._f.seek(self._start + self._pos)
        data = self._f.read(n)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


class DecompressingReader(io.RawIOBase):
    """Decompress `source` on demand, never more than the limits allow.

    When a limit is hit, the data is corrupt or the input ends early, the reader returns EOF
    and records why, so the consumer sees a short stream and the scanner reports the reason.
    """

    def __init__(
        self,
        source: BinaryIO,
        kind: str,
        *,
        limit: int,
        max_ratio: float = 0.0,
        ratio_floor: int = 32 << 20,
        multistream: bool = True,
        budget: ExpansionBudget | None = None,
    ) -> None:
        super().__init__()
        self._src = source
        #: Charged for every byte produced, before it is handed on.
        self.budget = budget
        self.kind = kind
        self._dec: _Decoder | None = _decoder(kind)
        self._multistream = multistream
        self.limit = limit
        self.max_ratio = max_ratio
        self.ratio_floor = ratio_floor
        self.bytes_in = 0
        self.bytes_out = 0
        self.limit_hit: str | None = None
        self.error: str | None = None
        self.truncated = False
        self.trailing = False
        self._pending_in = b""

    def readable(self) -> bool:
        return True

    @property
    def clean_end(self) -> bool:
        return not (self.limit_hit or self.error or self.truncated)

    def _next_stream(self, rest: bytes) -> bool:
        # a stream that ends in the last bytes of a chunk leaves part of the next magic
        while len(rest) < _MAGIC_SPAN:
            more = self._src.read(CHUNK)
            if not more:
                break
            self.bytes_in += len(more)
            rest += more
        if not rest:
            return False
        if not self._multistream or not _starts_stream(self.kind, rest):
            self.trailing = True
            return False
        self._dec = _decoder(self.kind)
        self._pending_in = rest
        return True

    def readinto(self, buffer: Any) -> int:
        want = len(buffer)
        while self._dec is not None:
            dec = self._dec
            if dec.eof:
                if not self._next_stream(dec.unused_data):
                    self._dec = None
                continue
            if dec.needs_input:
                data = self._pending_in or self._src.read(CHUNK)
                if not self._pending_in:
                    self.bytes_in += len(data)
                self._pending_in = b""
                if not data:
                    self.truncated = True
                    self._dec = None
                    break
            else:
                data = b""
            room = min(want, self.limit - self.bytes_out + 1)
            if self.budget is not None:
                room = min(room, self.budget.remaining + 1)
            try:
                out = dec.feed(data, max(1, room))
            except (zlib.error, OSError, EOFError, RuntimeError, ValueError) as exc:
                self.error = f"{self.kind} data is corrupt: {exc}"
                self._dec = None
                break
            if not out:
                continue
            # The shared budget first: a stream opened with what was left of it ends because
            # the budget ran out, which stops every other member and level too.
            if self.budget is not None and not self.budget.charge(len(out)):
                self.limit_hit = self.budget.exceeded
                self._dec = None
                break
            self.bytes_out += len(out)
            if self.bytes_out > self.limit:
                self.limit_hit = f"expands beyond the {self.limit} byte limit"
                self._dec = None
                break
            if (
                self.max_ratio
                and self.bytes_out > self.ratio_floor
                and self.bytes_out > self.max_ratio * max(1, self.bytes_in)
            ):
                self.limit_hit = (
                    f"compression ratio above {self.max_ratio:g}:1 "
                    f"({self.bytes_out} bytes from {self.bytes_in})"
                )
                self._dec = None
                break
            buffer[: len(out)] = out
            return len(out)
        return 0


def open_stream(
    source: BinaryIO,
    kind: str,
    *,
    limit: int,
    max_ratio: float = 0.0,
    ratio_floor: int = 32 << 20,
    multistream: bool = True,
    budget: ExpansionBudget | None = None,
) -> tuple[DecompressingReader, io.BufferedReader]:
    """A decompressing reader and a buffered view of it (peek, readline, small reads)."""
    raw = DecompressingReader(
        source,
        kind,
        limit=limit,
        max_ratio=max_ratio,
        ratio_floor=ratio_floor,
        multistream=multistream,
        budget=budget,
    )
    return raw, io.BufferedReader(raw, CHUNK)
