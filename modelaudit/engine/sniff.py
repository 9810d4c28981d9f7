"""Decide a file's format from its content first and its name second.

Loaders do not care about extensions (`torch.load` opens a pickle named `.bin`), so neither
do we: magic bytes win, and the extension only breaks ties between formats that have no magic.
Sniffing is pure and cheap: it looks at the first bytes, and for zips at the member names.
"""

from __future__ import annotations

import os
import struct
import zipfile
from typing import Final

HEAD_SIZE: Final = 4096

PICKLE: Final = "pickle"
PYTORCH_ZIP: Final = "pytorch_zip"
KERAS_ZIP: Final = "keras_zip"
NPZ: Final = "npz"
ZIP: Final = "zip"
TAR: Final = "tar"
GZIP: Final = "gzip"
BZIP2: Final = "bzip2"
XZ: Final = "xz"
LZMA: Final = "lzma"
LZ4: Final = "lz4"
ZLIB: Final = "zlib"
SEVENZIP: Final = "7z"
NUMPY: Final = "numpy"
HDF5: Final = "hdf5"
SAFETENSORS: Final = "safetensors"
GGUF: Final = "gguf"
GGML: Final = "ggml"
TFLITE: Final = "tflite"
ONNX: Final = "onnx"
TF_PROTOBUF: Final = "tf_protobuf"
JSON: Final = "json"
YAML: Final = "yaml"
PMML: Final = "pmml"
MSGPACK: Final = "msgpack"
EXECUTABLE: Final = "executable"
DVC: Final = "dvc"

COMPRESSED: Final = frozenset({GZIP, BZIP2, XZ, LZMA, LZ4, ZLIB})
ARCHIVES: Final = frozenset({ZIP, TAR, SEVENZIP, *COMPRESSED})

_GGML_MAGICS: Final = (b"lmgg", b"fmgg", b"tjgg", b"ggml", b"ggmf", b"ggjt", b"ggla")
_EXEC_MAGICS: Final = (
    b"\x7fELF",
    b"\xfe\xed\xfa\xce",
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",
)
_PICKLE_FIRST_OPS: Final = frozenset(b"(]}cN)KJMIFSVUXBCGTlde\x8c\x8d\x8e\x88\x89\x95\x80\x93q")

_EXTENSIONS: Final[dict[str, str]] = {
    ".pkl": PICKLE,
    ".pickle": PICKLE,
    ".joblib": PICKLE,
    ".dill": PICKLE,
    ".pt": PICKLE,
    ".pth": PICKLE,
    ".npy": NUMPY,
    ".npz": NPZ,
    ".h5": HDF5,
    ".hdf5": HDF5,
    ".keras": KERAS_ZIP,
    ".safetensors": SAFETENSORS,
    ".gguf": GGUF,
    ".ggml": GGML,
    ".tflite": TFLITE,
    ".onnx": ONNX,
    ".pb": TF_PROTOBUF,
    ".pbtxt": TF_PROTOBUF,
    ".json": JSON,
    ".yaml": YAML,
    ".yml": YAML,
    ".pmml": PMML,
    ".msgpack": MSGPACK,
    ".zip": ZIP,
    ".tar": TAR,
    ".tgz": GZIP,
    ".gz": GZIP,
    ".bz2": BZIP2,
    ".xz": XZ,
    ".lzma": LZMA,
    ".lz4": LZ4,
    ".7z": SEVENZIP,
    ".dvc": DVC,
}

#: Extensions under which a user expects a model; unknown content there is worth a warning.
MODEL_EXTENSIONS: Final = frozenset(_EXTENSIONS) | {".bin", ".ckpt", ".mar", ".nemo", ".model"}
#: Names torch.load and friends open; a pickle opcode first is enough to route them to pickle.
_PICKLE_NAMES: Final = (".pkl", ".pickle", ".joblib", ".dill", ".pt", ".pth", ".bin", ".ckpt")


