"""An MLflow model's environment files: what environment restoration would install.

The models are written by MLflow's own `save_model` (`_mlflow_models.py`, in a child
process); only the requirements that point pip or conda away from the default index are
hand-chosen, as a model's author can ask MLflow to record them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from modelaudit.findings import FileStatus, IssueSeverity
from modelaudit.formats import Format, sniff_path
from modelaudit.rules import text as rt
from tests.cli._helper import json_report, run
from tests.dataformats._dataformats_util import assert_clean, rules_of, scan

WARN = IssueSeverity.WARNING


@pytest.fixture(scope="module")
def models(mlflow_saved: tuple[Path, Path]) -> Path:
    """The environment-file models (`_mlflow_models.py`), written with the shipped-code ones."""
    return mlflow_saved[0]


def _sources(path: Path) -> list[tuple[IssueSeverity, str]]:
    return [
        (i.severity, i.details["source"])
        for i in scan(path).issues
        if i.rule == rt.MLFLOW_ENV_SOURCE
    ]


@pytest.mark.parametrize(
    "name", ["requirements.txt", "constraints.txt", "conda.yaml", "python_env.yaml"]
)
def test_environment_files_are_recognised(models: Path, name: str) -> None:
    model = models / ("constrained" if name == "constraints.txt" else "pinned")
    assert sniff_path(str(model / name)) is Format.MLFLOW_ENV


def test_mlflow_saved_models_with_index_packages_are_quiet(models: Path) -> None:
    for model in ("pinned", "conda", "constrained"):
        for path in sorted((models / model).iterdir()):
            result = scan(path)
            assert_clean(result)
            assert not result.issues, (path, [i.message for i in result.issues])
    proc = run("scan", str(models / "pinned"), str(models / "conda"), str(models / "constrained"))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_requirements_off_the_index_warn_in_an_mlflow_model(models: Path) -> None:
    expected = [(WARN, "vcs"), (WARN, "index"), (WARN, "url"), (WARN, "local path")]
    offsite = models / "offsite"
    assert _sources(offsite / "requirements.txt") == expected
    assert _sources(offsite / "conda.yaml") == expected
    assert_clean(scan(offsite / "python_env.yaml"))  # `-r requirements.txt` beside it
    [first, *_] = [i for i in scan(offsite / "requirements.txt").issues]
    assert first.details["line"] == 3
    assert "github.com/example/sklearn-extras" in first.message
    proc = run("scan", str(offsite), "--format", "json")
    assert proc.returncode == 1
    report = json_report(proc)
    warned = {
        i["location"].rsplit("/", 1)[-1] for i in report["issues"] if i["severity"] == "warning"
    }
    assert warned == {"requirements.txt", "conda.yaml"}
    assert all(i["rule"] == rt.MLFLOW_ENV_SOURCE for i in report["issues"])


def test_the_same_requirements_outside_an_mlflow_model_are_info(
    models: Path, tmp_path: Path
) -> None:
    """A project's requirements file is installed by hand: the same lines without MLflow's
    first line (its own pin) and without an `MLmodel` beside them are INFO."""
    written = (models / "offsite" / "requirements.txt").read_text()
    first, rest = written.split("\n", 1)
    assert first.startswith("mlflow==")
    (tmp_path / "requirements.txt").write_text(rest)
    result = scan(tmp_path / "requirements.txt")
    assert result.status is FileStatus.COMPLETE
    assert rules_of(result, WARN) == set()
    assert rules_of(result, IssueSeverity.INFO) == {rt.MLFLOW_ENV_SOURCE}
    assert run("scan", str(tmp_path)).returncode == 0


def test_mlflow_written_requirements_warn_without_mlmodel_beside(
    models: Path, tmp_path: Path
) -> None:
    """The file MLflow wrote (its first requirement pins MLflow) is judged the same with or
    without `MLmodel` beside it, as a remote target's spooled copy has none."""
    shutil.copy(models / "offsite" / "requirements.txt", tmp_path / "requirements.txt")
    assert _sources(tmp_path / "requirements.txt") == _sources(
        models / "offsite" / "requirements.txt"
    )
    assert rules_of(scan(tmp_path / "requirements.txt"), WARN) == {rt.MLFLOW_ENV_SOURCE}


