"""TorchScript archives (torch.jit.save) are ordinary PyTorch models: no alarms."""

from pathlib import Path

import torch
from torch import nn

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
