"""TorchScript archives (torch.jit.save) are ordinary PyTorch models: no alarms."""

# TorchScript reads `# type:` comments in a scripted body, so a ModuleList item's method call
# (typed by nn.Module.__getattr__ as Tensor | Module) cannot carry its own ignore.
# mypy: disable-error-code="operator"

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.jit._serialization import save_jit_module_to_flatbuffer as save_flatbuffer

from modelaudit.config import ScanConfig
from modelaudit.engine import dispatch
from modelaudit.findings import FileStatus, IssueSeverity


def _scan(path: Path) -> list[str]:
    result = dispatch.scan_path(str(path), ScanConfig().scanner_config())
    assert result.status is FileStatus.COMPLETE
    return [i.message for i in result.issues if i.severity.rank >= IssueSeverity.WARNING.rank]


def test_scripted_module_with_typed_lists(tmp_path: Path) -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 2)
            self.sizes: list[int] = [1, 2, 3]

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x)

    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(Net()), str(path))
    assert _scan(path) == []


def test_traced_convolution(tmp_path: Path) -> None:
    path = tmp_path / "traced.pt"
    traced = torch.jit.trace(nn.Conv2d(1, 2, 3), torch.zeros(1, 1, 8, 8))
    torch.jit.save(traced, str(path))
    assert _scan(path) == []


def test_payload_next_to_torchscript_types_is_still_critical(tmp_path: Path) -> None:
    import io
    import zipfile

    evil = b"\x80\x02c__torch__\nM\nq\x00cposix\nsystem\nX\x04\x00\x00\x00echo\x85R."
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("model/data.pkl", evil)
        zf.writestr("model/version", b"3\n")
    path = tmp_path / "evil.pt"
    path.write_bytes(buf.getvalue())
    result = dispatch.scan_path(str(path), ScanConfig().scanner_config())
    assert any(
        i.severity is IssueSeverity.CRITICAL and "posix.system" in i.message for i in result.issues
    )


class _MapsAFile(nn.Module):
    """Its __setstate__ (run by torch.jit.load) maps a file shared and writes it."""

    def __init__(self) -> None:
        super().__init__()
        self.path = "/tmp/never-written"
        self.buf = torch.zeros(4, dtype=torch.uint8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 1

    @torch.jit.export
    def __getstate__(self) -> tuple[str, bool]:
        return (self.path, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[str, bool]) -> None:
        self.path = state[0]
        self.training = state[1]
        t = torch.from_file(self.path, True, 4, dtype=torch.uint8)
        t.fill_(65)
        self.buf = t


def _critical(path: Path) -> list[str]:
    result = dispatch.scan_path(str(path), ScanConfig().scanner_config())
    return [i.message for i in result.issues if i.severity is IssueSeverity.CRITICAL]


def _with_source(
    src: Path, dst: Path, old: str, new: str, added: dict[str, str] | None = None
) -> None:
    """Copy an archive torch wrote, with one edit to its TorchScript source (the member
    under `code/` that holds `old`: torch names it after the classes' module, which is
    `code/__torch__.py` only for `__main__`) and any `added` members."""
    import zipfile

    edited = 0
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if "/code/" in info.filename and info.filename.endswith(".py"):
                text = data.decode()
                edited += text.count(old)
                data = text.replace(old, new).encode()
            zout.writestr(info, data)
        for name, text in (added or {}).items():
            zout.writestr(name, text)
    assert edited == 1, (old, edited)


def test_setstate_writing_a_file_is_critical(tmp_path: Path) -> None:
    path = tmp_path / "maps.pt"
    torch.jit.save(torch.jit.script(_MapsAFile()), str(path))
    found = _critical(path)
    assert any("from_file in __setstate__" in m for m in found), found


def test_file_builtin_through_getattr_and_alias_is_critical(tmp_path: Path) -> None:
    path = tmp_path / "maps.pt"
    torch.jit.save(torch.jit.script(_MapsAFile()), str(path))
    call = "t = torch.from_file(path, True, 4, dtype=0)"
    # both forms load (torch.jit.load resolves them) and write the file
    hidden = {
        "getattr": 't = getattr(torch, "from_" "file")(path, True, 4, dtype=0)',
        "alias": "m = torch\n    t = (m).\\\n      from_file(path, True, 4, dtype=0)",
    }
    for name, new in hidden.items():
        out = tmp_path / f"{name}.pt"
        _with_source(path, out, call, new)
        assert any("from_file" in m for m in _critical(out)), name


def test_torch_save_in_forward_is_critical(tmp_path: Path) -> None:
    class Saves(nn.Module):
        def forward(self, x: torch.Tensor, p: str) -> torch.Tensor:
            torch.save(x, p)
            return x

    path = tmp_path / "saves.pt"
    torch.jit.save(torch.jit.script(Saves()), str(path))
    assert any("calls save" in m for m in _critical(path))


def test_lite_interpreter_bytecode_without_source_is_critical(tmp_path: Path) -> None:
    """_load_for_lite_interpreter runs bytecode.pkl; the source may be left out."""
    import zipfile

    lite = tmp_path / "maps.ptl"
    torch.jit.script(_MapsAFile())._save_for_lite_interpreter(str(lite))
    bare = tmp_path / "bare.ptl"
    with zipfile.ZipFile(lite) as zin, zipfile.ZipFile(bare, "w") as zout:
        for info in zin.infolist():
            if "/code/" not in info.filename:
                zout.writestr(info, zin.read(info.filename))
    found = _critical(bare)
    assert any("mobile bytecode calls aten::from_file" in m for m in found), found


def test_lite_interpreter_model_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "lstm.ptl"
    torch.jit.script(nn.LSTM(4, 4))._save_for_lite_interpreter(str(path))
    assert _scan(path) == []


def test_flatbuffer_torchscript_is_judged_whatever_its_name(tmp_path: Path) -> None:
    """torch.jit.load reads a PTMF flatbuffer under any name (here `.pt`, once read as a
    malformed pickle, and `.ptl`, once skipped)."""
    for name in ("model.pt", "model.ptl"):
        path = tmp_path / name
        save_flatbuffer(torch.jit.script(_MapsAFile()), str(path))
        result = dispatch.scan_path(str(path), ScanConfig().scanner_config())
        assert result.scanner_name == "torchscript_flatbuffer"
        crit = [i.message for i in result.issues if i.severity is IssueSeverity.CRITICAL]
        assert any("from_file" in m for m in crit), (name, crit)


def test_flatbuffer_operator_table_alone_is_enough(tmp_path: Path) -> None:
    """The lite interpreter runs the bytecode: its operator name is judged even when the
    embedded source no longer names the builtin."""
    path = tmp_path / "model.ptl"
    save_flatbuffer(torch.jit.script(_MapsAFile()), str(path))
    data = path.read_bytes()
    assert data.count(b"torch.from_file(") == 1
    path.write_bytes(data.replace(b"torch.from_file(", b"torch.fr0m_file("))
    crit = _critical(path)
    assert any("aten::from_file" in m for m in crit), crit


def test_flatbuffer_model_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "conv.ptl"
    module = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten())
    save_flatbuffer(torch.jit.script(module), str(path))
    assert _scan(path) == []


