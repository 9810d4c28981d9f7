"""YAML configs: Python tags, config-driven imports and alias bombs, without constructing objects.

`yaml.unsafe_load`/`yaml.load(Loader=Loader)` turn `!!python/object/apply:os.system` into a
call; Hydra/OmegaConf `_target_` and HyperPyYAML `!new:`/`!apply:` tags make the loader import
and call a dotted name. Only the parser's event stream is read (libyaml's when available): no
node graph, no constructor, no recursion, so depth is a counter and the alias expansion a naive
consumer would do is computed from anchor sizes rather than performed.
"""

from __future__ import annotations

from typing import Any, Final

from ... import rules
from ...budget import BudgetExceeded, WorkBudget, report_budget
from ...formats import Format
from ...rules.text import (
    JSON_DANGEROUS_TARGET,
    YAML_ALIAS_BOMB,
    YAML_CUSTOM_TAG,
    YAML_PYTHON_TAG,
)
from ..base import BaseScanner, IssueSeverity, ScanResult
from .instantiation import (
    EVAL_KEYS,
    INSTANTIATION_KEYS,
    LEGACY_TARGET_KEYS,
    REMOTE_CODE_KEY,
    REMOTE_CODE_TARGETS,
    REPOSITORY_KEYS,
    enables_remote_code,
    evaluated_references,
    interpolation_budget,
    interpolations,
    legacy_target,
)
from .json_scanner import (
    SplicedValues,
    report_all_spliced,
    report_eval_text,
    report_loader_args,
    report_nesting,
    report_remote_code_target,
    report_resolver,
    report_target,
)
from .loader_args import ARGUMENT_KEYS, LoaderArgs, may_matter
from .rl_zoo import EVAL_KEYS as RL_ZOO_EVAL_KEYS
from .rl_zoo import MAX_TEXT as RL_ZOO_MAX_TEXT
from .rl_zoo import WRAPPER_KEYS as RL_ZOO_WRAPPER_KEYS
from .rl_zoo import is_rl_zoo_config
from .rl_zoo import judge as judge_rl_zoo

MAX_YAML_BYTES: Final = 16 * 1024 * 1024
_MAX_EXPANDED: Final = 1_000_000
_MAX_EVENTS: Final = 20_000_000
_MAX_DEPTH: Final = 200
_PY_TAG: Final = "tag:yaml.org,2002:python/"
_STD_TAG: Final = "tag:yaml.org,2002:"
#: Tags for plain values (`yaml.dump` of a tuple writes `!!python/tuple`, as Lightning's
#: `hparams.yaml` does for `betas=(0.9, 0.999)`): FullLoader builds a builtin value from the
#: node, importing and calling nothing.
_VALUE_TAGS: Final = frozenset(
    _PY_TAG + kind
    for kind in (
        *("none", "bool", "str", "unicode", "bytes", "int", "long", "float", "complex"),
        *("list", "tuple", "dict"),
    )
)
_OBJECT_TAG: Final = _PY_TAG + "object:"
#: Tags that call or name a dotted object: `apply`/`new` call it with the node's items (and
#: set state), `name` returns it.
_CALL_OR_NAME_TAGS: Final = tuple(_PY_TAG + k for k in ("object/apply:", "object/new:", "name:"))


def _plain_class(tag: str) -> str | None:
    """The object a Python tag builds or names when the pickle policy finds it safe, as it
    would in a pickle (the nodes the loader passes it are judged where they stand); None for
    any other tag, and for every module tag.

    `!!python/object:module.Class` (`yaml.dump` of an `argparse.Namespace`, Lightning's
    `hparams.yaml` of argparse arguments): `UnsafeLoader` makes it with `cls.__new__` and sets
    its state, what an unpickler's NEWOBJ and BUILD do. `!!python/object/apply:` and `/new:`
    call the name with the node's items, as REDUCE does (`yaml.dump` of an OrderedDict: RL
    Zoo's `config.yml`; of numpy scalars and arrays: Lightning's `hparams.yaml`), and
    `!!python/name:` returns it, as GLOBAL does (`numpy.ndarray` beside those arrays)."""
    if tag.startswith(_OBJECT_TAG):
        name = tag[len(_OBJECT_TAG) :]
        needs_class = True
    else:
        prefix = next((p for p in _CALL_OR_NAME_TAGS if tag.startswith(p)), None)
        if prefix is None:
            return None
        name = tag[len(prefix) :]
        needs_class = False
    module, _, qualname = name.rpartition(".")
    if not module or (needs_class and not qualname[:1].isupper()):
        return None
    from ..pickle.policy import SAFE, classify, valid_name

    if not valid_name(module, qualname) or classify(module, qualname).kind != SAFE:
        return None
    return name


