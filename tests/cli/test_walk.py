"""Nothing a walk meets vanishes: every entry is scanned, skipped with a reason, or an error."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from tests.cli._helper import (
    EVIL_PICKLE,
    SAFE_PICKLE,
    json_report,
    run,
    without_file_permission_override,
)


def _by_name(report: dict[str, object], root: Path) -> dict[str, dict[str, object]]:
    files = report["files"]
    assert isinstance(files, list)
    return {os.path.relpath(f["path"], root): f for f in files}


def test_unreadable_folder_is_an_error_never_clean(tmp_path: Path) -> None:
    (tmp_path / "ok.pkl").write_bytes(SAFE_PICKLE)
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "evil.pkl").write_bytes(EVIL_PICKLE)
    locked.chmod(0)
    try:
        proc = run(str(tmp_path), "--format", "json", preexec_fn=without_file_permission_override)
        text = run(str(tmp_path), preexec_fn=without_file_permission_override)
    finally:
        locked.chmod(0o755)
    assert proc.returncode == 2, proc.stderr
    report = json_report(proc)
    assert report["has_errors"] is True
    [error] = report["target_errors"]
    assert error["target"] == str(locked)
    assert "cannot list folder" in error["error"] and "Permission denied" in error["error"]
    # Consumers that read only `issues` see it as critical, like any unreadable target.
    assert any(
        i["severity"] == "critical" and str(locked) in i["message"] for i in report["issues"]
    )
    assert text.returncode == 2
    assert f"ERROR: {locked}: cannot list folder: Permission denied".encode() in text.stdout
    assert b"-> incomplete" in text.stdout


def test_special_files_and_link_loops_are_skipped_with_a_reason(tmp_path: Path) -> None:
    (tmp_path / "model.pkl").write_bytes(SAFE_PICKLE)
    os.mkfifo(tmp_path / "pipe.pkl")
    os.symlink("/dev/null", tmp_path / "null.pkl")
    os.symlink("loop-b", tmp_path / "loop-a.pkl")
    os.symlink("loop-a.pkl", tmp_path / "loop-b")
    os.symlink("missing.pkl", tmp_path / "dangling.pkl")
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "dirlink")
    sock_path = tmp_path / "s.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock_path))
    try:
        proc = run(str(tmp_path), "--format", "json")
    finally:
        server.close()
    assert proc.returncode == 0, proc.stderr
    files = _by_name(json_report(proc), tmp_path)
    assert files["model.pkl"]["status"] == "complete"
    reasons = {name: f.get("reason") for name, f in files.items() if f["status"] == "skipped"}
    assert reasons == {
        "pipe.pkl": "not a regular file (FIFO)",
        "null.pkl": "symbolic link to a non-regular file (character device)",
        "loop-a.pkl": "symbolic link loop",
        "loop-b": "symbolic link loop",
        "dangling.pkl": "broken symbolic link",
        "dirlink": "symbolic link to a folder (not followed)",
        "s.sock": "not a regular file (socket)",
    }


def test_explicit_fifo_never_blocks(tmp_path: Path) -> None:
    fifo = tmp_path / "model.pkl"
    os.mkfifo(fifo)
    # Nobody ever writes to the FIFO: opening it for reading would block for good.
    proc = run(str(fifo), "--format", "json", "--timeout", "60")
    assert proc.returncode == 0, proc.stderr
    [entry] = json_report(proc)["files"]
    assert entry["status"] == "skipped"
    assert entry["reason"] == "not a regular file (FIFO)"
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_explicit_symlink_loop_is_an_error(tmp_path: Path) -> None:
    os.symlink("b.pkl", tmp_path / "a.pkl")
    os.symlink("a.pkl", tmp_path / "b.pkl")
    proc = run(str(tmp_path / "a.pkl"), "--format", "json")
    assert proc.returncode == 2
    [error] = json_report(proc)["target_errors"]
    assert error["error"].endswith("symbolic link loop")


def test_default_excludes_are_reported_as_skipped_under_verbose(tmp_path: Path) -> None:
    for folder in (".git/objects", ".hg", "__pycache__", "env/lib", "deep/.svn"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "evil.pkl").write_bytes(EVIL_PICKLE)
    (tmp_path / "env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (tmp_path / "conda" / "conda-meta").mkdir(parents=True)
    (tmp_path / "conda" / "evil.pkl").write_bytes(EVIL_PICKLE)
    (tmp_path / "model.pkl").write_bytes(SAFE_PICKLE)

    proc = run(str(tmp_path), "--format", "json")
    assert proc.returncode == 0, proc.stdout
    files = _by_name(json_report(proc), tmp_path)
    assert files["model.pkl"]["status"] == "complete"
    skipped = {n: f["reason"] for n, f in files.items() if f["status"] == "skipped"}
    hint = " (--no-default-excludes scans it)"
    assert skipped == {
        ".git": "excluded by default: version-control folder" + hint,
        ".hg": "excluded by default: version-control folder" + hint,
        "__pycache__": "excluded by default: Python bytecode cache (but for hash-based .pyc "
        "files, which import runs whatever the source's date)" + hint,
        "deep/.svn": "excluded by default: version-control folder" + hint,
        "env": "excluded by default: virtual environment" + hint,
        "conda": "excluded by default: conda environment" + hint,
    }

    quiet = run(str(tmp_path))
    assert b".git" not in quiet.stdout
    verbose = run(str(tmp_path), "--verbose")
    for name in (".git", ".hg", "__pycache__", "env", "conda", os.path.join("deep", ".svn")):
        line = f"{tmp_path / name}  (skipped: excluded by default: ".encode()
        assert line in verbose.stdout, name

    everything = run(str(tmp_path), "--no-default-excludes", "--format", "json")
    assert everything.returncode == 1
    scanned = {n for n, f in _by_name(json_report(everything), tmp_path).items()}
    assert os.path.join(".git", "objects", "evil.pkl") in scanned
    assert os.path.join("env", "lib", "evil.pkl") in scanned


def test_hash_based_bytecode_in_a_skipped_pycache_is_scanned(tmp_path: Path) -> None:
    """torch.hub imports a repository's hubconf.py: Python takes a hash-based .pyc of
    `__pycache__` without comparing dates (unchecked) or when the source's hash matches
    (checked), whatever its bytecode, so a shipped one is what runs. A timestamp one (what
    Python writes) stays skipped with the folder."""
    import py_compile

    (tmp_path / "hubconf.py").write_text("def model():\n    return 1\n")
    cache = tmp_path / "__pycache__"
    for mode, name in (
        ("UNCHECKED_HASH", "hubconf.cpython-311.pyc"),
        ("CHECKED_HASH", "hubconf.cpython-312.pyc"),
        ("TIMESTAMP", "hubconf.cpython-313.pyc"),
    ):
        py_compile.compile(
            str(tmp_path / "hubconf.py"),
            cfile=str(cache / name),
            invalidation_mode=py_compile.PycInvalidationMode[mode],
        )
    proc = run(str(tmp_path), "--format", "json")
    assert proc.returncode == 1, proc.stdout
    files = _by_name(json_report(proc), tmp_path)
    flagged = {
        os.path.basename(i["location"].split(" ")[0])
        for i in json_report(proc)["issues"]
        if i["rule"] == "MA4700"
    }
    assert flagged == {"hubconf.cpython-311.pyc", "hubconf.cpython-312.pyc"}
    os.mkfifo(cache / "other.cpython-311.pyc")  # a FIFO nobody writes: never opened, never blocks
    again = json_report(run(str(tmp_path), "--format", "json"))
    assert {os.path.basename(f["path"]) for f in again["files"]} >= {"hubconf.cpython-311.pyc"}
    assert os.path.join("__pycache__", "hubconf.cpython-313.pyc") not in files
    assert files["__pycache__"]["status"] == "skipped"


def test_a_named_virtual_environment_is_scanned(tmp_path: Path) -> None:
    (tmp_path / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (tmp_path / "evil.pkl").write_bytes(EVIL_PICKLE)
    assert run(str(tmp_path)).returncode == 1


def test_exclude_globs(tmp_path: Path) -> None:
    (tmp_path / "models" / "old").mkdir(parents=True)
    (tmp_path / "models" / "old" / "evil.pkl").write_bytes(EVIL_PICKLE)
    (tmp_path / "models" / "evil.bin").write_bytes(EVIL_PICKLE)
    (tmp_path / "models" / "ok.pkl").write_bytes(SAFE_PICKLE)
    (tmp_path / "fixtures").mkdir()
    (tmp_path / "fixtures" / "evil.pkl").write_bytes(EVIL_PICKLE)

    assert run("models", cwd=tmp_path).returncode == 1
    proc = run(
        ".",
        "--exclude",
        "models/old",
        "--exclude",
        "*.bin",
        "--exclude",
        "fixtures/",
        "--format",
        "json",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout
    files = {f["path"]: f for f in json_report(proc)["files"]}
    assert files[os.path.join(".", "models", "old")]["reason"] == "excluded by --exclude models/old"
    assert files[os.path.join(".", "models", "evil.bin")]["reason"] == "excluded by --exclude *.bin"
    assert files[os.path.join(".", "fixtures")]["reason"] == "excluded by --exclude fixtures/"
    assert files[os.path.join(".", "models", "ok.pkl")]["status"] == "complete"

    # Relative to the folder scanned, or as written from the working directory; `**` spans.
    for pattern in ("old/**", "models/old/*.pkl", "**/old", "**/evil.pkl"):
        proc = run("models", "--exclude", pattern, "--exclude", "*.bin", cwd=tmp_path)
        assert proc.returncode == 0, (pattern, proc.stdout)
    # An explicitly named file is excluded too (pre-commit passes file names).
    proc = run("fixtures/evil.pkl", "--exclude", "fixtures/**", "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0
    assert json_report(proc)["files"][0]["reason"] == "excluded by --exclude fixtures/**"


def test_bad_exclude_pattern_is_one_line_and_exit_2(tmp_path: Path) -> None:
    proc = run(str(tmp_path), "--exclude", "")
    assert proc.returncode == 2
    assert proc.stderr.count(b"\n") == 1 and b"--exclude" in proc.stderr


def test_undecodable_names_are_scanned_under_their_own_name(tmp_path: Path) -> None:
    name = os.fsencode(tmp_path) + b"/evil\xff\xfe.pkl"
    with open(name, "wb") as f:
        f.write(EVIL_PICKLE)
    proc = run(str(tmp_path), "--format", "json")
    assert proc.returncode == 1, proc.stderr
    [entry] = json_report(proc)["files"]
    assert entry["status"] == "complete"
    assert entry["path"].endswith("evil\\xff\\xfe.pkl")


@pytest.mark.parametrize("count", [300])
def test_large_walk_lists_every_entry(tmp_path: Path, count: int) -> None:
    for i in range(count):
        (tmp_path / f"f{i:04}.txt").write_text("x")
    os.mkfifo(tmp_path / "zz.fifo")
    proc = run(str(tmp_path), "--format", "json")
    files = json_report(proc)["files"]
    assert len(files) == count + 1
    assert files[-1]["reason"] == "not a regular file (FIFO)"