def test_text_runs_carry_a_run_across_chunks() -> None:
    import io

    from modelaudit.scanners.native import torchscript_flatbuffer_scanner as fb

    source = b"def f(p: str):\n    return torch.from_file(p, True, 4)\n"
    blob = b"\x00" * (fb._CHUNK - 20) + source + b"\x00" * 10
    runs = list(fb.text_runs(io.BytesIO(blob)))
    assert runs == [source]


class _Store(nn.Module):
    """A submodule whose own methods are named like torch's file builtins (none touches a
    file); torch writes a call of one as `store = self.store` then `(store).save(x, )`."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.zeros(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.save(x, "p") + self.w

    @torch.jit.export
    def save(self, x: torch.Tensor, p: str) -> torch.Tensor:
        return x * 2

    @torch.jit.export
    def from_file(self, p: str) -> torch.Tensor:
        return self.w + 1

    @torch.jit.export
    def read_file(self, p: str) -> torch.Tensor:
        return self.w - 1

    @torch.jit.export
    def write_file(self, p: str, x: torch.Tensor) -> torch.Tensor:
        return x


class _UsesStore(nn.Module):
    """Calls the submodules' methods from forward, over a ModuleList, and from the
    `__setstate__` torch.jit.load runs."""

    def __init__(self) -> None:
        super().__init__()
        self.store = _Store()
        self.stores = nn.ModuleList([_Store(), _Store()])
        self.state = torch.zeros(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.store.save(x, "p") + self.store.from_file("q") + self.store.read_file("r")
        y = self.store.write_file("w", y)
        for s in self.stores:
            y = s.save(y, "p")
        return y

    @torch.jit.export
    def __getstate__(self) -> bool:
        return self.training

    @torch.jit.export
    def __setstate__(self, state: bool) -> None:
        self.training = state
        self.state = self.store.save(self.state, "k")


class _Nested(nn.Module):
    """`self.inner.store.save(...)`: torch writes `inner = self.inner; store = inner.store`."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = _UsesStore()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x) + self.inner.store.save(x, "z")


@torch.jit.interface
class _SavesInterface(nn.Module):
    def save(self, x: torch.Tensor, p: str) -> torch.Tensor:  # type: ignore[empty-body]
        pass  # an interface's body must be empty