#: HyperPyYAML (SpeechBrain) tags that import and call or return a dotted name.
_CALL_TAGS: Final = ("!new:", "!name:", "!apply:", "!module:")


class YamlScanner(BaseScanner):
    name = "yaml"
    description = "YAML configs: Python tags, _target_ and call tags, alias bombs (never loaded)"
    supported_extensions = [".yaml", ".yml"]
    formats = (Format.YAML,)

    def scan(self, path: str) -> ScanResult:
        result = self._create_result()
        size = self.file_size(path)
        if size > MAX_YAML_BYTES:
            result.mark_inconclusive(f"YAML file of {size} bytes is too large to parse")
            result.finish()
            return result
        try:
            import yaml
        except ImportError:
            message = (
                "PyYAML not installed, cannot scan YAML files; install it with: pip install pyyaml"
            )
            result.add_issue(
                message,
                severity=IssueSeverity.WARNING,
                location=self.location(path),
                details={"missing_module": "yaml", "install": "pip install pyyaml"},
                why="Without the library the file's content was not examined.",
                rule=rules.MISSING_DEPENDENCY,
            )
            result.mark_inconclusive(message)
            result.finish()
            return result
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        walk = _EventWalk(self, path, result)
        if is_rl_zoo_config(path):
            walk.rl_zoo = yaml.resolver.Resolver()
        try:
            with open(path, "rb") as f:
                for event in yaml.parse(f, Loader=loader):
                    if not walk.event(event, yaml):
                        break
        except yaml.YAMLError as exc:
            if "flow level" in str(exc) or "nesting" in str(exc):
                report_nesting(self, path, result)
            else:
                result.mark_inconclusive(f"malformed: not valid YAML ({str(exc)[:200]})")
        result.bytes_scanned = size
        walk.report_expansion()
        if walk.spliced:
            names = {n for *_, found in walk.spliced for n in found}
            values = _values_under(path, names, yaml, loader)
            spliced = [(f"pos {pos}", r, a, found) for pos, r, a, found in walk.spliced]
            report_all_spliced(self, spliced, values, path, result)
        result.finish()
        return result

    def tag(self, tag: str, pos: int | None, path: str, result: ScanResult) -> None:
        if tag in _VALUE_TAGS:
            return
        built = _plain_class(tag)
        if built is not None:
            result.add_issue(
                f"YAML Python tag '{tag.replace(_STD_TAG, '!!')}' builds {built}, which the "
                "pickle policy finds safe",
                severity=IssueSeverity.INFO,
                location=self.location(path, pos=pos),
                details={"tag": tag, "class": built},
                why="An unsafe YAML loader imports it and sets its attributes; the pickle "
                "policy finds nothing a load of it would run.",
                rule=YAML_CUSTOM_TAG,
            )
        elif tag.startswith(_PY_TAG) or tag.startswith(("!python/", "!!python/")):
            result.add_issue(
                f"YAML Python tag '{tag.replace(_STD_TAG, '!!')}'",
                severity=IssueSeverity.CRITICAL,
                location=self.location(path, pos=pos),
                details={"tag": tag},
                why="An unsafe YAML loader imports the named object and calls it with "
                "arguments from the file: arbitrary code execution.",
                rule=YAML_PYTHON_TAG,
            )
        elif tag.startswith(_CALL_TAGS):
            how, _, target = tag.partition(":")
            report_target(self, target, path, f"pos {pos}", result, how=f"{how}: tag")
        elif not tag.startswith(_STD_TAG) and tag not in ("!", "?"):
            result.add_issue(
                f"YAML custom tag '{tag}'",
                severity=IssueSeverity.INFO,
                location=self.location(path, pos=pos),
                details={"tag": tag},
                rule=YAML_CUSTOM_TAG,
            )


_KEYS: Final = frozenset(INSTANTIATION_KEYS) | EVAL_KEYS | frozenset(LEGACY_TARGET_KEYS)
#: Anchored scalars are remembered (all of them) so that an alias used as a `_target_` key
#: or value is judged like the text it stands for (`_target_: *cmd` with `cmd: &cmd
#: os.system`); text longer than this is not kept, as each alias would judge it anew, and
#: an alias of it as a hooked value leaves the file inconclusive.
_MAX_ANCHORED_TEXT: Final = 1000


