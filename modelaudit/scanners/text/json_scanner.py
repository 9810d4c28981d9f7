"""JSON model configs: remote-code references, chat templates, config-driven imports, names.

Hugging Face loaders read `config.json` and `tokenizer_config.json`: `auto_map` (and
`custom_pipelines`) make `trust_remote_code=True` import Python shipped with the model, and
`chat_template` is rendered with Jinja on every prompt. Hydra-style `_target_` keys make a
loader import and call any dotted name. Model names and architectures go into the metadata
for the blacklist and the SBOM.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Callable
from typing import Any, Final

from ...budget import BudgetExceeded, WorkBudget, read_capped, report_budget
from ...formats import Format
from ...formats.json_values import MAX_DOCUMENT_VALUES, charge_json_values
from ...formats.jsonc import strip_jsonc
from ...rules.text import (
    CONFIG_LOADER_ARGS,
    CONFIG_RESOLVER,
    CONFIG_TARGET_REMOTE_CODE,
    JSON_CONFIG_TARGET,
    JSON_DANGEROUS_TARGET,
    JSON_EXCESSIVE_NESTING,
    JSON_REMOTE_CODE,
)
from ..base import BaseScanner, IssueSeverity, ScanResult
from ..nested_bytes import scan_nested_bytes
from ..pickle.callable_policy import is_dangerous_callable, is_dangerous_import
from .diffusers_index import is_model_index, report_model_index
from .instantiation import (
    EVAL_KEYS,
    FIDDLE_PYREF,
    INSTANTIATION_KEYS,
    REMOTE_CODE_KEY,
    REMOTE_CODE_TARGETS,
    REPOSITORY_KEYS,
    code_evidence,
    enables_remote_code,
    evaluated_references,
    fiddle_pyref,
    interpolation_budget,
    interpolations,
    judge_resolver,
    splice,
)
from .jinja_template import report_template
from .loader_args import ARGUMENT_KEYS, LoaderArgs, judge_loader
from .python_code import DESCRIPTIONS
from .python_code import analyse as analyse_python
from .python_scanner import MAX_PYTHON_BYTES, severity_of
from .python_scanner import parse as parse_python
from .skops_schema import is_skops_schema, report_skops
from .zarr_codecs import METADATA_NAMES as ZARR_METADATA
from .zarr_codecs import report_zarr_codecs

MAX_JSON_BYTES: Final = 64 * 1024 * 1024
#: The key stable-baselines3 gives a cloudpickled value in its model zip's `data` JSON.
SB3_SERIALIZED: Final = ":serialized:"
SB3_SERIALIZED_RAW: Final = b'":serialized:"'
_HOOK_KEYS: Final = frozenset(INSTANTIATION_KEYS) | EVAL_KEYS
#: What the object hook looks for, as bytes: a small document holding none of them (and no
#: escape that could spell one) is parsed by the shared decoder, without the hook.
_HOOK_NEEDLES: Final = tuple(
    k.encode() for k in sorted(_HOOK_KEYS | {"chat_template", FIDDLE_PYREF})
)
#: The same needles as one pattern: in a small document one search finds any of them several
#: times faster than a search per needle (`bytes.find` wins past a kilobyte or so).
_HOOK_NEEDLE_RE: Final = re.compile(b"|".join(re.escape(n) for n in _HOOK_NEEDLES))
_NEEDLE_RE_MAX: Final = 1024
_PLAIN_PARSE_MAX: Final = 64 * 1024
#: Characters one file's spliced expressions may add up to: each splices its values anew,
#: so one long value referenced by many expressions (or many times) is built each time.
SPLICE_BUDGET: Final = 64 << 20
#: Every raw spelling of a decoded "${": "$" or "\u0024", then "{" or "\u007b"/"\u007B".
_INTERPOLATION_RAW: Final = re.compile(rb"(?:\$|\\u0024)(?:\{|\\u007[bB])")
#: Architecture-name suffixes transformers uses for each pipeline task.
_TASK_SUFFIXES: Final = (
    ("ForCausalLM", "text-generation"),
    ("LMHeadModel", "text-generation"),
    ("ForSequenceClassification", "text-classification"),
    ("ForTokenClassification", "token-classification"),
    ("ForQuestionAnswering", "question-answering"),
    ("ForMaskedLM", "fill-mask"),
    ("ForVision2Seq", "image-text-to-text"),
    ("ForImageTextToText", "image-text-to-text"),
    ("ForSeq2SeqLM", "text2text-generation"),
    ("ForTextToSpeech", "text-to-speech"),
    ("ForTextToWaveform", "text-to-speech"),
    ("ForConditionalGeneration", "text2text-generation"),
    ("ForSpeechSeq2Seq", "automatic-speech-recognition"),
    ("ForCTC", "automatic-speech-recognition"),
    ("ForImageClassification", "image-classification"),
    ("ForObjectDetection", "object-detection"),
    ("ForSemanticSegmentation", "image-segmentation"),
    ("ForAudioClassification", "audio-classification"),
    ("ForMultipleChoice", "multiple-choice"),
    ("Model", "feature-extraction"),
)

#: `...ForConditionalGeneration` families that are not text-to-text.
_SPEECH_PREFIXES: Final = ("Whisper", "Speech2Text", "SeamlessM4T", "Qwen2Audio")
_VISION_PREFIXES: Final = (
    "Llava",
    "Blip",
    "PaliGemma",
    "Idefics",
    "Qwen2VL",
    "Qwen2_5_VL",
    "Mllama",
    "Pix2Struct",
    "Florence",
    "Gemma3",
    "Mistral3",
    "Kosmos",
)


def _holds_hook_needle(raw: bytes) -> bool:
    if len(raw) <= _NEEDLE_RE_MAX:
        return _HOOK_NEEDLE_RE.search(raw) is not None
    return any(raw.find(needle) >= 0 for needle in _HOOK_NEEDLES)


class JsonScanner(BaseScanner):
    name = "json"
    description = "Hugging Face and other JSON configs: remote code, chat templates, _target_"
    supported_extensions = [".json", ".jinja"]
    formats = (Format.JSON,)

    def scan(self, path: str) -> ScanResult:
        result = self._create_result()
        whole = self.whole_file(path)
        size = len(whole) if whole is not None else self.file_size(path)
        if whole is not None:
            raw = whole
        else:
            raw = b"" if size > MAX_JSON_BYTES else read_capped(path, MAX_JSON_BYTES)
        if len(raw) > MAX_JSON_BYTES or size > MAX_JSON_BYTES:
            result.mark_inconclusive(
                f"JSON file of {max(size, len(raw))} bytes is too large to parse"
            )
            result.finish()
            return result
        result.bytes_scanned = len(raw)
        shown = self.display_path or path
        try:
            charge_json_values(raw, "JSON values", MAX_DOCUMENT_VALUES)
        except BudgetExceeded as exc:
            report_budget(result, self.location(path), exc)
            result.finish()
            return result
        if shown.lower().endswith(".jinja"):
            report_template(self, raw.decode("utf-8", "replace"), path, "chat template", result)
            result.finish()
            return result
        hooked: list[dict[str, Any]] = []
        encoding = json.detect_encoding(raw)
        if encoding not in ("utf-8", "utf-8-sig"):
            # json.loads(bytes) reads UTF-16 and UTF-32 too (skops reads schema.json so):
            # judge the text it would read, needles and all, as UTF-8
            try:
                raw = raw.decode(encoding, "surrogatepass").encode("utf-8", "surrogatepass")
            except UnicodeDecodeError as exc:
                result.mark_inconclusive(f"malformed: not valid JSON ({exc})")
                result.finish()
                return result
        # (`find`, not `in`: `in` first tries a bytes needle as an integer, and raises and
        # clears a TypeError each time)
        find = raw.find
        look_for_interpolation = find(b"${") >= 0 or (
            (find(b"\\u0024") >= 0 or find(b"\\u007") >= 0)
            and _INTERPOLATION_RAW.search(raw) is not None
        )
        plain = (
            len(raw) <= _PLAIN_PARSE_MAX
            and not look_for_interpolation
            and find(b"\\") < 0
            and not _holds_hook_needle(raw)
        )

        remote = _RemoteCode() if find(b"trust_remote_code") >= 0 else None

        def hook(obj: dict[str, Any]) -> dict[str, Any]:
            if (
                "chat_template" in obj
                or not _HOOK_KEYS.isdisjoint(obj)
                or obj.get("type") == FIDDLE_PYREF
            ):
                hooked.append(obj)
            if remote is not None:
                remote.see(obj)
            return obj

        try:
            text = raw.decode("utf-8-sig")
            try:
                doc = json.loads(text) if plain else json.loads(text, object_hook=hook)
            except ValueError as exc:
                if remote is not None:
                    remote.clear()
                doc = self._jsonc(text, hook, exc, path, result)
        except RecursionError:
            report_nesting(self, path, result)
            result.finish()
            return result
        except (UnicodeDecodeError, ValueError) as exc:
            result.mark_inconclusive(f"malformed: not valid JSON ({exc})")
            result.finish()
            return result
        if is_skops_schema(doc):
            report_skops(self, doc, path, result)
        elif isinstance(doc, dict):
            self._hf_config(doc, path, result)
            if find(SB3_SERIALIZED_RAW) >= 0:
                self._sb3_serialized(doc, path, result)
            if is_model_index(shown):
                report_model_index(self, doc, path, result)
            elif shown.replace("\\", "/").rsplit("/", 1)[-1] in ZARR_METADATA:
                report_zarr_codecs(self, doc, path, result)
            elif self.ctx.depth == 0 and shown.replace("\\", "/").endswith("MAR-INF/MANIFEST.json"):
                self._torchserve_folder(path, result)
        elif (
            isinstance(doc, list) and shown.replace("\\", "/").rsplit("/", 1)[-1] == "modules.json"
        ):
            self._sentence_transformers_modules(doc, path, result)
        for obj in hooked:
            if "chat_template" in obj:
                _templates(self, obj["chat_template"], path, "chat_template", result)
            for key, how in INSTANTIATION_KEYS.items():
                if isinstance(obj.get(key), str):
                    report_target(self, obj[key], path, key, result, how=how)
                    if key in REMOTE_CODE_TARGETS:
                        args = _loader_args(obj)
                        report_loader_args(self, obj[key], args, path, key, result, how=how)
            for key in EVAL_KEYS & obj.keys():
                report_eval_text(self, str(obj[key]), path, key, result)
            pyref = fiddle_pyref(obj)
            if pyref is not None and is_dangerous_import(*pyref):
                target = ".".join(pyref)
                report_target(self, target, path, "pyref", result, how="Fiddle pyref")
        for obj, key in remote.targets if remote is not None else ():
            how = INSTANTIATION_KEYS[key]
            repository = repository_of(obj)
            report_remote_code_target(self, obj[key], repository, path, key, result, how=how)
        spliced: list[tuple[str, str, str, list[str]]] = []
        budget = interpolation_budget()
        try:
            for key, value in _interpolated(doc) if look_for_interpolation else ():
                for resolver, argument in interpolations(value, budget):
                    report_resolver(self, resolver, argument, path, key, result)
                    names = evaluated_references(resolver, argument)
                    if names:
                        spliced.append((key, resolver, argument, names))
        except BudgetExceeded as exc:
            report_budget(result, self.location(path), exc)
        if spliced:
            values = values_under(doc, {n for *_, names in spliced for n in names})
            report_all_spliced(self, spliced, values, path, result)
        result.finish()
        return result

    def _sb3_serialized(self, doc: dict[str, Any], path: str, result: ScanResult) -> None:
        """stable-baselines3's `data` (the JSON inside its model zip): `json_to_data` runs
        `cloudpickle.loads(base64.b64decode(v[":serialized:"]))` on each top-level value that
        holds that key, so each is scanned as the pickle it is. b64decode there drops
        characters outside the alphabet; the same decode is used here."""
        for key, value in doc.items():
            if not isinstance(value, dict) or SB3_SERIALIZED not in value:
                continue
            encoded = value[SB3_SERIALIZED]
            if not isinstance(encoded, str):
                continue
            shown = self.location(path, member=f"{key}/{SB3_SERIALIZED}")
            try:
                data = base64.b64decode(encoded.encode("utf-8", "surrogatepass"))
            except (binascii.Error, ValueError) as exc:
                result.mark_inconclusive(f"{shown}: not base64 ({exc})")
                continue
            result.merge(scan_nested_bytes(self.ctx, data, shown, fmt=Format.PICKLE))

    def _jsonc(
        self,
        text: str,
        hook: Callable[[dict[str, Any]], dict[str, Any]],
        error: ValueError,
        path: str,
        result: ScanResult,
    ) -> Any:
        """JSON with comments: analysed like JSON. Strict loaders (transformers, json.load)
        refuse it, so nothing loads it as a model config; editors and tsc read it."""
        plain = strip_jsonc(text)
        if plain is None or plain == text:
            raise error
        doc = json.loads(plain, object_hook=hook)
        result.metadata["dialect"] = "jsonc"
        return doc

    def _torchserve_folder(self, path: str, result: ScanResult) -> None:
        """A TorchServe archive extracted to a folder (`--archive-format no-archive`): its
        handler is judged as in a `.mar` (a nested manifest's neighbours are not on disk)."""
        from ..containers.torchserve import folder_lookup, report_manifest

        read, has = folder_lookup(os.path.dirname(os.path.dirname(path)))
        report_manifest(read, has, self.location(path), result)

    def _hf_config(self, doc: dict[str, Any], path: str, result: ScanResult) -> None:
        for key in ("auto_map", "custom_pipelines"):
            value = doc.get(key)
            refs = sorted(set(_code_refs(value))) if value is not None else None
            if not refs:
                continue
            modules = sorted({r.rsplit(".", 1)[0] for r in refs})
            remote = sorted({r.split("--", 1)[0] for r in refs if "--" in r})
            where = f" from other repositories {remote}" if remote else ""
            code, runs = remote_code_behaviour(path, refs)
            details: dict[str, Any] = {"key": key, "references": refs[:50], "repositories": remote}
            if code:
                details["remote_code"] = code
            result.add_issue(
                f"Config '{key}' requires trust_remote_code: custom code in "
                f"{', '.join(m.split('--')[-1] + '.py' for m in modules)}{where}"
                + (f"; {runs}" if runs else ""),
                severity=IssueSeverity.CRITICAL if runs else IssueSeverity.WARNING,
                location=self.location(path),
                details=details,
                why="With trust_remote_code=True the loader imports these modules, so their "
                "authors run any code they like on the loading machine.",
                rule=JSON_REMOTE_CODE,
            )
        names: list[str] = []
        for key in ("_name_or_path", "model_type", "name_or_path", "base_model_name_or_path"):
            value = doc.get(key)
            if isinstance(value, str) and value and value not in names:
                names.append(value)
        if names:
            result.metadata["model_names"] = names
        if isinstance(doc.get("model_type"), str):
            result.metadata["model_type"] = doc["model_type"]
        archs = doc.get("architectures")
        if isinstance(archs, list) and all(isinstance(a, str) for a in archs) and archs:
            result.metadata["architectures"] = archs
            task = _task(archs, doc)
            if task:
                result.metadata["task"] = task
        if isinstance(doc.get("license"), str):
            result.metadata["license"] = doc["license"]

    def _sentence_transformers_modules(self, doc: list[Any], path: str, result: ScanResult) -> None:
        """sentence-transformers imports each module's `type` and calls its `load`."""
        for entry in doc:
            target = entry.get("type") if isinstance(entry, dict) else None
            if not isinstance(target, str) or target.startswith("sentence_transformers."):
                continue
            if is_dangerous_callable(target):
                report_target(self, target, path, "modules.json", result, how="module type")
                continue
            result.add_issue(
                f"sentence-transformers module type '{target}' is custom code",
                severity=IssueSeverity.WARNING,
                location=self.location(path),
                details={"type": target},
                why="Loading the model imports this class and calls its load(); code outside "
                "sentence_transformers runs on the loading machine.",
                rule=JSON_REMOTE_CODE,
            )


class _RemoteCode:
    """Instantiated objects that receive trust_remote_code=True, found while the document is
    parsed: the object hook sees children before parents, so each object is marked when it
    sets the flag or holds a marked child (directly or in a list), and a marked object naming
    a callable is reported instead of passing the mark up. Each value is looked at once by its
    parent: linear in the document."""

    def __init__(self) -> None:
        self.marked: set[int] = set()
        self.targets: list[tuple[dict[str, Any], str]] = []

    def clear(self) -> None:
        self.marked.clear()
        self.targets.clear()

    def see(self, obj: dict[str, Any]) -> None:
        on = REMOTE_CODE_KEY in obj and enables_remote_code(obj[REMOTE_CODE_KEY], plain=False)
        if not on and self.marked:
            marked = self.marked
            for value in obj.values():
                if isinstance(value, dict):
                    on = id(value) in marked
                elif isinstance(value, list):
                    on = any(isinstance(v, dict) and id(v) in marked for v in value)
                if on:
                    break
        if not on:
            return
        key = next((k for k in REMOTE_CODE_TARGETS if isinstance(obj.get(k), str)), None)
        if key is None:
            self.marked.add(id(obj))
        else:
            self.targets.append((obj, key))


def remote_code_behaviour(path: str, refs: list[str]) -> tuple[dict[str, Any], str]:
    """What the local `module.py` files beside a config do for the classes it names.

    Returns per-module behaviours and, when a named class reaches code execution at import
    or load time, a short sentence saying so (the config finding then becomes CRITICAL).
    """
    folder = os.path.dirname(path)
    wanted: dict[str, set[str]] = {}
    for ref in refs:
        if "--" in ref or ref.count(".") != 1:
            continue
        module, cls = ref.split(".")
        wanted.setdefault(module, set()).add(cls)
    out: dict[str, Any] = {}
    runs: list[str] = []
    for module, classes in sorted(wanted.items()):
        file = os.path.join(folder, f"{module}.py")
        try:
            source = read_capped(file, MAX_PYTHON_BYTES)
            if len(source) > MAX_PYTHON_BYTES:
                continue
            tree, _ = parse_python(source)
        except OSError:
            continue
        if tree is None:
            continue
        analysis = analyse_python(tree, frozenset(classes))
        for cls in sorted(classes):
            found = analysis.of_class(cls)
            out[f"{module}.{cls}"] = [
                f"{b.kind}: {b.name} (line {b.line}, {b.scope}, {b.when})" for b in found[:20]
            ]
            bad = sorted({b.kind for b in found if severity_of(b) is IssueSeverity.CRITICAL})
            if bad:
                runs.append(f"{module}.{cls} {' and '.join(DESCRIPTIONS[k] for k in bad)}")
    sentence = ("loading " + "; ".join(runs) + " when the model loads") if runs else ""
    return out, sentence


def report_nesting(scanner: BaseScanner, path: str, result: ScanResult) -> None:
    result.add_issue(
        "Document nested too deeply to parse",
        severity=IssueSeverity.WARNING,
        location=scanner.location(path),
        why="Every parser recursing into it exhausts its stack or time: a denial of service "
        "on the tools that read the file.",
        rule=JSON_EXCESSIVE_NESTING,
    )
    result.mark_inconclusive("malformed: nesting too deep to analyse")


def _templates(scanner: BaseScanner, value: Any, path: str, key: str, result: ScanResult) -> None:
    """A template, a list of {name, template} (how transformers saves named templates), or
    a {name: template} dict, which transformers keeps as it is and picks from by name
    (`tool_use` when tools are passed, else `default`)."""
    if isinstance(value, str):
        report_template(scanner, value, path, key, result)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and isinstance(item.get("template"), str):
                label = f"{key}[{item.get('name', '?')}]"
                report_template(scanner, item["template"], path, label, result)
    elif isinstance(value, dict):
        for name, template in value.items():
            if isinstance(template, str):
                report_template(scanner, template, path, f"{key}[{name}]", result)


def report_target(
    scanner: BaseScanner, target: str, path: str, key: str, result: ScanResult, how: str = ""
) -> None:
    """A dotted callable that instantiation would import and call."""
    how = how or "_target_"
    if is_dangerous_callable(target):
        result.add_issue(
            f"Config {how} '{target}' at {key} calls a dangerous function",
            severity=IssueSeverity.CRITICAL,
            location=scanner.location(path),
            details={"key": key, "target": target},
            why="Instantiating the config imports and calls this function with arguments from "
            "the file: command execution or arbitrary code on the loading machine.",
            rule=JSON_DANGEROUS_TARGET,
        )
    else:
        result.add_issue(
            f"Config {how} '{target}' at {key} is instantiated on load",
            severity=IssueSeverity.INFO,
            location=scanner.location(path),
            details={"key": key, "target": target},
            rule=JSON_CONFIG_TARGET,
        )


def report_loader_args(
    scanner: BaseScanner,
    target: str,
    args: LoaderArgs,
    path: str,
    key: str,
    result: ScanResult,
    how: str = "",
) -> None:
    """A loader told to fetch its model from another machine or to drop its guard."""
    verdict = judge_loader(target, args)
    if verdict is None:
        return
    severity, what = verdict
    remote = args.remote[1] if args.remote else None
    result.add_issue(
        f"Config {how or '_target_'} '{target}' at {key} {what}",
        severity=severity,
        location=scanner.location(path),
        details={"key": key, "target": target, "source": remote, "guards_off": args.guards_off},
        why="Instantiating the config runs this loader on a file nobody scanned, chosen by "
        "whoever serves that address when it runs."
        if remote
        else "Instantiating the config runs this loader without the guard that keeps it from "
        "running code a pickle or a Keras lambda carries.",
        rule=CONFIG_LOADER_ARGS,
    )


def _loader_args(obj: dict[str, Any]) -> LoaderArgs:
    """The scalar arguments beside an instantiation key, `_args_` and `init_args` included."""
    args = LoaderArgs()
    for name, value in obj.items():
        if isinstance(value, list) and name in ARGUMENT_KEYS:
            for item in value:
                if not isinstance(item, dict | list):
                    args.see(None, item, plain=False)
        elif isinstance(value, dict) and name in ARGUMENT_KEYS:
            for inner, item in value.items():
                if not isinstance(item, dict | list):
                    args.see(inner, item, plain=False)
        elif not isinstance(value, dict | list):
            args.see(name, value, plain=False)
    return args


def report_remote_code_target(
    scanner: BaseScanner,
    target: str,
    repository: str | None,
    path: str,
    key: str,
    result: ScanResult,
    how: str = "",
) -> None:
    """An instantiated callable that receives trust_remote_code=True (itself or through the
    arguments it is built with)."""
    where = f" loading '{repository}'" if repository else ""
    result.add_issue(
        f"Config {how or '_target_'} '{target}' at {key} is instantiated with "
        f"trust_remote_code: true{where}",
        severity=IssueSeverity.WARNING,
        location=scanner.location(path),
        details={"key": key, "target": target, "repository": repository},
        why="Instantiating the config passes trust_remote_code=True on, so the loader imports "
        "and runs whatever Python the repository it downloads ships.",
        rule=CONFIG_TARGET_REMOTE_CODE,
    )


def repository_of(obj: dict[str, Any]) -> str | None:
    """The repository an instantiated loader is told to read, when the config says."""
    for key in REPOSITORY_KEYS:
        value = obj.get(key)
        if isinstance(value, str) and value:
            return value[:200]
    return None


def report_resolver(
    scanner: BaseScanner, resolver: str, argument: str, path: str, key: str, result: ScanResult
) -> None:
    """An OmegaConf `${resolver:argument}` that evaluates or imports (see instantiation)."""
    verdict = judge_resolver(resolver, argument)
    if verdict is None:
        return
    dangerous, what = verdict
    shown = argument if len(argument) <= 120 else argument[:117] + "..."
    result.add_issue(
        f"Config interpolation ${{{resolver}:...}} at {key} {what}",
        severity=IssueSeverity.CRITICAL if dangerous else IssueSeverity.INFO,
        location=scanner.location(path),
        details={"key": key, "resolver": resolver, "argument": shown},
        why="Resolving the config runs the resolver the loading program registered under "
        "this name on text from the file."
        if dangerous
        else None,
        rule=JSON_DANGEROUS_TARGET if dangerous else CONFIG_RESOLVER,
    )


class SplicedValues:
    """The string values stored under the key names evaluating interpolations splice in,
    with what each name's values name as code (computed once per name)."""

    def __init__(self, values: dict[str, list[str]]) -> None:
        self.values = values
        # (an aliased value is the same string each time it is met: judged once)
        self.evidence = {
            name: code_evidence("\n".join(dict.fromkeys(vs))) for name, vs in values.items()
        }


def report_all_spliced(
    scanner: BaseScanner,
    spliced: list[tuple[str, str, str, list[str]]],
    found: SplicedValues,
    path: str,
    result: ScanResult,
) -> None:
    """`report_spliced` for each (key, resolver, argument, names), all sharing one
    `SPLICE_BUDGET`: once it is spent the rest are judged by each value on its own and the
    file is inconclusive (code split across values is then not seen)."""
    budget = WorkBudget("spliced interpolation text", SPLICE_BUDGET)
    for key, resolver, argument, names in spliced:
        report_spliced(scanner, resolver, argument, names, found, path, key, result, budget)


def report_spliced(
    scanner: BaseScanner,
    resolver: str,
    argument: str,
    names: list[str],
    found: SplicedValues,
    path: str,
    key: str,
    result: ScanResult,
    budget: WorkBudget,
) -> None:
    """An evaluating resolver whose argument splices in other keys' values
    (`${python:${cmd}}`): what it evaluates is judged with those values in place, and each
    value on its own."""
    firsts = {n: found.values[n][0] for n in names if found.values.get(n)}
    evidence: list[str] = []
    if not budget.exhausted:
        try:
            evidence = code_evidence(splice(argument, firsts, budget))
        except BudgetExceeded as exc:
            report_budget(result, scanner.location(path), exc)
    evidence = evidence or sorted({w for n in names for w in found.evidence.get(n, ())})
    if not evidence:
        return
    refs = ", ".join(n for n in names if n in found.values)
    result.add_issue(
        f"Config interpolation ${{{resolver}:...}} at {key} evaluates code naming "
        f"{', '.join(evidence)} taken from {refs}",
        severity=IssueSeverity.CRITICAL,
        location=scanner.location(path),
        details={"key": key, "resolver": resolver, "argument": argument[:120], "from": refs},
        why="Resolving the config splices those values into the expression and runs it.",
        rule=JSON_DANGEROUS_TARGET,
    )


def values_under(doc: Any, names: set[str]) -> SplicedValues:
    """The string values stored under each key in `names`, anywhere in the document."""
    out: dict[str, list[str]] = {}
    stack = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for k, v in item.items():
                if k in names and isinstance(v, str):
                    out.setdefault(k, []).append(v)
                stack.append(v)
        elif isinstance(item, list):
            stack.extend(item)
    return SplicedValues(out)


def report_eval_text(
    scanner: BaseScanner, text: str, path: str, key: str, result: ScanResult
) -> None:
    """jsonpickle `py/repr`: `module/expression`, imported and evaluated by older versions."""
    shown = text if len(text) <= 120 else text[:117] + "..."
    result.add_issue(
        f"Config {key} '{shown}' is evaluated as Python by jsonpickle",
        severity=IssueSeverity.CRITICAL,
        location=scanner.location(path),
        details={"key": key, "text": shown},
        why="jsonpickle imports the module named before '/' and evaluates the rest with eval().",
        rule=JSON_DANGEROUS_TARGET,
    )


def _interpolated(doc: Any) -> list[tuple[str, str]]:
    """(key, text) of each string holding "${" anywhere in the document: values at any
    depth of lists, keys, a top-level array or string (OmegaConf reads them all)."""
    out: list[tuple[str, str]] = []
    stack: list[tuple[str, Any]] = [("(top level)", doc)]
    while stack:
        key, item = stack.pop()
        if isinstance(item, str):
            if "${" in item:
                out.append((key, item))
        elif isinstance(item, dict):
            for k, v in item.items():
                if "${" in k:
                    out.append((k, k))
                stack.append((k, v))
        elif isinstance(item, list):
            stack.extend((key, v) for v in item)
    return out


def _code_refs(value: Any) -> list[str]:
    """Dotted `module.Class` strings in an auto_map/custom_pipelines value, at any depth."""
    out: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and "." in item:
            out.append(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return out


def _task(archs: list[str], doc: dict[str, Any]) -> str | None:
    for key in ("pipeline_tag", "task"):
        if isinstance(doc.get(key), str):
            return str(doc[key])
    for arch in archs:
        if arch.endswith("ForConditionalGeneration"):
            if arch.startswith(_SPEECH_PREFIXES):
                return "automatic-speech-recognition"
            if arch.startswith(_VISION_PREFIXES):
                return "image-text-to-text"
        for suffix, task in _TASK_SUFFIXES:
            if arch.endswith(suffix):
                return task
    return None