class _ThroughInterface(nn.Module):
    """The submodule attribute is typed as an interface declaring `save`."""

    store: _SavesInterface

    def __init__(self) -> None:
        super().__init__()
        self.store = _Store()  # type: ignore[assignment]  # it implements the interface

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.store.save(x, "p")


@torch.jit.script
class _Ledger:
    """A scripted class (not a module) with a `save` method."""

    def __init__(self, p: str) -> None:
        self.p = p

    def save(self, x: torch.Tensor) -> torch.Tensor:
        return x * 3


class _HoldsLedger(nn.Module):
    """A `_Ledger` attribute, and one made in forward (`__torch__.m._Ledger.__new__(...)`)."""

    def __init__(self) -> None:
        super().__init__()
        self.ledger = _Ledger("a")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ledger.save(x) + _Ledger("b").save(x)


def _ts_rules(path: Path) -> tuple[int, list[str]]:
    """The full scan's exit code, and the messages of its MA2018 findings."""
    from modelaudit.core import scan_report

    report = scan_report(str(path))
    found = [i.message for f in report.files for i in f.issues if i.rule == "MA2018"]
    return report.exit_code, found


def _write(module: nn.Module, path: Path, how: str) -> None:
    scripted = torch.jit.script(module)
    if how == "jit":
        torch.jit.save(scripted, str(path))
    elif how == "lite":
        scripted._save_for_lite_interpreter(str(path))
    else:
        save_flatbuffer(scripted, str(path))


@pytest.mark.parametrize("how", ["jit", "lite", "flatbuffer"])
@pytest.mark.parametrize("model", [_Nested, _ThroughInterface])
def test_submodule_methods_named_like_file_builtins_are_quiet(
    tmp_path: Path, how: str, model: type[nn.Module]
) -> None:
    """`(store).save(x, )` on a submodule whose class defines `save` is that method: in
    forward, `__setstate__`, over a ModuleList, on `self`, nested, through an interface."""
    path = tmp_path / f"model.{how}"
    _write(model(), path, how)
    assert b").save(" in path.read_bytes() or how != "flatbuffer"
    assert _ts_rules(path) == (0, [])


def test_flatbuffer_class_without_the_method_is_critical(tmp_path: Path) -> None:
    """The flatbuffer's function table names `__torch__...._Store.save` (the interface
    call is not inlined): that is the method's only while `_Store` defines it."""
    path = tmp_path / "model.ptl"
    save_flatbuffer(torch.jit.script(_ThroughInterface()), str(path))
    data = path.read_bytes()
    method = b"  def save(self: __torch__.tests.containers.test_torchscript._Store,"
    assert data.count(method) == 1
    # torch keeps _Store.forward (which calls `(self).save(`) once another test compiled it
    for text in (method, b"(self).save("):
        data = data.replace(text, text.replace(b"save", b"sav_"))
    path.write_bytes(data)
    assert any("calls save" in m for m in _critical(path))


def test_scripted_class_method_named_save_is_quiet(tmp_path: Path) -> None:
    path = tmp_path / "ledger.pt"
    torch.jit.save(torch.jit.script(_HoldsLedger()), str(path))
    assert _ts_rules(path) == (0, [])


_STORE_CALL = '    store = self.store\n    _0 = (store).save(x, "p", )\n'
_STORE_TYPE = "  store : __torch__.tests.containers.test_torchscript._Store\n"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        # rebound to torch in a branch
        (
            _STORE_CALL,
            _STORE_CALL.replace("\n    _0", "\n    if bool(x):\n      store = torch\n    _0"),
        ),
        # bound only in a branch
        (
            _STORE_CALL,
            '    if bool(x):\n      store = self.store\n    _0 = (store).save(x, "p", )\n',
        ),
        # used before its one binding, where the name is still torch's
        (_STORE_CALL, '    _0 = (torch).save(x, "p", )\n    torch = self.store\n'),
        (_STORE_CALL, _STORE_CALL.replace("self.store", "ops.aten")),
        (_STORE_CALL, _STORE_CALL.replace("self.store", 'getattr(torch, "ops").aten')),
        # declared as a class without the method, an unknown one, a C++ (torchbind) one
        (_STORE_TYPE, _STORE_TYPE.replace("._Store", "._UsesStore")),
        (_STORE_TYPE, _STORE_TYPE.replace("tests.containers.test_torchscript", "nowhere")),
        (_STORE_TYPE, _STORE_TYPE.replace("tests.containers.test_torchscript", "torch.classes.io")),
        # a second definition of the class, without the method
        ("class _Store(Module):\n", "class _Store(Module):\n  w : Tensor\nclass _Store(Module):\n"),
    ],
)
def test_method_exemption_does_not_cover_torch(tmp_path: Path, old: str, new: str) -> None:
    """Edits of a benign archive under which `(store).save` may still be torch.save."""
    benign = tmp_path / "benign.pt"
    torch.jit.save(torch.jit.script(_UsesStore()), str(benign))
    assert _ts_rules(benign) == (0, [])
    path = tmp_path / "edited.pt"
    _with_source(benign, path, old, new)
    assert any("calls save" in m for m in _critical(path)), new


