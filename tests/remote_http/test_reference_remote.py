"""The reference page's Hugging Face examples, as written, against a local Hub (HF_ENDPOINT).

The page's commands and its Python block are read out of the page (tests/reporting/_reference);
`promptfoo scan-model` runs as `modelaudit scan`. `your_token_here` is the page's placeholder
for a real token, so the Hub's accepted token is exported instead.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.remote_http._remote_http_servers import HF_GOOD_TOKEN, FakeHub, Repo
from tests.reporting import _reference as ref
from tests.reporting._doc_layout import EVIL
from tests.reporting.test_reference_examples import PROGRAMMATIC_CHECK

REPO = Path(__file__).resolve().parents[2]
HUB_COMMANDS = sorted({c for c in ref.commands() if re.search(r"hf://|huggingface\.co", c)})
PRIVATE = "your-org/private-model"
#: The page's whole Python block, the Hugging Face line included, indentation restored.
PROGRAMMATIC = """\
from modelaudit.core import scan_model_directory_or_file
# Scan a single model
results = scan_model_directory_or_file("path/to/model.pkl")
# Scan a HuggingFace model URL
results = scan_model_directory_or_file("https://huggingface.co/bert-base-uncased")
"""


def _run(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run(
        ["sh", "-ec", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def private_repo(hub: FakeHub) -> FakeHub:
    hub.add(PRIVATE, Repo({"model.pkl": EVIL}, private=True))
    return hub


def test_the_page_has_these_commands() -> None:
    assert HUB_COMMANDS == [
        "promptfoo scan-model hf://your-org/private-model",
        "promptfoo scan-model https://huggingface.co/bert-base-uncased",
    ]


def test_private_model_with_the_exported_token(private_repo: FakeHub, tmp_path: Path) -> None:
    ref.assert_from_reference(
        "# Authenticate for private models\nexport HF_TOKEN=your_token_here\n"
        f"promptfoo scan-model hf://{PRIVATE}"
    )
    command = ref.as_modelaudit(HUB_COMMANDS[0])
    done = _run(f"export HF_TOKEN={HF_GOOD_TOKEN}\n{command}", tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"hf://{PRIVATE}/model.pkl" in done.stdout and "CRITICAL" in done.stdout
    refused = _run(f"unset HF_TOKEN\n{command}", tmp_path)
    assert refused.returncode == 2
    assert "HF_TOKEN" in refused.stdout + refused.stderr


def test_public_model_url(hub: FakeHub, tmp_path: Path) -> None:
    done = _run(ref.as_modelaudit(HUB_COMMANDS[1]), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Scanned 1 file(s)" in done.stdout


def test_programmatic_usage_as_written(hub: FakeHub, tmp_path: Path) -> None:
    """The block prints what it found on its last scan before the check: the Hub model."""
    ref.assert_from_reference(PROGRAMMATIC + PROGRAMMATIC_CHECK)
    (tmp_path / "path" / "to" / "models").mkdir(parents=True)
    (tmp_path / "path" / "to" / "model.pkl").write_bytes(EVIL)
    (tmp_path / "path" / "to" / "models" / "unsafe_model.pkl").write_bytes(EVIL)
    script = (
        PROGRAMMATIC
        + PROGRAMMATIC_CHECK
        + "print(sorted({i['severity'] for i in results['issues']}))\n"
    )
    (tmp_path / "example.py").write_text(script)
    done = _run(f"{sys.executable} example.py", tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["No issues found!", "['critical']"]
