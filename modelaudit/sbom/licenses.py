"""Find the license and copyright holders a model declares, without trusting any one place.

Models state their license in several places: the Hugging Face model card front matter
(`license:` in README.md), a LICENSE file beside the weights, and the weights' own metadata
(GGUF `general.license`, safetensors `__metadata__`, which the scanners put in
`FileReport.metadata`). Everything here reads only small text files, bounded in size.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from ..budget import read_capped

_MAX_TEXT = 64 * 1024
_CARD_NAMES = ("README.md", "README.MD", "readme.md", "MODEL_CARD.md", "ModelCard.md")
_LICENSE_NAMES = (
    "LICENSE",
    "LICENSE.txt",
    "LICENSE.md",
    "LICENCE",
    "LICENCE.txt",
    "LICENCE.md",
    "COPYING",
    "COPYING.txt",
    "LICENSE.MIT",
    "LICENSE-APACHE",
    "LICENSE-MIT",
)
#: Distinctive phrases of common license texts, most specific first.
_TEXT_SIGNATURES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.IGNORECASE | re.DOTALL), spdx)
    for p, spdx in (
        (r"GNU AFFERO GENERAL PUBLIC LICENSE\s+Version 3", "AGPL-3.0-only"),
        (r"GNU LESSER GENERAL PUBLIC LICENSE\s+Version 3", "LGPL-3.0-only"),
        (r"GNU LESSER GENERAL PUBLIC LICENSE\s+Version 2\.1", "LGPL-2.1-only"),
        (r"GNU GENERAL PUBLIC LICENSE\s+Version 3", "GPL-3.0-only"),
        (r"GNU GENERAL PUBLIC LICENSE\s+Version 2", "GPL-2.0-only"),
        (r"Apache License,?\s+Version 2\.0", "Apache-2.0"),
        (r"Mozilla Public License,?\s+(Version|v\.?)\s*2\.0", "MPL-2.0"),
        (r"Attribution-NonCommercial-ShareAlike 4\.0 International", "CC-BY-NC-SA-4.0"),
        (r"Attribution-NonCommercial 4\.0 International", "CC-BY-NC-4.0"),
        (r"Attribution-ShareAlike 4\.0 International", "CC-BY-SA-4.0"),
        (r"Attribution 4\.0 International", "CC-BY-4.0"),
        (r"CC0 1\.0 Universal", "CC0-1.0"),
        (r"Boost Software License", "BSL-1.0"),
        (r"This is free and unencumbered software released into the public domain", "Unlicense"),
        (r"Permission is hereby granted, free of charge, to any person", "MIT"),
        (r"Neither the name of .{0,200}? nor the names of", "BSD-3-Clause"),
        (r"Redistribution and use in source and binary forms", "BSD-2-Clause"),
        (r"Permission to use, copy, modify, and/or distribute this software", "ISC"),
        (r"LLAMA 2 COMMUNITY LICENSE", "llama2"),
        (r"META LLAMA 3 COMMUNITY LICENSE", "llama3"),
        (r"Llama 3\.1 Community License", "llama3.1"),
        (r"Llama 3\.2 Community License", "llama3.2"),
        (r"Gemma Terms of Use", "gemma"),
        (r"CreativeML Open RAIL\+\+-M", "openrail++"),
        (r"CreativeML Open RAIL-M", "creativeml-openrail-m"),
        (r"Open RAIL", "openrail"),
    )
)
_COPYRIGHT = re.compile(
    r"^[ \t#*/-]*(?:copyright\b|\(c\)|©)(?P<rest>.*)$", re.IGNORECASE | re.MULTILINE
)
#: A real notice names a year or the (c) sign; license prose that says "copyright" does not.
_NOTICE = re.compile(r"\b(?:19|20)\d\d\b|\(c\)|©", re.IGNORECASE)
_MARK = re.compile(r"^\s*(?:copyright\b|\(c\)|©)\s*", re.IGNORECASE)
_TEMPLATE_HOLDER = re.compile(r"[\[{<]|yyyy|name of copyright|copyright (notice|holder|owner)s?")


@dataclass
class LicenseInfo:
    """What one place (or several merged) says about a file's license."""

    licenses: list[str] = field(default_factory=list)
    copyrights: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def add(self, other: LicenseInfo) -> None:
        for value in other.licenses:
            if value.lower() not in (v.lower() for v in self.licenses):
                self.licenses.append(value)
        for holder in other.copyrights:
            if holder not in self.copyrights:
                self.copyrights.append(holder)
        for source in other.sources:
            if source not in self.sources:
                self.sources.append(source)

    def __bool__(self) -> bool:
        return bool(self.licenses or self.copyrights)


def _read_text(path: str) -> str | None:
    try:
        data = read_capped(path, _MAX_TEXT)[:_MAX_TEXT]
    except OSError:
        return None
    return data.decode("utf-8", "replace")


def _scalar(value: str) -> str:
    value = value.split(" #", 1)[0].strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return value.strip()


