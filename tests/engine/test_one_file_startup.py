"""What a one-file CLI run (what pre-commit pays per commit) loads: no event loop, no fork
server or pool, no scanner in the parent, and nothing a clean file's report does not need."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

_PROBE = """
import sys
from modelaudit.cli import main
code = main(sys.argv[1:])
import json
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def _parent_modules(tmp_path: Path, *args: str) -> tuple[int, list[str]]:
    # A project whose pyproject.toml names modelaudit but holds no settings for it.
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = ["modelaudit"]\n[tool.ruff]\nline-length = 99\n'
    )
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, "scan", *args, "--no-progress"],
        capture_output=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        timeout=120,
        check=False,
    )
    probe = json.loads(proc.stderr.decode().strip().splitlines()[-1])
    return probe["code"], probe["modules"]


def _loaded(modules: list[str], *prefixes: str) -> list[str]:
    return [m for m in modules if m.startswith(prefixes)]


def test_a_clean_file_loads_no_async_stack_and_no_scanner(tmp_path: Path) -> None:
    model = tmp_path / "model.pkl"
    model.write_bytes(pickle.dumps({"w": [1, 2, 3]}))
    for fmt in ("text", "json"):
        code, modules = _parent_modules(tmp_path, str(model), "-f", fmt)
        assert code == 0
        heavy = ("asyncio", "anyio", "uvloop", "rich", "tomllib", "hashlib", "modelaudit.scanners")
        engine = tuple(
            f"modelaudit.engine.{m}"
            for m in ("runner", "pool", "scanner", "launch", "forkserver", "worker", "sandbox")
        )
        assert _loaded(modules, *heavy, *engine) == [], fmt
        # The worker's folder is made without tempfile (shutil, bz2, lzma, random); its
        # sandbox asks platform nothing for a pickle (orjson imports platform for JSON).
        assert _loaded(modules, "tempfile", "shutil", "random", "bz2", "lzma") == [], fmt
        if fmt == "text":
            assert "platform" not in modules
        # Sniffing a pickle needs none of the magic-less formats' parsers.
        lazy = ("fasttext", "sentencepiece", "ctranslate2", "word2vec")
        assert _loaded(modules, *(f"modelaudit.formats.{m}" for m in lazy)) == [], fmt
    assert "orjson" in modules  # the JSON report


def test_a_report_written_to_a_file_needs_no_tempfile(tmp_path: Path) -> None:
    """`-o FILE` replaces the file atomically through a new file beside it, made without
    tempfile (and the random, shutil, bz2 and lzma it imports)."""
    model = tmp_path / "model.pkl"
    model.write_bytes(pickle.dumps({"w": [1, 2, 3]}))
    out = tmp_path / "report.json"
    out.write_text("old")
    out.chmod(0o640)
    code, modules = _parent_modules(tmp_path, str(model), "-f", "json", "-o", str(out))
    assert code == 0
    assert json.loads(out.read_text())["files"][0]["status"] == "complete"
    assert oct(out.stat().st_mode & 0o777) == oct(0o640)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".modelaudit-")] == []
    assert _loaded(modules, "tempfile", "shutil", "random", "bz2", "lzma") == []


def test_a_folder_still_goes_to_the_engine(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "model.pkl").write_bytes(pickle.dumps({"w": [1, 2, 3]}))
    code, modules = _parent_modules(tmp_path, str(folder), "-f", "json")
    assert code == 0
    assert "modelaudit.engine.runner" in modules
    # The pool's worker folders are made without tempfile, and --shard's hash is imported
    # only by a sharded run: none of these is on a sweep's way to its first file.
    assert _loaded(modules, "tempfile", "shutil", "random", "bz2", "lzma", "hashlib") == []


