"""TorchScript archives (torch.jit.save) are ordinary PyTorch models: no alarms."""

from pathlib import Path

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


def _with_source(src: Path, dst: Path, old: str, new: str) -> None:
    """Copy an archive torch wrote, with one edit to its TorchScript source (the member
    under `code/` that holds `old`: torch names it after the classes' module, which is
    `code/__torch__.py` only for `__main__`)."""
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
