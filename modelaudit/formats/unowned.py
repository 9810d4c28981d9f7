"""What a file no scanner owns is, for `--strict`: known inert content, or unverified.

A default scan lists such a file as skipped unless its extension claims a model format. A
strict scan vouches only for what it can name: text (a model card, a licence, CSV, a vocabulary,
merges) and the binary data files that native readers load as numbers and never as code. Any
other binary is unverified. Protocol 0/1 pickles are ASCII, so text that a pickle loader would
run is never vouched for here (`pickle_whatever_the_name` routes it to the pickle scanner).
"""

from __future__ import annotations

import re
from typing import Final

from .old_pickle import PICKLE_FIRST_OPS, looks_like_old_pickle, old_pickle_verdict
from .text import looks_like_text

#: Magic numbers of binary data formats whose readers (C++ libraries) decode numbers only.
_DATA_MAGICS: Final = (
    (b"\x0c\xdb\x3a\x2a", "TensorStore OCDBT manifest (Orbax checkpoint)"),
    (b"\x0c\xdb\x20\xde", "TensorStore OCDBT data (Orbax checkpoint)"),
    (b"CBM1", "CatBoost model"),
)
#: TensorFlow's checkpoint reader opens these by name and reads tensors at recorded offsets.
_TF_CHECKPOINT: Final = re.compile(r".+\.(index|data-\d{5}-of-\d{5})")
#: UBJSON object: `{` then a typed key length (XGBoost's `save_model("*.ubj")`).
_UBJSON_KEY_MARKERS: Final = frozenset(b"iUIlL")


def pickle_whatever_the_name(head: bytes, complete: bool) -> bool:
    """A protocol 0/1 pickle by its content alone: `pickle.load` never looks at the name."""
    return bool(head) and head[0] in PICKLE_FIRST_OPS and looks_like_old_pickle(head, complete)


def inert_kind(head: bytes, complete: bool, name: str) -> str | None:
    """What vouches that nothing runs this file, or None when nothing does."""
    if not head:
        return None
    if looks_like_text(head):
        if head[0] in PICKLE_FIRST_OPS and old_pickle_verdict(head, complete) != "not":
            return None
        return "text"
    for magic, kind in _DATA_MAGICS:
        if head.startswith(magic):
            return kind
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    if _TF_CHECKPOINT.fullmatch(base):
        return "TensorFlow checkpoint tensors"
    if head[:1] == b"{" and head[1:2] and head[1] in _UBJSON_KEY_MARKERS and name.endswith(".ubj"):
        return "XGBoost UBJSON model"
    return None
