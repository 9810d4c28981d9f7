"""A CycloneDX 1.6 SBOM of the scanned files, built with cyclonedx-python-lib.

One component per scanned file. The library does not model `modelCard` yet, so model cards
are added to the serialised JSON afterwards, in the shape the 1.6 schema defines; the result
still validates against that schema (the tests check it).
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from typing import Any

import orjson

from .._version import __version__
from ..findings import FileStatus, IssueSeverity
from ..formats import Format
from ..report import FileReport, ScanReport
from ..reporters.safe import json_safe
from ..reporters.scrub import redact_text, redact_uri
from .licenses import DirectoryLicenses, LicenseInfo, from_metadata

MODEL_FORMATS = frozenset(
    {
        "pickle",
        "pytorch_zip",
        "keras_zip",
        "hdf5",
        "safetensors",
        "gguf",
        "ggml",
        "tflite",
        "torchscript_flatbuffer",
        "onnx",
        "tf_protobuf",
        "pmml",
        "msgpack",
        "joblib",
        "dill",
        "keras",
        "tensorflow",
        "torch",
    }
)
DATA_FORMATS = frozenset({"numpy", "npz", "csv", "parquet", "arrow", "tfrecord", "jsonl"})
_DATA_EXTENSIONS = (
    ".csv",
    ".tsv",
    ".parquet",
    ".arrow",
    ".feather",
    ".jsonl",
    ".tfrecord",
    ".tfrecords",
    ".avro",
    ".orc",
    ".npy",
    ".npz",
)
_MODEL_EXTENSIONS = (".bin", ".ckpt", ".pt", ".pth", ".mar", ".nemo", ".model", ".mlmodel")
#: Extra digests are computed only for files this small; big weights keep their sha256.
_CHEAP_HASH_LIMIT = 32 * 1024 * 1024
_PREFIX = "modelaudit:"
#: Files scanned but not part of the model: a LICENSE is read for its license, not listed.
_NOT_COMPONENTS = frozenset({Format.TEXT, Format.EMPTY})
_CARD_KEYS = ("task", "model_type", "architectures")


def component_type(fr: FileReport) -> str:
    fmt = (fr.format or "").lower()
    lower = fr.path.lower().split("?", 1)[0]
    if fmt in DATA_FORMATS or lower.endswith(_DATA_EXTENSIONS):
        return "data"
    if fmt in MODEL_FORMATS or lower.endswith(_MODEL_EXTENSIONS):
        return "machine-learning-model"
    return "file"


def risk_score(fr: FileReport) -> float:
    """0.0 to 10.0 on the CVSS-like scale SARIF consumers use for security-severity.

    CRITICAL findings score 9.0 and up, WARNING 4.0 to 6.9, a file that could not be fully
    scanned at least 4.0 (unverified is never low risk), INFO-only or clean 0.0.
    """
    crit = sum(1 for i in fr.issues if i.severity is IssueSeverity.CRITICAL)
    warn = sum(1 for i in fr.issues if i.severity is IssueSeverity.WARNING)
    if crit:
        return round(min(10.0, 9.0 + 0.2 * (crit - 1)), 1)
    if warn:
        return round(min(6.9, 5.0 + 0.3 * (warn - 1)), 1)
    if fr.status in (FileStatus.INCONCLUSIVE, FileStatus.ERROR):
        return 4.0
    return 0.0


def risk_level(score: float) -> str:
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    if score > 0.0:
        return "low"
    return "none"


def _cheap_hashes(fr: FileReport) -> dict[str, str]:
    """SHA-1 and SHA-512 of small local files, only if the file is still the one scanned."""
    if fr.remote or not fr.sha256 or fr.size is None or fr.size > _CHEAP_HASH_LIMIT:
        return {}
    digests = {name: hashlib.new(name) for name in ("sha256", "sha1", "sha512")}
    try:
        with open(fr.path, "rb") as f:
            while chunk := f.read(1 << 20):
                for d in digests.values():
                    d.update(chunk)
    except OSError:
        return {}
    if digests["sha256"].hexdigest() != fr.sha256:
        return {}
    return {"SHA-1": digests["sha1"].hexdigest(), "SHA-512": digests["sha512"].hexdigest()}


def _display_name(fr: FileReport, cwd: str) -> str:
    if fr.remote or "://" in fr.path:
        return redact_uri(fr.path)
    absolute = os.path.abspath(fr.path)
    rel = os.path.relpath(absolute, cwd)
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        return absolute.replace(os.sep, "/")
    return rel.replace(os.sep, "/")


def _licenses(info: LicenseInfo) -> list[Any]:
    try:
        from cyclonedx.contrib.license.factories import LicenseFactory
    except ImportError:  # cyclonedx-python-lib before 11
        from cyclonedx.factory.license import LicenseFactory  # type: ignore[no-redef]
    from cyclonedx.model.license import (
        DisjunctiveLicense,
        LicenseAcknowledgement,
        LicenseExpression,
    )

    factory = LicenseFactory()
    made: list[Any] = []
    for value in info.licenses:
        try:
            lic = factory.make_from_string(
                value, license_acknowledgement=LicenseAcknowledgement.DECLARED
            )
        except Exception:
            lic = DisjunctiveLicense(name=value, acknowledgement=LicenseAcknowledgement.DECLARED)
        made.append(lic)
    if len(made) > 1:
        # The schema allows one expression alone or a list of single licenses, not a mix.
        made = [
            DisjunctiveLicense(name=m.value, acknowledgement=LicenseAcknowledgement.DECLARED)
            if isinstance(m, LicenseExpression)
            else m
            for m in made
        ]
    return made


def _model_card(meta: dict[str, Any]) -> dict[str, Any] | None:
    params: dict[str, Any] = {}
    task = meta.get("task")
    if isinstance(task, str) and task:
        params["task"] = task
    family = meta.get("model_type")
    if isinstance(family, str) and family:
        params["architectureFamily"] = family
    archs = meta.get("architectures")
    if isinstance(archs, list | tuple) and archs:
        params["modelArchitecture"] = ", ".join(str(a) for a in archs)
    elif isinstance(archs, str) and archs:
        params["modelArchitecture"] = archs
    if not params:
        return None
    return {"modelParameters": params}


def _folder(fr: FileReport) -> str:
    if fr.remote or "://" in fr.path:
        return fr.path.split("?", 1)[0].rsplit("/", 1)[0]
    return os.path.dirname(os.path.abspath(fr.path))


def _card_metadata(fr: FileReport, by_folder: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The file's own architecture/task facts, else those of the nearest config.json above."""
    own: dict[str, Any] = {k: fr.metadata[k] for k in _CARD_KEYS if k in fr.metadata}
    if own:
        return own
    folder = _folder(fr)
    while True:
        if folder in by_folder:
            return by_folder[folder]
        parent = folder.rsplit("/", 1)[0] if "://" in folder else os.path.dirname(folder)
        if parent == folder or not parent or parent.endswith(":/"):
            return {}
        folder = parent