class _Open:
    """A mapping or sequence being read: its expanded size so far and its key/value parity."""

    __slots__ = (
        "anchor",
        "args",
        "count",
        "is_map",
        "items",
        "key",
        "remote",
        "repository",
        "target",
        "target_next",
        "via",
        "wrappers",
    )

    def __init__(self, is_map: bool, anchor: str | None) -> None:
        self.is_map, self.anchor = is_map, anchor
        self.count = 1
        self.items = 0
        self.target_next: str | None = None
        #: The key whose value comes next (a mapping's last key scalar).
        self.key: str | None = None
        #: The `_target_`/`class_path` this mapping names, with where it was written.
        self.target: tuple[str, str, int | None] | None = None
        #: Where trust_remote_code is turned on in this node or below it, not yet reported.
        self.remote: int | None = None
        self.repository: str | None = None
        #: The arguments that change what a loader named here does (see loader_args).
        self.args: LoaderArgs | None = None
        #: The key this node is the value of in its parent mapping.
        self.via: str | None = None
        #: RL Zoo `env_wrapper` lists: 1 for the list (its scalars are wrapper names), 2
        #: for a `{name: kwargs}` item (its keys are).
        self.wrappers = 0

    def see_arg(self, key: str | None, value: str, plain: bool) -> None:
        if may_matter(key, value):
            if self.args is None:
                self.args = LoaderArgs()
            self.args.see(key, value, plain)