@pytest.mark.parametrize(
    ("line", "source"),
    [
        ("-i https://pypi.example.net/simple", "index"),
        ("--index-url=https://pypi.example.net/simple", "index"),
        ("--find-links /srv/wheels", "index"),
        ("--trusted-host pypi.example.net", "index"),
        ("-e git+https://github.com/example/x#egg=x", "editable"),
        ("--editable ../src", "editable"),
        ("-r https://example.net/more.txt", "include"),
        ("-c ../../constraints.txt", "include"),
        ("hg+https://hg.example.net/x#egg=x", "vcs"),
        ("https://files.example.net/x-1.0.tar.gz", "url"),
        ("file:///srv/x-1.0.whl", "url"),
        ("x[extra] @ file:///srv/x", "url"),
        ("/srv/wheels/x-1.0-py3-none-any.whl", "local path"),
        ("C:\\wheels\\x.whl", "local path"),
        ("x-1.0.tar.gz", "local path"),
        ("numpy==2.4.6 \\\n  --hash=sha256:00", None),
        ("numpy>=2; python_version > '3.8'  # a comment", None),
        ("-r requirements.txt", None),
        ("-c constraints.txt", None),
        ("--no-binary :all:", None),
        ("# https://example.net/not-a-requirement", None),
    ],
)
def test_requirement_lines(tmp_path: Path, line: str, source: str | None) -> None:
    (tmp_path / "MLmodel").write_text("flavors: {}\n")
    path = tmp_path / "requirements.txt"
    path.write_text(f"mlflow==3.17.2\n{line}\n")
    assert _sources(path) == ([(WARN, source)] if source else [])


def test_python_env_yaml_is_mlflow_shaped_on_its_own(tmp_path: Path) -> None:
    path = tmp_path / "python_env.yaml"
    path.write_text(
        "python: 3.11.7\nbuild_dependencies:\n- pip==26.3\n"
        "- --index-url https://pypi.example.net/simple\ndependencies:\n- -r requirements.txt\n"
    )
    assert _sources(path) == [(WARN, "index")]


def test_conda_channels_given_as_urls_or_paths_warn(tmp_path: Path) -> None:
    (tmp_path / "MLmodel").write_text("flavors: {}\n")
    path = tmp_path / "conda.yaml"
    path.write_text(
        "name: env\nchannels:\n- https://conda.example.net/channel\n- conda-forge/label/dev\n"
        "dependencies:\n- python=3.11.7\n- file:///srv/channel::numpy=2.4\n"
        "- https://conda.example.net/x-1.0-0.conda\n- conda-forge::scipy\n"
    )
    assert _sources(path) == [(WARN, "index"), (WARN, "index"), (WARN, "url")]


def test_attackers_files_named_like_environment_files_are_still_caught(tmp_path: Path) -> None:
    pickle_file = tmp_path / "requirements.txt"
    pickle_file.write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")
    assert rules_of(scan(pickle_file), IssueSeverity.CRITICAL)
    conda = tmp_path / "conda.yaml"
    conda.write_text("name: mlflow-env\nextra: !!python/object/apply:os.system ['id']\n")
    assert rules_of(scan(conda), IssueSeverity.CRITICAL)


def test_every_line_is_read_and_an_unread_environment_is_not_complete(tmp_path: Path) -> None:
    (tmp_path / "MLmodel").write_text("flavors: {}\n")
    path = tmp_path / "requirements.txt"
    path.write_text("numpy\n" * 200_000 + "git+https://example.net/x#egg=x\n")
    assert _sources(path) == [(WARN, "vcs")]
    conda = tmp_path / "conda.yaml"
    conda.write_text("name: mlflow-env\ndependencies:\n" + "- numpy\n" * 200_000)
    assert scan(conda).status is FileStatus.INCONCLUSIVE


@pytest.mark.parametrize(
    "line",
    [
        "--index https://pypi.example.net/simple",
        "--extra\thttps://pypi.example.net/simple",
        "--index-url\thttps://pypi.example.net/simple",
        "-i\thttps://pypi.example.net/simple",
        "--extra-index=https://pypi.example.net/simple",
        "--find /srv/wheels",
        "--trusted pypi.example.net",
        "--edit ../src",
        "--requirement\thttps://example.net/more.txt",
        "--cons https://example.net/more.txt",
    ],
)
def test_option_spellings_pip_accepts_are_read_as_pip_reads_them(tmp_path: Path, line: str) -> None:
    """pip splits option text like a shell (a tab separates too) and optparse expands any
    unambiguous prefix of a long option; pip's own line parser says what each line sets."""
    from pip._internal.req.req_file import get_line_parser

    _, options = get_line_parser(None)(line)
    elsewhere = ("index_url", "extra_index_urls", "find_links", "trusted_hosts", "editables")
    set_by_pip = {k for k in (*elsewhere, "requirements", "constraints") if getattr(options, k)}
    assert set_by_pip, "pip reads this line as pointing elsewhere"
    (tmp_path / "MLmodel").write_text("flavors: {}\n")
    path = tmp_path / "requirements.txt"
    path.write_text(f"mlflow==3.17.2\n{line}\n")
    found = _sources(path)
    assert len(found) == 1 and found[0][0] is WARN, found
