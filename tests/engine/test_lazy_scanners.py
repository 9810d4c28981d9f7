"""Scanner modules are imported only when a file of their kind arrives (issue 15, part 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from modelaudit.core import scan_report
from tests.hardening._hardening_util import write_hostile


def test_builtin_specs_match_their_classes() -> None:
    from modelaudit.scanners import SCANNER_REGISTRY
    from modelaudit.scanners.base import BaseScanner
    from modelaudit.scanners.registry import BUILTIN, spec_of

    builtin = [c for c in SCANNER_REGISTRY if spec_of(c) is not None]
    assert len(builtin) == len(BUILTIN)
    for spec, cls in zip(BUILTIN, builtin, strict=True):
        assert spec.load() is cls
        assert spec.formats == tuple(str(f) for f in cls.formats)
        assert spec.supported_extensions == tuple(e.lower() for e in cls.supported_extensions)
        # Routing by name uses the spec, so no built-in may route by name differently.
        assert cls.can_handle.__func__ is BaseScanner.can_handle.__func__  # type: ignore[attr-defined]


def test_importing_the_engine_imports_no_scanner() -> None:
    code = (
        "import sys, modelaudit.engine.dispatch, modelaudit.engine.worker, "
        "modelaudit.engine.scanner; "
        "print(sorted(m for m in sys.modules if m.endswith('_scanner') or "
        "m.split('.')[0] in ('h5py', 'onnx', 'jinja2', 'yaml', 'py7zr')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, text=True)
    assert out.stdout.strip() == "[]"


def test_a_worker_imports_only_the_scanners_its_files_need(tmp_path: Path, hostile: type) -> None:
    import pickle

    (tmp_path / "a.pkl").write_bytes(pickle.dumps({"weights": [1, 2]}))
    write_hostile(str(tmp_path), "b.hostile", "report-process")
    # One file a batch, in listing order: the probe reports after the model was scanned
    # (a batch of several goes kind by kind, which could put the probe first).
    report = scan_report(str(tmp_path), jobs=1, worker_start="spawn", batch_files=1)
    (probe,) = [i for i in report.issues if i.message == "process"]
    modules = probe.details["modules"]
    assert "modelaudit.scanners.pickle.pickle_scanner" in modules
    unused = ("h5_scanner", "onnx_scanner", "json_scanner", "yaml_scanner", "archive_scanner")
    assert not [m for m in modules if m.endswith(unused)], modules
    assert not [m for m in modules if m.split(".")[0] in ("h5py", "onnx", "jinja2", "yaml")]


def test_a_safetensors_file_loads_neither_the_pickle_engine_nor_the_text_scanners(
    tmp_path: Path, hostile: type
) -> None:
    """A family package imports its scanners only when asked for one, and nested-pickle
    support loads the pickle engine only when a pickle turns up."""
    import numpy as np
    from safetensors.numpy import save_file

    save_file({"w": np.zeros(4, dtype=np.float32)}, str(tmp_path / "a.safetensors"))
    write_hostile(str(tmp_path), "b.hostile", "report-process")
    # One file a batch, in listing order: the probe reports after the model was scanned
    # (a batch of several goes kind by kind, which could put the probe first).
    report = scan_report(str(tmp_path), jobs=1, worker_start="spawn", batch_files=1)
    assert report.exit_code == 0
    (probe,) = [i for i in report.issues if i.message == "process"]
    modules = probe.details["modules"]
    assert "modelaudit.scanners.data.safetensors_scanner" in modules
    unwanted = ("pickle.stream", "text.json_scanner", "text.yaml_scanner", "msgpack_scanner")
    assert not [m for m in modules if m.endswith(unwanted)], modules