class _EventWalk:
    """Judge a YAML event stream: tags, `_target_` pairs, depth, and alias expansion."""

    def __init__(self, scanner: YamlScanner, path: str, result: ScanResult) -> None:
        self.scanner, self.path, self.result = scanner, path, result
        self.stack: list[_Open] = []
        self.anchors: dict[str, int] = {}
        self.scalars: dict[str, str] = {}
        #: Anchored scalars too long to keep (`_MAX_ANCHORED_TEXT`).
        self.long_scalars: set[str] = set()
        self.interpolation_budget: WorkBudget | None = interpolation_budget()
        #: Evaluating interpolations that splice in other keys' values (judged at the end).
        self.spliced: list[tuple[int | None, str, str, list[str]]] = []
        self.expanded = 0
        self.distinct = 0
        self.events = 0
        #: Set for an RL Zoo `config.yml` (see rl_zoo): tells plain scalars that YAML reads
        #: as strings from booleans and numbers.
        self.rl_zoo: Any = None

    def event(self, event: Any, yaml: Any) -> bool:
        """Consume one event; False when the walk must stop (too deep or too long)."""
        self.events += 1
        if self.events > _MAX_EVENTS:
            self.result.mark_inconclusive(f"more than {_MAX_EVENTS} YAML events; rest not read")
            return False
        tag = getattr(event, "tag", None)
        pos = event.start_mark.index if event.start_mark is not None else None
        if tag:
            self.scanner.tag(str(tag), pos, self.path, self.result)
        if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            if len(self.stack) >= _MAX_DEPTH:
                report_nesting(self.scanner, self.path, self.result)
                return False
            self.distinct += 1
            node = _Open(isinstance(event, yaml.MappingStartEvent), getattr(event, "anchor", None))
            parent = self.stack[-1] if self.stack else None
            if parent is not None and parent.is_map and parent.items % 2 == 1:
                node.via = parent.key
            if parent is not None and self.rl_zoo is not None:
                if self._wrapper_value(parent):
                    node.wrappers = 2 if node.is_map else 1
                elif parent.wrappers == 1 and node.is_map:
                    node.wrappers = 2
            if tag and str(tag).startswith(_CALL_TAGS):
                how, _, target = str(tag).partition(":")
                node.target = (target, f"{how}: tag", pos)
            self.stack.append(node)
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            done = self.stack.pop()
            if done.remote is not None:
                self._remote_code(done)
            if done.args is not None:
                self._loader_args(done)
            if done.anchor:
                self.anchors[done.anchor] = done.count
                self.scalars.pop(done.anchor, None)
                self.long_scalars.discard(done.anchor)
            self._value(done.count)
        elif isinstance(event, yaml.ScalarEvent):
            self.distinct += 1
            value = event.value
            if event.anchor:
                self.anchors[event.anchor] = 1
                if len(value) <= _MAX_ANCHORED_TEXT:
                    self.scalars[event.anchor] = value
                    self.long_scalars.discard(event.anchor)
                else:
                    self.scalars.pop(event.anchor, None)
                    self.long_scalars.add(event.anchor)
            self._pair(value, pos, plain=bool(event.implicit[0]))
            if "${" in value:
                self._interpolations(value, pos)
            self._value(1)
        elif isinstance(event, yaml.AliasEvent):
            aliased = self.scalars.get(event.anchor)
            if aliased is not None:
                self._pair(aliased, pos)
            elif event.anchor in self.long_scalars:
                self._long_alias(event.anchor)
            self._value(self.anchors.get(event.anchor, 1))
        return True

    def _interpolations(self, value: str, pos: int | None) -> None:
        """Judge every `${resolver:argument}` of a scalar until the file's budget is spent."""
        if self.interpolation_budget is None:
            return
        try:
            for resolver, argument in interpolations(value, self.interpolation_budget):
                report_resolver(
                    self.scanner, resolver, argument, self.path, f"pos {pos}", self.result
                )
                names = evaluated_references(resolver, argument)
                if names:
                    self.spliced.append((pos, resolver, argument, names))
        except BudgetExceeded as exc:
            self.interpolation_budget = None
            report_budget(self.result, self.scanner.location(self.path), exc)

    def _long_alias(self, anchor: str) -> None:
        """An alias of a scalar too long to keep, where a hooked key wants its value: the
        text it stands for goes unjudged, so the file is inconclusive."""
        top = self.stack[-1] if self.stack else None
        if top is not None and top.is_map and top.items % 2 == 1 and top.target_next:
            exc = BudgetExceeded(f"anchored text of {top.target_next}", _MAX_ANCHORED_TEXT)
            report_budget(self.result, self.scanner.location(self.path), exc)

    def _pair(self, value: str, pos: int | None, plain: bool = True) -> None:
        """A scalar (or an alias of one) as a mapping key or as the value of a hooked key."""
        top = self.stack[-1] if self.stack else None
        if top is None:
            return
        if not top.is_map:
            if top.via in ARGUMENT_KEYS:
                top.see_arg(None, value, plain)
            if self.rl_zoo is not None:
                if top.wrappers == 1 or self._wrapper_value(top):
                    self._rl_zoo_wrapper(value, pos)
                # RL Zoo saves an OrderedDict: a sequence of [key, value] pairs
                if top.items == 0:
                    top.key = value if len(value) <= 64 else None
                elif top.items == 1 and top.key in RL_ZOO_EVAL_KEYS:
                    self._rl_zoo_value(top.key, value, pos, plain)
            return
        if top.items % 2 == 0:
            if top.wrappers == 2:
                self._rl_zoo_wrapper(value, pos)
            top.target_next = value if value in _KEYS else None
            top.key = value if len(value) <= 64 else None
            return
        if top.key == REMOTE_CODE_KEY and enables_remote_code(value, plain):
            top.remote = pos if top.remote is None else top.remote
        elif top.key in REPOSITORY_KEYS and top.repository is None:
            top.repository = value[:200]
        top.see_arg(top.key, value, plain)
        if self.rl_zoo is not None and top.key in RL_ZOO_EVAL_KEYS:
            self._rl_zoo_value(top.key, value, pos, plain)
        elif self.rl_zoo is not None and top.key in RL_ZOO_WRAPPER_KEYS:
            self._rl_zoo_wrapper(value, pos)
        if top.target_next in EVAL_KEYS:
            report_eval_text(self.scanner, value, self.path, top.target_next, self.result)
        elif top.target_next in LEGACY_TARGET_KEYS:
            if legacy_target(value):
                how = LEGACY_TARGET_KEYS[top.target_next]
                report_target(self.scanner, value, self.path, f"pos {pos}", self.result, how=how)
        elif top.target_next:
            how = INSTANTIATION_KEYS[top.target_next]
            report_target(self.scanner, value, self.path, f"pos {pos}", self.result, how=how)
            if top.target_next in REMOTE_CODE_TARGETS:
                top.target = (value, how, pos)

    @staticmethod
    def _wrapper_value(node: _Open) -> bool:
        """Whether the next item of `node` is the value of an RL Zoo wrapper key (a mapping's
        or an OrderedDict pair's)."""
        if node.key not in RL_ZOO_WRAPPER_KEYS:
            return False
        return node.items % 2 == 1 if node.is_map else node.items == 1

    def _rl_zoo_wrapper(self, value: str, pos: int | None) -> None:
        """rl_zoo3's `get_wrapper_class` imports the module of each name and calls the class
        with the environment and the item's keyword arguments."""
        report_target(
            self.scanner, value, self.path, f"pos {pos}", self.result, how="RL Zoo wrapper"
        )

    def _rl_zoo_value(self, key: str, value: str, pos: int | None, plain: bool) -> None:
        """A string that rl_zoo3 passes to eval(): plain data stays quiet."""
        import yaml

        if plain and self.rl_zoo.resolve(yaml.ScalarNode, value, (True, False)) != (
            "tag:yaml.org,2002:str"
        ):
            return  # `normalize: true` is a boolean, never evaluated
        found = judge_rl_zoo(value)
        location = self.scanner.location(self.path, pos=pos)
        if found is None:
            exc = BudgetExceeded(f"RL Zoo {key} text", RL_ZOO_MAX_TEXT)
            report_budget(self.result, location, exc)
        elif found:
            shown = value if len(value) <= 120 else value[:117] + "..."
            self.result.add_issue(
                f"RL Zoo config {key} '{shown}' is evaluated as Python and reaches "
                f"{', '.join(found)}",
                severity=IssueSeverity.CRITICAL,
                location=location,
                details={"key": key, "text": shown, "reaches": found},
                why=f"{RL_ZOO_EVAL_KEYS[key]} passes this string to eval(): what it calls "
                "runs on the machine that loads the model. RL Zoo writes plain dict(...) "
                "literals here.",
                rule=JSON_DANGEROUS_TARGET,
            )

    def _remote_code(self, done: _Open) -> None:
        """A closed node turns trust_remote_code on in itself or below: reported on the
        callable it names, else handed to the node that holds it (linear: once per node)."""
        if done.target is not None:
            value, how, pos = done.target
            report_remote_code_target(
                self.scanner, value, done.repository, self.path, f"pos {pos}", self.result, how=how
            )
        elif self.stack and self.stack[-1].remote is None:
            self.stack[-1].remote = done.remote
            self.stack[-1].repository = self.stack[-1].repository or done.repository

    def _loader_args(self, done: _Open) -> None:
        """A closed node's loader arguments: judged with the callable it names, or handed to
        the node it gives arguments to (`_args_`, `init_args`)."""
        args = done.args
        assert args is not None
        if done.target is not None:
            value, how, pos = done.target
            report_loader_args(
                self.scanner, value, args, self.path, f"pos {pos}", self.result, how=how
            )
        elif done.via in ARGUMENT_KEYS and self.stack:
            parent = self.stack[-1]
            if parent.args is None:
                parent.args = LoaderArgs()
            parent.args.absorb(args)

    def _value(self, size: int) -> None:
        if self.stack:
            top = self.stack[-1]
            top.items += 1
            top.count = min(top.count + size, 1 << 62)
            if top.items % 2 == 0:
                top.target_next = None
                top.key = None
        else:
            self.expanded = min(self.expanded + size, 1 << 62)

    def report_expansion(self) -> None:
        if self.expanded <= _MAX_EXPANDED:
            return
        self.result.add_issue(
            f"YAML aliases expand {self.distinct} nodes into about {self.expanded} values",
            severity=IssueSeverity.WARNING,
            location=self.scanner.location(self.path),
            details={"distinct_nodes": self.distinct, "expanded_nodes": self.expanded},
            why="A consumer that expands the aliases runs out of memory: a denial of "
            "service on whatever reads this config.",
            rule=YAML_ALIAS_BOMB,
        )