def extension_format(name: str) -> str | None:
    lower = name.lower()
    if lower.endswith((".tar.gz", ".tar.bz2", ".tar.xz", ".nemo")):
        return TAR if lower.endswith(".nemo") else _EXTENSIONS[os.path.splitext(lower)[1]]
    return _EXTENSIONS.get(os.path.splitext(lower)[1])


def has_model_extension(name: str) -> bool:
    return os.path.splitext(name.lower())[1] in MODEL_EXTENSIONS


def _bare_or_model(name: str) -> bool:
    """No extension or a model one: text sniffing must not claim `.md`, `.txt` or `.html`."""
    base = name.replace("\\", "/").replace(":", "/").rsplit("/", 1)[-1]
    suffix = os.path.splitext(base.lower())[1]
    return not suffix or suffix in MODEL_EXTENSIONS


def _is_pe(head: bytes) -> bool:
    """A DOS stub whose e_lfanew points at a PE signature: a Windows program, whatever its name."""
    if len(head) < 0x40:
        return False
    (lfanew,) = struct.unpack_from("<I", head, 0x3C)
    return head[lfanew : lfanew + 4] == b"PE\x00\x00"


def _looks_like_safetensors(head: bytes, size: int | None) -> bool:
    if len(head) < 10:
        return False
    (n,) = struct.unpack_from("<Q", head)
    if n < 2 or (size is not None and n + 8 > size):
        return False
    return head[8:9] == b"{"


def _looks_like_old_pickle(head: bytes, size: int | None) -> bool:
    """Protocol 0/1 pickles have no magic; accept a plausible first opcode plus a closing STOP."""
    if not head or head[0] not in _PICKLE_FIRST_OPS:
        return False
    if head[0:1] == b"c":
        line = head[1:128].split(b"\n", 1)[0]
        return bool(line) and all(32 < b < 127 for b in line) and b"\n" in head[1:256]
    return size is not None and size <= len(head) and head.rstrip(b"\n").endswith(b".")


def _looks_like_tar(head: bytes) -> bool:
    return len(head) >= 262 and head[257:262] == b"ustar"


def _looks_like_zlib(head: bytes) -> bool:
    return len(head) >= 2 and head[0] == 0x78 and (head[0] << 8 | head[1]) % 31 == 0


