from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from modelaudit.findings import IssueSeverity
from modelaudit.rules.data import EXECUTABLE_FILE
from modelaudit.rules.text import JSON_REMOTE_CODE
from tests.dataformats._dataformats_util import rules_of, scan


def test_members_reach_data_format_scanners(tmp_path: Path) -> None:
    weights = tmp_path / "inner.safetensors"
    blob = b"\x7fELF\x02\x01\x01" + bytes(57)
    save_file({"w": np.frombuffer(blob, dtype=np.uint8).copy()}, str(weights))
    bundle = tmp_path / "bundle.zip"
    with zipfile.ZipFile(bundle, "w") as zf:
        zf.write(weights, "model/model.safetensors")
        zf.writestr(
            "model/config.json",
            json.dumps({"auto_map": {"AutoModel": "modeling_x.X"}, "_name_or_path": "org/m"}),
        )
        zf.writestr("bin/helper", Path(sys.executable).resolve().read_bytes()[:8192])
        zf.writestr("model/README.md", "[card](https://example.com)\n")
    result = scan(bundle)
    warnings = {
        i.location.split(" ")[0]: i.rule
        for i in result.issues
        if i.location and i.severity is IssueSeverity.WARNING
    }
    assert warnings.get(f"{bundle}:bin/helper") == EXECUTABLE_FILE
    assert warnings.get(f"{bundle}:model/config.json") == JSON_REMOTE_CODE
    assert not any("model.safetensors" in loc for loc in warnings)
    assert not rules_of(result, IssueSeverity.CRITICAL)
    assert "org/m" in result.metadata.get("model_names", [])
