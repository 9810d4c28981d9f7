"""Config keys and interpolations that make a loader import and call a named callable.

Hydra/OmegaConf `_target_`, jsonargparse/LightningCLI `class_path` (+ `init_args`),
albumentations' `__class_fullname__`, jsonpickle's `py/object`/`py/type`/`py/function`: each
names a dotted callable that instantiating the config imports and calls with arguments from
the file. OmegaConf `${resolver:argument}` interpolations run whatever the loading program
registered under that name; programs commonly register `eval` and import helpers
(`get_method`, `get_class`), so the argument is judged too. Names are judged with the pickle
policy (`callable_policy`); nothing is imported.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import Final

from ...budget import WorkBudget
from ..keras.lambda_code import DANGEROUS_NAMES as _CODE_NAMES
from ..pickle.callable_policy import is_dangerous_callable

#: Key -> how the loader that reads it is called in findings.
INSTANTIATION_KEYS: Final[dict[str, str]] = {
    "_target_": "_target_",
    "class_path": "jsonargparse class_path",
    "__class_fullname__": "albumentations __class_fullname__",
    "py/object": "jsonpickle py/object",
    "py/type": "jsonpickle py/type",
    "py/function": "jsonpickle py/function",
}
#: Older spellings of `_target_` that loaders still honour: NeMo turns every Hydra 0.x `cls`
#: into `_target_` (`maybe_update_config_version`, which it runs on every model config it
#: restores) and imports a `target` and calls it with the config. These words are common
#: keys in other configs, so only a dotted name the policy denies is reported. (Hydra 1.0's
#: `class` is left out: logging's dictConfig, which Hydra's own job config feeds, names
#: `logging.FileHandler` under it.)
LEGACY_TARGET_KEYS: Final[dict[str, str]] = {
    "cls": "Hydra 0.x cls",
    "target": "NeMo target",
}
#: Fiddle's JSON serialization (NeMo 2's `context/io.json`, which `nemo.lightning.io.load`
#: deserializes and builds) writes every function and class as `{"type": "pyref", "module":
#: M, "name": N}`: deserializing imports `M` and follows `N`, building calls the callables
#: its Configs name.
FIDDLE_PYREF: Final = "pyref"
#: The keyword that lets a Hugging Face loader import and run Python from the repository it
#: downloads: an instantiated config that passes it on hands that choice to the repository.
REMOTE_CODE_KEY: Final = "trust_remote_code"
#: Keys whose callable is built with the arguments around and below them (Hydra,
#: jsonargparse): trust_remote_code anywhere in those arguments reaches the loader.
REMOTE_CODE_TARGETS: Final = ("_target_", "class_path")
#: Keys whose value says which repository an instantiated loader reads.
REPOSITORY_KEYS: Final = (
    "pretrained_model_name_or_path",
    "model_name_or_path",
    "repo_id",
    "model_id",
    "model_name",
    "checkpoint",
    "path",
)
#: YAML 1.1 plain scalars PyYAML and OmegaConf read as true.
_YAML_TRUE: Final = frozenset({"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"})
#: Quoted strings that a truthiness test passes but that plainly mean "no".
_FALSE_TEXT: Final = frozenset({"", "false", "False", "FALSE", "no", "No", "0", "none", "None"})
#: jsonpickle evaluates `module/expression` text under this key (older versions, unsafe mode).
EVAL_KEYS: Final = frozenset({"py/repr"})
#: A resolver name is dotted words, any of which may itself be an interpolation that picks
#: the name at load time (`${${r}:...}` with `r: python`).
_NAME_PART: Final = r"(?:[A-Za-z_][\w\-]*|\$\{[^{}:]*\})"
_RESOLVER_START: Final = re.compile(rf"\$\{{\s*({_NAME_PART}(?:\.{_NAME_PART})*)\s*:")
#: A plain reference to another key (`${a.b}`, `${..b}`): its value is spliced in first.
_REFERENCE: Final = re.compile(r"\$\{\s*\.*((?:[A-Za-z_][\w\-]*\.)*[A-Za-z_][\w\-]*)\s*\}")
#: Characters one file's interpolations may scan for their closing braces: each `${` scans
#: its own argument, so plain configs scan their text about once; starts nested in one
#: another (or left open) rescan the same text, and past this the file is inconclusive.
INTERPOLATION_BUDGET: Final = 16 << 20
_BRACE: Final = re.compile(r"[{}]")
#: Resolver names that evaluate their argument as Python when a program registers them.
_EVAL_RESOLVERS: Final = frozenset(
    {"eval", "exec", "python", "py", "python_eval", "pyeval", "calc", "expr", "lambda"}
)
#: Words in a resolver's name that say it imports or calls its argument.
_IMPORT_WORDS: Final = frozenset(
    {
        "method",
        "class",
        "cls",
        "callable",
        "function",
        "func",
        "fn",
        "import",
        "locate",
        "instantiate",
        "call",
        "object",
        "obj",
        "module",
        "target",
    }
)
_DOTTED: Final = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_]\w*)+$")
_WORDS: Final = re.compile(r"[A-Za-z]+")
_CODE_WORDS: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def interpolation_budget() -> WorkBudget:
    """The budget `interpolations` charges for one file."""
    return WorkBudget("config interpolation text", INTERPOLATION_BUDGET)


def interpolations(text: str, budget: WorkBudget) -> Iterator[tuple[str, str]]:
    """(resolver, argument) of each `${resolver:argument}` in `text`, nested braces kept.

    Every interpolation and all of its argument is read (a cap would let padding hide the
    code, or the 51st interpolation); the text scanned is charged to `budget`, which raises
    `BudgetExceeded` when nested or unclosed starts make the scans add up past it."""
    for m in _RESOLVER_START.finditer(text):
        depth, i = 1, m.end()
        while depth:
            brace = _BRACE.search(text, i)
            if brace is None:
                i = len(text)
                break
            i = brace.end()
            depth += 1 if brace.group() == "{" else -1
        budget.charge(i - m.start())
        yield m.group(1), text[m.end() : i - 1 if depth == 0 else i].strip()


def _unquote(arg: str) -> str:
    if len(arg) >= 2 and arg[0] == arg[-1] and arg[0] in "'\"":
        return arg[1:-1]
    return arg


def evaluated_references(resolver: str, argument: str) -> list[str]:
    """The key names whose values an evaluating resolver splices into its argument before
    it evaluates it (`${python:${cmd}}` evaluates whatever `cmd` holds); [] for others."""
    name = resolver.rsplit(".", 1)[-1].lower()
    if name not in _EVAL_RESOLVERS and "${" not in resolver:
        return []
    found = [m.group(1).rsplit(".", 1)[-1] for m in _REFERENCE.finditer(argument)]
    return list(dict.fromkeys(found))


def splice(argument: str, values: dict[str, str], budget: WorkBudget) -> str:
    """`argument` with each plain reference replaced by the value found under its key; the
    text built is charged to `budget` as it grows (a value may be referenced many times)."""
    budget.charge(len(argument))

    def value(m: re.Match[str]) -> str:
        found = values.get(m.group(1).rsplit(".", 1)[-1], m.group(0))
        budget.charge(len(found))
        return found

    return _REFERENCE.sub(value, argument)


def code_evidence(text: str) -> list[str]:
    """The code, process, file and network names `text` uses as Python would read it."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    found = sorted(set(_CODE_WORDS.findall(text)) & _CODE_NAMES)
    if not found and "__" in text:
        found = ["dunder attributes"]
    return found