def front_matter(text: str) -> dict[str, list[str]]:
    """Top-level scalar and list keys of a model card's YAML front matter.

    A deliberately small reader: model card headers are flat, and parsing them with a YAML
    library would mean trusting arbitrary YAML from the scanned repository.
    """
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        return {}
    out: dict[str, list[str]] = {}
    key: str | None = None
    for line in lines[1:]:
        if line.strip() in ("---", "..."):
            break
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0] not in " \t-" and ":" in line:
            key, _, value = line.partition(":")
            key = key.strip()
            value = value.strip()
            out[key] = []
            if value.startswith("[") and value.endswith("]"):
                out[key] = [_scalar(v) for v in value[1:-1].split(",") if _scalar(v)]
            elif value and value not in ("|", ">"):
                out[key] = [_scalar(value)]
        elif key is not None and line.lstrip().startswith("- "):
            item = _scalar(line.lstrip()[2:])
            if item:
                out[key].append(item)
    return out


def from_model_card(path: str) -> LicenseInfo:
    text = _read_text(path)
    info = LicenseInfo()
    if not text:
        return info
    meta = front_matter(text)
    names = meta.get("license", [])
    custom = meta.get("license_name", [])
    for name in names:
        if name.lower() == "other" and custom:
            info.licenses.extend(custom)
        else:
            info.licenses.append(name)
    if info.licenses:
        info.sources.append(os.path.basename(path))
    return info


def classify_license_text(text: str) -> str | None:
    head = text[:_MAX_TEXT]
    for pattern, spdx in _TEXT_SIGNATURES:
        if pattern.search(head):
            return spdx
    return None


def copyright_holders(text: str) -> list[str]:
    """`Copyright (c) 2024 Acme Corp` lines, minus license-template placeholders."""
    found: list[str] = []
    for m in _COPYRIGHT.finditer(text[:_MAX_TEXT]):
        line = m.group(0).strip(" \t#*/-")
        if not _NOTICE.search(line) or _TEMPLATE_HOLDER.search(line.lower()):
            continue
        rest = line
        while _MARK.match(rest):
            rest = _MARK.sub("", rest, count=1)
        rest = rest.strip().rstrip(".")
        if not rest or not (rest[0].isalnum()):
            continue
        statement = f"Copyright (c) {rest}"
        if statement not in found:
            found.append(statement)
    return found[:10]


def from_license_file(path: str) -> LicenseInfo:
    text = _read_text(path)
    info = LicenseInfo()
    if not text:
        return info
    spdx = classify_license_text(text)
    if spdx:
        info.licenses.append(spdx)
    info.copyrights.extend(copyright_holders(text))
    if info:
        info.sources.append(os.path.basename(path))
    return info


def from_metadata(metadata: dict[str, object]) -> LicenseInfo:
    """What the scanners read from the file itself (GGUF, safetensors, config.json)."""
    info = LicenseInfo()
    raw = metadata.get("license")
    values = raw if isinstance(raw, list | tuple) else [raw]
    for value in values:
        if isinstance(value, str) and value.strip():
            text = value.strip()
            if len(text) > 200:
                spdx = classify_license_text(text)
                if spdx:
                    info.licenses.append(spdx)
                info.copyrights.extend(copyright_holders(text))
            else:
                info.licenses.append(text)
    holder = metadata.get("copyright")
    holders = holder if isinstance(holder, list | tuple) else [holder]
    for h in holders:
        if isinstance(h, str) and h.strip():
            text = h.strip()
            if not text.lower().startswith(("copyright", "(c)", "©")):
                text = f"Copyright {text}"
            info.copyrights.append(text)
    if info:
        info.sources.append("file metadata")
    return info


class DirectoryLicenses:
    """License facts per directory, read once however many model files share a folder."""

    def __init__(self) -> None:
        self._cache: dict[str, LicenseInfo] = {}

    def of_directory(self, folder: str) -> LicenseInfo:
        if folder in self._cache:
            return self._cache[folder]
        info = LicenseInfo()
        try:
            names = set(os.listdir(folder))
        except OSError:
            names = set()
        for name in _CARD_NAMES:
            if name in names:
                info.add(from_model_card(os.path.join(folder, name)))
                break
        for name in _LICENSE_NAMES:
            if name in names:
                info.add(from_license_file(os.path.join(folder, name)))
        self._cache[folder] = info
        return info

    def for_file(self, path: str, roots: list[str]) -> LicenseInfo:
        """The nearest folder, between the file and the scan root it came from, that says
        anything; a repository's README covers weights in its subfolders."""
        folder = os.path.dirname(os.path.abspath(path))
        stop = _containing_root(folder, roots)
        while True:
            info = self.of_directory(folder)
            if info:
                return info
            if stop is None or folder == stop:
                return LicenseInfo()
            parent = os.path.dirname(folder)
            if parent == folder:
                return LicenseInfo()
            folder = parent


def _containing_root(folder: str, roots: list[str]) -> str | None:
    best: str | None = None
    for root in roots:
        if "://" in root:
            continue
        absolute = os.path.abspath(root)
        if not os.path.isdir(absolute):
            absolute = os.path.dirname(absolute)
        if (folder == absolute or folder.startswith(absolute.rstrip(os.sep) + os.sep)) and (
            best is None or len(absolute) > len(best)
        ):
            best = absolute
    return best