_STORE_CLASS = (
    "class _Store(Module):\n  def save(self, x: Tensor, p: str) -> Tensor:\n    return x\n"
)


@pytest.mark.parametrize(
    ("new_type", "added"),
    [
        # a C++ (torchbind) class is not the source's, whatever the archive holds
        (
            "__torch__.torch.classes.io._Store",
            {"extra/code/__torch__/torch/classes/io.py": _STORE_CLASS},
        ),
        # a member of the class's module Python cannot parse may define it without `save`
        (
            "__torch__.tests.containers.test_torchscript._Store",
            {"extra/code/__torch__/tests/containers/test_torchscript.py": "class _Store(:\n"},
        ),
    ],
)
def test_class_the_index_cannot_vouch_for_is_critical(
    tmp_path: Path, new_type: str, added: dict[str, str]
) -> None:
    benign = tmp_path / "benign.pt"
    torch.jit.save(torch.jit.script(_UsesStore()), str(benign))
    path = tmp_path / "edited.pt"
    _with_source(benign, path, _STORE_TYPE, f"  store : {new_type}\n", added)
    assert any("calls save" in m for m in _critical(path))


class _LeakyStore(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    @torch.jit.export
    def save(self, x: torch.Tensor, p: str) -> torch.Tensor:
        return torch.from_file(p, True, 4, dtype=torch.uint8)


class _UsesLeaky(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.store = _LeakyStore()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.store.save(x, "/tmp/never-written")


def test_method_named_save_that_maps_a_file_is_critical(tmp_path: Path) -> None:
    """The call of the method is the method's; what the method calls is judged as ever."""
    path = tmp_path / "leaky.pt"
    torch.jit.save(torch.jit.script(_UsesLeaky()), str(path))
    found = _critical(path)
    assert any("calls from_file" in m for m in found), found
    assert not any("calls save" in m for m in found), found


def test_long_receiver_chains_resolve_or_give_up() -> None:
    """10,000 chained locals resolve (one pass over the function); an attribute chain past
    the cap is not resolved, so its call stays judged as the builtin."""
    from modelaudit.scanners.containers.torchscript_code import Source, find_file_ops_in

    n = 10_000
    body = "".join(f"    s{i} = s{i - 1}.me\n    _{i} = (s{i}).save(x, )\n" for i in range(1, n))
    chain = "    _z = (self" + ".me" * 1_000 + ").save(x, )\n"
    text = (
        "class C(Module):\n  me : __torch__.m.C\n"
        "  def save(self: __torch__.m.C, x: Tensor) -> Tensor:\n    return x\n"
        f"  def forward(self: __torch__.m.C, x: Tensor) -> Tensor:\n    s0 = self\n{body}{chain}"
    )
    [calls] = find_file_ops_in([Source(text, "__torch__.m")])
    assert [c.line for c in calls] == [text.count("\n")]  # only the over-long chain


def test_source_too_large_to_tokenize_is_word_searched_with_its_lines() -> None:
    """Past `_MAX_TOKENIZED` every named builtin is reported with its line, counted on from
    the match before (counting from the start for each match was quadratic)."""
    from modelaudit.scanners.containers import torchscript_code as tc

    text = "x = a.from_file(1)\n\n  y.save(2)  # z.save\n" + "pad\n" * 3 + "read_file\n"
    assert [(c.op, c.line) for c in tc._word_search(text)] == [
        ("from_file", 1),
        ("save", 3),
        ("save", 3),
        ("read_file", 7),
    ]
    big = "x = a.from_file(1)\n" * (tc._MAX_TOKENIZED // 19 + 1)
    calls = tc.find_file_ops(big)
    assert len(calls) == big.count("\n") and calls[-1].line == big.count("\n")


def test_mobile_bytecode_names_each_operator_once_in_order() -> None:
    import pickle

    from modelaudit.scanners.containers.torchscript_code import file_ops_in_bytecode

    names = ["aten::save", "aten::add", "aten::from_file", "aten::save", "aten::save.x"]
    assert file_ops_in_bytecode(pickle.dumps(tuple(names), protocol=2)) == [
        "aten::save",
        "aten::from_file",
        "aten::save.x",
    ]