def _values_under(path: str, names: set[str], yaml: Any, loader: Any) -> SplicedValues:
    """The scalar values stored under each key in `names`, anywhere in the document, an
    alias standing for its anchored scalar (a second pass over the events, made only for
    a config that splices values into an evaluated expression)."""
    out: dict[str, list[str]] = {}
    anchored: dict[str, str] = {}
    stack: list[list[Any]] = []  # [is_map, items, key]
    events = 0
    try:
        with open(path, "rb") as f:
            for event in yaml.parse(f, Loader=loader):
                events += 1
                if events > _MAX_EVENTS:
                    break
                if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                    if stack:
                        stack[-1][1] += 1
                    if len(stack) >= _MAX_DEPTH:
                        break
                    stack.append([isinstance(event, yaml.MappingStartEvent), 0, None])
                elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                    stack.pop()
                elif isinstance(event, yaml.ScalarEvent | yaml.AliasEvent):
                    if isinstance(event, yaml.ScalarEvent):
                        value: str | None = event.value
                        if event.anchor:
                            anchored[event.anchor] = event.value
                    else:
                        value = anchored.get(event.anchor)
                    if not stack:
                        continue
                    top = stack[-1]
                    if top[0] and top[1] % 2 == 0:
                        top[2] = value
                    elif top[0] and top[2] in names and value is not None:
                        out.setdefault(top[2], []).append(value)
                    top[1] += 1
    except yaml.YAMLError:
        pass
    return SplicedValues(out)