def _folder_metadata(files: list[FileReport]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for fr in files:
        facts = {k: fr.metadata[k] for k in _CARD_KEYS if k in fr.metadata}
        known = out.setdefault(_folder(fr), {}) if facts else {}
        for key, value in facts.items():
            known.setdefault(key, value)
    return out


def build_bom(report: ScanReport, cwd: str | None = None) -> dict[str, Any]:
    """The SBOM as a JSON-ready dict."""
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6

    cwd = os.path.abspath(cwd or os.getcwd())
    bom = Bom()
    bom.metadata.timestamp = datetime.fromtimestamp(report.end_time or report.start_time, UTC)
    bom.metadata.tools.components.add(
        Component(
            type=ComponentType.APPLICATION,
            name="modelaudit",
            version=__version__,
            description="Static security scanner for ML model files",
        )
    )
    bom.metadata.properties.add(Property(name=_PREFIX + "exit_code", value=str(report.exit_code)))
    for target in report.targets:
        bom.metadata.properties.add(Property(name=_PREFIX + "target", value=redact_text(target)))

    folders = DirectoryLicenses()
    roots = list(report.targets)
    scanned = [
        fr
        for fr in report.files
        if fr.status is not FileStatus.SKIPPED and fr.format not in _NOT_COMPONENTS
    ]
    by_folder = _folder_metadata(scanned)
    cards: dict[str, dict[str, Any]] = {}
    used_refs: set[str] = set()
    for fr in scanned:
        name = _display_name(fr, cwd)
        ref = f"file:{name}"
        n = 1
        while ref in used_refs:
            n += 1
            ref = f"file:{name}#{n}"
        used_refs.add(ref)

        hashes = []
        if fr.sha256:
            hashes.append(HashType(alg=HashAlgorithm.SHA_256, content=fr.sha256))
            for alg, digest in _cheap_hashes(fr).items():
                hashes.append(HashType(alg=HashAlgorithm(alg), content=digest))
        for alg, cdx in (("sha1", HashAlgorithm.SHA_1), ("md5", HashAlgorithm.MD5)):
            if fr.digests.get(alg) and all(h.alg is not cdx for h in hashes):
                hashes.append(HashType(alg=cdx, content=fr.digests[alg]))

        info = from_metadata(fr.metadata)
        if not (fr.remote or "://" in fr.path):
            info.add(folders.for_file(fr.path, roots))

        score = risk_score(fr)
        props = [
            Property(name=_PREFIX + "format", value=fr.format or "unknown"),
            Property(name=_PREFIX + "status", value=fr.status.value),
            Property(name=_PREFIX + "risk_score", value=f"{score:.1f}"),
            Property(name=_PREFIX + "risk_level", value=risk_level(score)),
            Property(name=_PREFIX + "finding_count", value=str(len(fr.issues))),
        ]
        if fr.size is not None:
            props.append(Property(name=_PREFIX + "size", value=str(fr.size)))
        if fr.status_reason:
            props.append(
                Property(name=_PREFIX + "status_reason", value=redact_text(fr.status_reason))
            )
        for rule_id in sorted({i.rule for i in fr.issues if i.rule}):
            props.append(Property(name=_PREFIX + "rule_id", value=rule_id))
        for source in info.sources:
            props.append(Property(name=_PREFIX + "license_source", value=source))
        if fr.digest_source:
            props.append(Property(name=_PREFIX + "hash_source", value=fr.digest_source))

        ctype = component_type(fr)
        component = Component(
            type=ComponentType(ctype),
            name=name,
            bom_ref=ref,
            hashes=hashes,
            licenses=_licenses(info),
            copyright="\n".join(info.copyrights) or None,
            properties=props,
        )
        bom.components.add(component)
        if ctype == "machine-learning-model":
            card = _model_card(_card_metadata(fr, by_folder))
            if card:
                cards[ref] = card

    doc = _loads(JsonV1Dot6(bom).output_as_string())
    for comp in doc.get("components", []):
        card = cards.get(comp.get("bom-ref", ""))
        if card:
            comp["modelCard"] = card
    return doc


def _loads(text: str) -> dict[str, Any]:
    """The library's JSON as a dict; names with undecodable bytes or lone surrogates (which
    it writes as `\\udcff` escapes, valid JSON that orjson refuses) become text escapes."""
    try:
        doc: dict[str, Any] = orjson.loads(text)
    except orjson.JSONDecodeError:
        doc = json_safe(json.loads(text))
    return doc


def build_sbom(report: ScanReport, cwd: str | None = None) -> bytes:
    """The SBOM serialised as indented JSON, with configured credentials masked."""
    from ..redact import report_redactor

    doc = build_bom(report, cwd)
    try:
        data = orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"
    except orjson.JSONEncodeError:
        data = orjson.dumps(json_safe(doc), option=orjson.OPT_INDENT_2) + b"\n"
    return report_redactor(report).bytes(data)