def _varint_at(head: bytes, pos: int) -> tuple[int, int] | None:
    value = shift = 0
    while pos < len(head) and shift < 64:
        b = head[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
    return None


def _proto_fields(head: bytes, pos: int, count: int) -> list[tuple[int, int]]:
    """Leading (field, wire type) pairs of a protobuf message; [] if it cannot be one."""
    out: list[tuple[int, int]] = []
    while len(out) < count:
        key = _varint_at(head, pos)
        if key is None:
            break
        k, pos = key
        if k & 7 not in (0, 2) or k >> 3 == 0:
            return []
        out.append((k >> 3, k & 7))
        value = _varint_at(head, pos)
        if value is None:
            break
        v, pos = value
        if k & 7 == 2:
            pos += v
    return out


_ONNX_MODEL_FIELDS: Final = {2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2}


def _looks_like_onnx(head: bytes) -> bool:
    """ModelProto: ir_version 3-15 first, then only ModelProto field numbers and wire types."""
    if len(head) < 4 or head[0] != 0x08 or not 3 <= head[1] <= 15:
        return False
    fields = _proto_fields(head, 2, 3)
    return bool(fields) and all(_ONNX_MODEL_FIELDS.get(f) == wt for f, wt in fields)


def _looks_like_saved_model(head: bytes) -> bool:
    """SavedModel: schema version 1, then a MetaGraphDef starting with one of its messages."""
    if not head.startswith(b"\x08\x01\x12"):
        return False
    size = _varint_at(head, 3)
    inner = _proto_fields(head, size[1], 1) if size else []
    return bool(inner) and inner[0] in ((1, 2), (2, 2))


def sniff_head(head: bytes, name: str = "", size: int | None = None) -> str | None:
    """Format from the first bytes (and, only where content is ambiguous, the name)."""
    ext = extension_format(name)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return ZIP
    if _looks_like_safetensors(head, size):
        return SAFETENSORS
    if head.startswith(b"\x80") and len(head) > 1 and 0 < head[1] <= 5:
        return PICKLE
    if head.startswith(b"\x93NUMPY"):
        return NUMPY
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return HDF5
    if head.startswith(b"GGUF"):
        return GGUF
    if head[:4] in _GGML_MAGICS:
        return GGML
    if head[4:8] == b"TFL3":
        return TFLITE
    if head.startswith(b"\x1f\x8b"):
        return GZIP
    if head.startswith(b"ZF0x"):
        return ZLIB
    if head.startswith(b"BZh"):
        return BZIP2
    if head.startswith(b"\xfd7zXZ\x00"):
        return XZ
    if head.startswith(b"\x04\x22\x4d\x18"):
        return LZ4
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return SEVENZIP
    if _looks_like_tar(head):
        return TAR
    if head[:4] in _EXEC_MAGICS or (head.startswith(b"MZ") and (ext is None or _is_pe(head))):
        return EXECUTABLE
    if head.startswith(b"#!"):
        return EXECUTABLE
    if any(head[off : off + 8] == b"\x89HDF\r\n\x1a\n" for off in (512, 1024, 2048)):
        return HDF5  # HDF5 after a user block: h5py finds the superblock there too
    if head.startswith(b"\x5d\x00\x00") and ext in (PICKLE, LZMA, None):
        return LZMA
    if _looks_like_zlib(head) and ext in (PICKLE, ZLIB, None):
        return ZLIB
    stripped = head.lstrip()
    if ext in (JSON, YAML, PMML, DVC, MSGPACK, ONNX, TF_PROTOBUF):
        return ext
    if stripped.startswith(b"<PMML") or (
        stripped.startswith((b"<?xml", b"<!DOCTYPE")) and (b"<PMML" in head or _bare_or_model(name))
    ):
        return PMML
    if stripped[:1] in (b"{", b"[") and ext not in (PICKLE, NUMPY) and _bare_or_model(name):
        return JSON
    if _looks_like_old_pickle(head, size) and _bare_or_model(name):
        return PICKLE
    if head[:1] and head[0] in _PICKLE_FIRST_OPS and name.lower().endswith(_PICKLE_NAMES):
        return PICKLE
    if ext is None and _looks_like_onnx(head):
        return ONNX
    if ext is None and _looks_like_saved_model(head):
        return TF_PROTOBUF
    return ext


def classify_zip(names: list[str]) -> str:
    """Tell PyTorch, Keras v3 and NumPy zips from other archives by their member names."""
    if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
        return PYTORCH_ZIP
    base = {n.rsplit("/", 1)[-1] for n in names}
    if "config.json" in base and ("metadata.json" in base or "model.weights.h5" in base):
        return KERAS_ZIP
    if names and all(n.endswith(".npy") for n in names):
        return NPZ
    if any(n.endswith(".pkl") or n.endswith("/version") for n in names) and any(
        "/data/" in n for n in names
    ):
        return PYTORCH_ZIP
    return ZIP


def read_head(path: str, size: int = HEAD_SIZE) -> bytes:
    with open(path, "rb") as f:
        return f.read(size)


def sniff_path(path: str, display_name: str | None = None) -> str | None:
    """Full sniff of a local file, including the member names of a zip."""
    size = os.path.getsize(path)
    fmt = sniff_head(read_head(path), display_name or path, size)
    if fmt == ZIP:
        try:
            with zipfile.ZipFile(path) as zf:
                return classify_zip(zf.namelist())
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError):
            # zipfile refuses some hostile directories with NotImplementedError (fuzzing).
            return ZIP
    if fmt is None:
        # Unrecognised bytes before a zip (torch.save into an open file, a junk prefix):
        # zipfile and torch.load(f) at an offset still open it, so route it by the zip.
        from ..scanners.containers.polyglot import appended_zip_format

        return appended_zip_format(path)
    return fmt
