"""PMML (XML): DTDs, external entities, entity-expansion bombs and code in `Extension` elements.

PMML consumers (jpmml, pypmml, Nyoka, older lxml setups) parse with whatever XML stack they
have, and many resolve external entities or expand nested ones. The document is streamed
through expat with a default handler installed, which stops internal entity expansion, and
with no external-entity handler, so nothing is fetched or expanded while it is judged.
"""

from __future__ import annotations

import re
from typing import Any, Final

from ...budget import BudgetExceeded, WorkBudget, report_budget
from ...formats import Format
from ...rules.text import PMML_DTD, PMML_ENTITY_BOMB, PMML_EXTENSION_CODE, PMML_XXE
from ..base import BaseScanner, IssueSeverity, ScanResult
from ..nested_bytes import scan_nested_bytes
from .payloads import Payload, find_payloads

_MAX_EXPANSION: Final = 1_000_000
_XINCLUDE_NS: Final = "http://www.w3.org/2001/XInclude"
_ENTITY_REF: Final = re.compile(r"&([A-Za-z_][\w.-]*);")
#: How an entity reference met in an Extension's content is kept until the Extension ends
#: (NUL cannot occur in XML, so text never reads as one).
_REF_MARK: Final = re.compile("\x00([^\x00]*)\x00")
_MODEL_TAGS: Final = frozenset(
    {
        "AssociationModel",
        "BayesianNetworkModel",
        "BaselineModel",
        "ClusteringModel",
        "GaussianProcessModel",
        "GeneralRegressionModel",
        "MiningModel",
        "NaiveBayesModel",
        "NearestNeighborModel",
        "NeuralNetwork",
        "RegressionModel",
        "RuleSetModel",
        "SequenceModel",
        "Scorecard",
        "SupportVectorMachineModel",
        "TextModel",
        "TimeSeriesModel",
        "TreeModel",
        "AnomalyDetectionModel",
    }
)


class PmmlScanner(BaseScanner):
    name = "pmml"
    description = "PMML/XML: DTDs, PMML_XXE, entity bombs and code in Extension elements"
    supported_extensions = [".pmml"]
    formats = (Format.PMML,)

    def scan(self, path: str) -> ScanResult:
        from xml.parsers import expat

        result = self._create_result()
        state = _State()
        parser = expat.ParserCreate()
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        parser.buffer_text = True
        parser.StartDoctypeDeclHandler = state.doctype
        parser.EntityDeclHandler = state.entity
        parser.DefaultHandler = state.default
        parser.StartElementHandler = state.start
        parser.EndElementHandler = state.end
        parser.CharacterDataHandler = state.text
        parser.ExternalEntityRefHandler = state.external_ref
        try:
            with open(path, "rb") as f:
                parser.ParseFile(f)
        except expat.ExpatError as exc:
            result.mark_inconclusive(f"malformed: XML error ({expat.ErrorString(exc.code)})")
        except (LookupError, ValueError) as exc:
            result.mark_inconclusive(f"malformed: XML cannot be decoded ({exc})")
        result.bytes_scanned = parser.CurrentByteIndex if parser.CurrentByteIndex > 0 else 0
        self._report(state, path, result)
        result.finish()
        return result

    def _report(self, s: _State, path: str, result: ScanResult) -> None:
        loc = self.location(path)
        if s.external:
            result.add_issue(
                f"XML external entity or PMML_DTD: {s.external[0]}",
                severity=IssueSeverity.CRITICAL,
                location=loc,
                details={"external": s.external[:10]},
                why="A resolving parser reads the named file or URL into the document: local "
                "file disclosure and server-side requests.",
                rule=PMML_XXE,
            )
        expansion = s.expansion()
        if expansion > _MAX_EXPANSION:
            result.add_issue(
                f"XML entities expand to about {expansion} characters",
                severity=IssueSeverity.CRITICAL,
                location=loc,
                details={"entities": len(s.entities), "expanded_chars": expansion},
                why="An expanding parser allocates all of it: memory and CPU exhaustion on "
                "the machine that loads the model.",
                rule=PMML_ENTITY_BOMB,
            )
        elif s.doctype_name and not s.external:
            result.add_issue(
                f"XML document declares a PMML_DTD ({len(s.entities)} entities)",
                severity=IssueSeverity.WARNING,
                location=loc,
                details={"doctype": s.doctype_name, "entities": sorted(s.entities)[:20]},
                why="PMML never needs a PMML_DTD; entity declarations are the building blocks of "
                "XXE and expansion attacks against other parsers.",
                rule=PMML_DTD,
            )
        if s.stopped is not None:
            report_budget(result, loc, s.stopped)
        # every payload is judged (a pickle past the 10th went unscanned); 10 are listed
        for i, payload in enumerate(s.extension_payloads):
            if i < 10:
                result.add_issue(
                    f"PMML Extension holds {payload.kind}: {payload.snippet!r}",
                    severity=IssueSeverity.WARNING,
                    location=loc,
                    details={"kind": payload.kind, "snippet": payload.snippet},
                    why="Consumers that evaluate vendor extensions run this content.",
                    rule=PMML_EXTENSION_CODE,
                )
            if payload.kind == "pickle":
                shown = self.location(path, member=f"Extension[{i}]")
                result.merge(scan_nested_bytes(self.ctx, payload.data, shown, fmt=Format.PICKLE))
        if s.root and s.root != "PMML":
            result.metadata["format_details"] = {"root": s.root}
        if s.model_names:
            result.metadata["model_names"] = s.model_names[:20]
        if s.copyright:
            result.metadata["copyright"] = s.copyright