def test_parsing_the_command_line_asks_nothing_of_the_terminal() -> None:
    code = (
        "import sys\n"
        "from modelaudit.cli import build_parser, with_command\n"
        "build_parser().parse_args(with_command(['model.pkl', '-f', 'json']))\n"
        "print('shutil' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.strip() == "False"


def _scan_with_uname_probe(tmp_path: Path, model: Path) -> tuple[dict, bool]:
    """A one-file JSON scan with a `uname` first on PATH that leaves a mark when run."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    mark = tmp_path / "uname-ran"
    probe = bin_dir / "uname"
    probe.write_text(f'#!/bin/sh\necho ran >> "{mark}"\necho unknown\n')
    probe.chmod(0o755)
    proc = subprocess.run(
        [sys.executable, "-m", "modelaudit", "scan", str(model), "-f", "json", "--no-progress"],
        capture_output=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO), "PATH": f"{bin_dir}:/usr/bin:/bin"},
        timeout=120,
        check=False,
    )
    return json.loads(proc.stdout), mark.exists()


def test_a_pickle_worker_starts_no_uname_process(tmp_path: Path) -> None:
    """platform.processor() (`uname -p`) is asked only before a third-party import."""
    model = tmp_path / "model.pkl"
    model.write_bytes(pickle.dumps({"w": [1, 2, 3]}))
    report, ran = _scan_with_uname_probe(tmp_path, model)
    assert report["files"][0]["status"] == "complete"
    assert not ran


def test_a_worker_importing_h5py_asks_uname_first_and_trips_nothing(tmp_path: Path) -> None:
    """h5py's import asks platform.processor(); the worker runs `uname -p` for it before,
    so the innocent file gets no sandbox finding."""
    import h5py
    import numpy as np

    model = tmp_path / "weights.h5"
    with h5py.File(model, "w") as f:
        f.create_dataset("dense/kernel", data=np.zeros((2, 2), dtype=np.float32))
    report, ran = _scan_with_uname_probe(tmp_path, model)
    fr = report["files"][0]
    assert fr["status"] == "complete", fr
    assert [i["message"] for i in fr.get("issues", []) if "Scanning tried" in i["message"]] == []
    assert report["summary"]["severity_counts"]["critical"] == 0
    assert ran


def _imported_by_run(tmp_path: Path, *args: str) -> tuple[int, set[str]]:
    """Every module a CLI run's processes import (the parent and the worker it forks), from
    the `-X importtime` lines both write to stderr (modules loaded by `importlib.import_module`
    get no line of their own, only what they import does)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "modelaudit", "scan", *args, "--no-progress"],
        capture_output=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        timeout=120,
        check=False,
    )
    lines = proc.stderr.decode().splitlines()
    names = {line.rsplit("|", 1)[1].strip() for line in lines if line.startswith("import time:")}
    assert "modelaudit.engine.worker" in names  # the worker's lines are there too
    return proc.returncode, names


def _safetensors_bytes() -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    return len(header).to_bytes(8, "little") + header + b"\0" * 8


def test_a_one_file_run_without_v_imports_no_logging(tmp_path: Path) -> None:
    """Nothing in a one-file run logs at WARNING or above, so neither process imports
    logging (the CLI configures it for -v and for sweeps)."""
    (tmp_path / "model.pkl").write_bytes(pickle.dumps({"w": [1, 2, 3]}))
    (tmp_path / "model.safetensors").write_bytes(_safetensors_bytes())
    for name in ("model.pkl", "model.safetensors"):
        code, names = _imported_by_run(tmp_path, name)
        assert code == 0, name
        assert "logging" not in names, name
    code, names = _imported_by_run(tmp_path, "model.pkl", "-v")
    assert code == 0
    assert "logging" in names


_LAZY_PROBE = """
import json, sys
from modelaudit.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
modules = sorted(sys.modules)
from modelaudit import project, redact, sizes
lazy = {"may_hold_table": project._MAY_HOLD_TABLE, "secret_param": redact._SECRET_PARAM,
        "uri_in_text": redact._URI_IN_TEXT, "size": sizes._SIZE}
compiled = sorted(name for name, p in lazy.items() if p.is_compiled)
print(json.dumps({"code": code, "compiled": compiled, "modules": modules}),
      file=sys.stderr)
"""


def _lazy_probe(cwd: Path, *args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", _LAZY_PROBE, *args],
        capture_output=True,
        cwd=cwd,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        timeout=120,
        check=False,
    )
    probe: dict[str, Any] = json.loads(proc.stderr.decode().strip().splitlines()[-1])
    return probe


def test_a_one_file_run_loads_no_sweep_phase_and_compiles_no_unused_pattern(
    tmp_path: Path,
) -> None:
    """The CLI's sweep phases stay unloaded, and patterns a local run without sizes or a
    settings file never uses (URL secrets, sizes, the pyproject pre-check) stay uncompiled."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    (tmp_path / "model.pkl").write_bytes(pickle.dumps({"w": [1, 2, 3]}))
    probe = _lazy_probe(tmp_path, "model.pkl", "-f", "json", "--no-progress")
    assert probe["code"] == 0
    assert probe["compiled"] == []
    phases = ("modelaudit.cli.sweep", "modelaudit.cli.early", "modelaudit.cli.logs")
    assert _loaded(probe["modules"], *phases) == []
    # No settings file and no baseline: nothing to read or suppress.
    policy = ("modelaudit.cli.policy", "modelaudit.project_config", "modelaudit.suppress")
    assert _loaded(probe["modules"], *policy) == []
    probe = _lazy_probe(tmp_path, "model.pkl", "--max-size", "1GB", "--no-progress")
    assert probe["code"] == 0
    assert probe["compiled"] == ["size"]
    (tmp_path / ".modelaudit.toml").write_text('fail-on = "critical"\n')
    probe = _lazy_probe(tmp_path, "model.pkl", "--no-progress")
    assert probe["code"] == 0
    assert set(policy) <= set(probe["modules"])


def test_help_loads_only_the_parser(tmp_path: Path) -> None:
    """`--help` needs the grammar alone: no settings dataclasses (dataclasses imports
    inspect), no command module, no engine."""
    for args in (["--help"], ["scan", "--help"]):
        probe = _lazy_probe(tmp_path, *args)
        assert probe["code"] == 0
        modules = probe["modules"]
        assert _loaded(modules, "dataclasses", "inspect", "logging", "modelaudit.engine") == []
        assert _loaded(modules, "modelaudit.config", "modelaudit.cli.scan") == []
