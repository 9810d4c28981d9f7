"""OpenVINO IR: a graph in `NAME.xml` and its weights in `NAME.bin` beside it.

`openvino.Core.read_model("NAME.xml")` reads the `.bin` as raw bytes at the offsets the
graph's `Const` layers give; nothing parses or runs it. The weights have no magic, so a
`.bin` with no pickle in it is told by the graph beside it (optimum-intel writes
`openvino_model.xml`/`.bin` and one pair per submodel).
"""

from __future__ import annotations

from typing import Final

from ..lazy_re import LazyPattern

#: The IR's root element, after an optional XML declaration (OpenVINO writes no comment or
#: doctype before it); every repeat bounded, so a hostile graph costs a few thousand steps.
_NET: Final = LazyPattern(
    rb'\A\s{0,64}(?:<\?xml[^>]{0,512}>\s{0,64})?<net\s[^>]{0,2048}\bversion="\d{1,3}"'
)


def looks_like_openvino_ir(head: bytes) -> bool:
    """The first bytes of an OpenVINO IR graph (`<net name=... version="11">`)."""
    return _NET.match(head) is not None
