"""SentencePiece model files (`tokenizer.model`, `spiece.model`): a ModelProto protobuf.

Llama, Mistral, Gemma and T5 repositories ship one. The loader (the sentencepiece C++
library) parses vocabulary pieces, trainer and normalizer specs: data only, nothing in it is
ever executed. Recognising it lets a `.model` file end complete instead of unknown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO, Final

from .bounded_reader import BoundedReader, Malformed
from .protowire import Wire, WireError

#: ModelProto: pieces, trainer_spec, normalizer_spec, self_test_data, denormalizer_spec.
_MODEL_FIELDS: Final = {
    1: "pieces",
    2: "trainer_spec",
    3: "normalizer_spec",
    4: "self_test_data",
    5: "denormalizer_spec",
}
#: SentencePiece: piece (string), score (float), type (enum).
_PIECE_FIELDS: Final = {(1, 2), (2, 5), (3, 0)}
_MAX_PIECE: Final = 1 << 16


@dataclass
class SentencePieceInfo:
    pieces: int = 0
    sections: list[str] = field(default_factory=list)
    unknown_fields: list[int] = field(default_factory=list)


def _varint(wire: Wire, pos: int) -> tuple[int, int]:
    """The protobuf walker's varint (one decoder for every protobuf), as `Malformed`."""
    try:
        return wire.varint(pos, wire.size)
    except WireError as exc:
        raise Malformed(str(exc)) from None


def _check_piece(data: bytes) -> None:
    """A SentencePiece message: only piece/score/type, the piece valid UTF-8."""
    wire = Wire(data)
    pos = 0
    while pos < len(data):
        key, pos = _varint(wire, pos)
        fid, wt = key >> 3, key & 7
        if (fid, wt) not in _PIECE_FIELDS:
            raise Malformed(f"piece has field {fid} with wire type {wt}")
        if wt == 0:
            _, pos = _varint(wire, pos)
        elif wt == 5:
            pos += 4
        else:
            n, pos = _varint(wire, pos)
            text = data[pos : pos + n]
            if len(text) != n:
                raise Malformed("piece text runs past its message")
            try:
                text.decode("utf-8")
            except UnicodeDecodeError:
                raise Malformed("piece text is not UTF-8") from None
            pos += n
    if pos != len(data):
        raise Malformed("piece fields run past their message")


def looks_like_sentencepiece(head: bytes) -> bool:
    """At least two leading well-formed pieces (or one, if the head holds the whole file)."""
    wire = Wire(head)
    pos = seen = 0
    try:
        while pos < len(head) and seen < 3:
            key, pos = _varint(wire, pos)
            if key != 0x0A:
                return False
            n, pos = _varint(wire, pos)
            if n == 0 or n > _MAX_PIECE:
                return False
            if pos + n > len(head):
                break
            _check_piece(head[pos : pos + n])
            pos += n
            seen += 1
    except Malformed:
        return False
    return seen >= 2


def read_sentencepiece(f: BinaryIO, size: int) -> SentencePieceInfo:
    """Walk the whole ModelProto; raise `Malformed` where it cannot be one."""
    reader = BoundedReader(f, size)
    info = SentencePieceInfo()
    while reader.left:
        key = _read_varint(reader)
        fid, wt = key >> 3, key & 7
        if fid == 0 or wt not in (0, 1, 2, 5):
            raise Malformed(f"invalid field {fid} wire type {wt} at {reader.pos}")
        if wt == 0:
            _read_varint(reader)
        elif wt in (1, 5):
            reader.skip(8 if wt == 1 else 4)
        else:
            n = _read_varint(reader)
            if n > reader.left:
                raise Malformed(f"field {fid} claims {n} bytes, {reader.left} left")
            if fid == 1:
                if n > _MAX_PIECE:
                    raise Malformed(f"piece message of {n} bytes")
                _check_piece(reader.take(n))
                info.pieces += 1
                continue
            reader.skip(n)
        name = _MODEL_FIELDS.get(fid)
        if name is None:
            if fid not in info.unknown_fields:
                info.unknown_fields.append(fid)
        elif name not in info.sections:
            info.sections.append(name)
    if info.pieces == 0:
        raise Malformed("no vocabulary pieces")
    return info


def _read_varint(reader: BoundedReader) -> int:
    value, used = _varint(Wire(reader.peek(10)), 0)
    reader.skip(used)
    return value