class _State:
    def __init__(self) -> None:
        self.doctype_name: str | None = None
        self.external: list[str] = []
        self.entities: dict[str, str] = {}
        self.body_refs: dict[str, int] = {}
        self.root: str | None = None
        self.ext_depth = 0
        self.ext_text: list[str] = []
        self.extension_payloads: list[Payload] = []
        self.model_names: list[str] = []
        self.copyright: str | None = None
        self.xinclude: set[str] = set()
        #: characters of Extension text produced by expanding entities (bombs are reported
        #: by size; past this the Extensions are not searched whole: MA9004)
        self.expanded = WorkBudget("PMML Extension entity expansion", 2 * _MAX_EXPANSION)
        self.stopped: BudgetExceeded | None = None

    def doctype(self, name: str, system_id: str | None, public_id: str | None, _s: int) -> None:
        self.doctype_name = name
        if system_id or public_id:
            self.external.append(f"DOCTYPE {name} {system_id or public_id}")

    def entity(
        self,
        name: str,
        is_param: int,
        value: str | None,
        _base: str | None,
        system_id: str | None,
        public_id: str | None,
        _notation: str | None,
    ) -> None:
        if system_id or public_id:
            kind = "parameter entity" if is_param else "entity"
            self.external.append(f"{kind} {name} -> {system_id or public_id}")
        elif value is not None:
            self.entities[name] = value

    def external_ref(self, *_args: Any) -> int:
        return 1

    def default(self, data: str) -> None:
        if data.startswith("&") and data.endswith(";"):
            name = data[1:-1]
            self.body_refs[name] = self.body_refs.get(name, 0) + 1
            if self.ext_depth:
                self.text(f"\x00{name}\x00")  # expanded when the Extension ends

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        if self.root is None:
            self.root = tag
        for key, value in attrs.items():
            if value == _XINCLUDE_NS and (key == "xmlns" or key.startswith("xmlns:")):
                self.xinclude.add(key[6:] + ":include" if ":" in key else "include")
        if tag in self.xinclude:
            self.external.append(f"XInclude {attrs.get('href', '?')}")
        if tag == "Extension" or self.ext_depth:
            self.ext_depth += 1
            for value in attrs.values():
                self.text(f"\n{value}\n")
        if tag in _MODEL_TAGS and attrs.get("modelName") and len(self.model_names) < 20:
            self.model_names.append(attrs["modelName"])
        elif tag == "Header" and attrs.get("copyright"):
            self.copyright = attrs["copyright"]

    def end(self, tag: str) -> None:
        if self.ext_depth:
            self.ext_depth -= 1
            if not self.ext_depth:
                text = "".join(self.ext_text)
                self.ext_text = []
                if "\x00" in text:
                    text = self.expand(text)
                for payload in find_payloads(text, urls=False):
                    self.extension_payloads.append(payload)

    def text(self, data: str) -> None:
        # all of it: past the first megabyte a payload went unread (`find_payloads` is linear)
        if self.ext_depth:
            self.ext_text.append(data)

    def expand(self, text: str) -> str:
        """`text` with its entity references replaced as PMML consumers' parsers do (expat,
        lxml and Java's SAX all expand internal entities), charged to `expanded`: a payload
        can sit in an entity value, or be split across several. Undeclared or recursive
        references stay as written; past the budget the expansion is cut (MA9004)."""
        out: list[str] = []
        # (pieces from re.split: text at even indexes, entity names at odd), next index, names
        # being expanded
        stack: list[tuple[list[str], int, frozenset[str]]] = [
            (_REF_MARK.split(text), 0, frozenset())
        ]
        try:
            while stack:
                pieces, i, seen = stack.pop()
                if i >= len(pieces):
                    continue
                stack.append((pieces, i + 1, seen))
                piece = pieces[i]
                value = self.entities.get(piece) if i % 2 else None
                if i % 2 == 0:
                    out.append(piece)
                elif value is None or piece in seen:
                    out.append(f"&{piece};")
                else:
                    self.expanded.charge(len(value) + len(seen) + 1)
                    stack.append((_ENTITY_REF.split(value), 0, seen | {piece}))
        except BudgetExceeded as exc:
            self.stopped = self.stopped or exc
        return "".join(out)

    def expansion(self) -> int:
        """Characters the body's entity references would expand to, computed, not performed."""
        sizes: dict[str, int] = {}

        def size(name: str, seen: frozenset[str]) -> int:
            if name in sizes:
                return sizes[name]
            value = self.entities.get(name)
            if value is None or name in seen:
                return len(name) + 2
            total = len(value)
            for ref in _ENTITY_REF.findall(value):
                total += size(ref, seen | {name})
                if total > 1 << 40:
                    break
            sizes[name] = total
            return total

        total = 0
        try:
            for name, count in self.body_refs.items():
                total += count * size(name, frozenset())
            for name in self.entities:
                total = max(total, size(name, frozenset()))
        except RecursionError:
            return 1 << 40
        return total
