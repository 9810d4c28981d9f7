"""`torch.export.save` archives (.pt2): raw weight records are tensor bytes, never sniffed.

The archive names each weight in `data/weights/model_weights_config.json`; `use_pickle:
false` records are read as raw storage, `use_pickle: true` ones with torch.load. A float32
weight whose bytes start like a msgpack map (0x8d 0xb9...) was read as a hostile msgpack.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import torch

from modelaudit.findings import FileStatus, IssueSeverity
from tests.containers._container_corpus import criticals, payload, scan

#: Little-endian float32 bytes that read as a msgpack fixmap of 13 entries keyed by a str.
_MSGPACK_LOOKING = bytes.fromhex("8db9693e665eb13e")


class _Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 2)
        values = torch.frombuffer(bytearray(_MSGPACK_LOOKING), dtype=torch.float32).clone()
        self.lin.bias = torch.nn.Parameter(values)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pt2") / "model.pt2"
    program = torch.export.export(_Tiny().eval(), (torch.randn(2, 4),))
    torch.export.save(program, path)
    return path


def _rewrite(src: Path, dst: Path, replace: dict[str, bytes]) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, replace.get(info.filename, zin.read(info.filename)))


def _weights(path: Path) -> tuple[str, dict[str, dict[str, object]]]:
    with zipfile.ZipFile(path) as z:
        name = next(n for n in z.namelist() if n.endswith("_weights_config.json"))
        return name, json.loads(z.read(name))["config"]


def test_real_export_with_msgpack_looking_weight_is_clean(exported: Path) -> None:
    config_name, config = _weights(exported)
    bias = config["lin.bias"]
    assert bias["use_pickle"] is False
    with zipfile.ZipFile(exported) as z:
        record = config_name.rsplit("/", 1)[0] + "/" + str(bias["path_name"])
        assert z.read(record) == _MSGPACK_LOOKING
    result = scan(exported)
    assert result.status is FileStatus.COMPLETE, result.status_reason
    noisy = [i for i in result.issues if i.severity.rank >= IssueSeverity.WARNING.rank]
    assert not noisy, [i.to_dict() for i in noisy]


def test_real_export_has_no_finding_at_all(exported: Path) -> None:
    """No INFO either: a torch.export archive holds no pickle record by design."""
    result = scan(exported)
    assert result.issues == []
    assert result.metadata["format_details"]["pickle_records"] == []


def test_record_marked_use_pickle_is_still_unpickled_and_scanned(
    exported: Path, tmp_path: Path
) -> None:
    config_name, config = _weights(exported)
    config["lin.bias"]["use_pickle"] = True
    folder = config_name.rsplit("/", 1)[0]
    hostile = tmp_path / "pickled.pt2"
    _rewrite(
        exported,
        hostile,
        {
            config_name: json.dumps({"config": config}).encode(),
            f"{folder}/{config['lin.bias']['path_name']}": payload(),
        },
    )
    assert criticals(scan(hostile))


def test_raw_and_pickled_copies_of_a_config_keep_the_record_scanned(
    exported: Path, tmp_path: Path
) -> None:
    """A duplicate config that marks the record pickled wins: torch may read either copy."""
    config_name, config = _weights(exported)
    record = f"{config_name.rsplit('/', 1)[0]}/{config['lin.bias']['path_name']}"
    hostile = tmp_path / "twice.pt2"
    _rewrite(exported, hostile, {record: payload()})
    pickled = {"config": {"x": {**config["lin.bias"], "use_pickle": True}}}
    with zipfile.ZipFile(hostile, "a") as z:
        z.writestr(config_name.replace("model_weights", "other_weights"), json.dumps(pickled))
    assert criticals(scan(hostile))


def test_record_no_config_names_is_still_sniffed(exported: Path, tmp_path: Path) -> None:
    config_name, _config = _weights(exported)
    hostile = tmp_path / "extra.pt2"
    _rewrite(exported, hostile, {})
    with zipfile.ZipFile(hostile, "a") as z:
        z.writestr(f"{config_name.rsplit('/', 1)[0]}/weight_99", payload())
    assert criticals(scan(hostile))