def enables_remote_code(value: object, plain: bool = True) -> bool:
    """Whether a `trust_remote_code` value turns it on: a true boolean (YAML 1.1 spellings for
    a plain scalar), or a non-empty string that does not spell "no" (loaders test truthiness).
    An interpolation (`${model.trust_remote_code}`) is left alone: its target is judged."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    if not isinstance(value, str) or "${" in value:
        return False
    if plain:
        return value in _YAML_TRUE
    return value.strip() not in _FALSE_TEXT


def fiddle_pyref(obj: dict[str, object]) -> tuple[str, str] | None:
    """The module a Fiddle pyref object imports and the name it follows there, or None."""
    module, name = obj.get("module"), obj.get("name")
    if obj.get("type") != FIDDLE_PYREF or not isinstance(module, str):
        return None
    return (module, name) if isinstance(name, str) else None


def legacy_target(value: str) -> bool:
    """Whether a `LEGACY_TARGET_KEYS` value is a callable worth reporting: a dotted name (an
    import path, which both loaders need) that importing and calling can make harmful."""
    name = value.strip()
    return _DOTTED.match(name.replace(":", ".")) is not None and is_dangerous_callable(name)


def judge_resolver(resolver: str, argument: str) -> tuple[bool, str] | None:
    """(dangerous, why) for an interpolation that evaluates or imports; None when it is data.

    `eval`-like resolvers are dangerous when the expression names code, process, file or
    network APIs; import-like ones when the dotted name they resolve is (pickle policy).
    """
    name = resolver.rsplit(".", 1)[-1].lower()
    arg = _unquote(argument)
    if not arg.isascii():
        # Python reads identifiers in NFKC form: fullwidth `os.system` is `os.system` to eval
        arg = unicodedata.normalize("NFKC", arg)
    if "${" in resolver:
        words = set(_CODE_WORDS.findall(arg))
        evidence = sorted(words & _CODE_NAMES)
        if evidence or "__" in arg:
            return True, (
                "runs a resolver named at load time on code naming "
                f"{', '.join(evidence) or 'dunder attributes'}"
            )
        return False, "runs a resolver named at load time"
    if name in _EVAL_RESOLVERS:
        words = set(_CODE_WORDS.findall(arg))
        evidence = sorted(words & _CODE_NAMES)
        if evidence or "__" in arg:
            return True, f"evaluates code naming {', '.join(evidence) or 'dunder attributes'}"
        return False, "evaluates an expression as Python"
    words = {w.lower() for w in _WORDS.findall(resolver)}
    if words & _IMPORT_WORDS and _DOTTED.match(arg):
        if is_dangerous_callable(arg):
            return True, f"resolves the callable {arg}"
        return False, f"resolves the callable {arg}"
    return None


__all__ = [
    "EVAL_KEYS",
    "FIDDLE_PYREF",
    "INSTANTIATION_KEYS",
    "LEGACY_TARGET_KEYS",
    "REMOTE_CODE_KEY",
    "REMOTE_CODE_TARGETS",
    "REPOSITORY_KEYS",
    "code_evidence",
    "enables_remote_code",
    "evaluated_references",
    "fiddle_pyref",
    "interpolation_budget",
    "interpolations",
    "judge_resolver",
    "legacy_target",
    "splice",
]
