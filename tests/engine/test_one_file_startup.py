"""What a one-file CLI run (what pre-commit pays per commit) loads: no event loop, no fork
server or pool, no scanner in the parent, and nothing a clean file's report does not need."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

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
    assert "orjson" in modules  # the JSON report


def test_a_folder_still_goes_to_the_engine(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "model.pkl").write_bytes(pickle.dumps({"w": [1, 2, 3]}))
    code, modules = _parent_modules(tmp_path, str(folder), "-f", "json")
    assert code == 0
    assert "modelaudit.engine.runner" in modules


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
