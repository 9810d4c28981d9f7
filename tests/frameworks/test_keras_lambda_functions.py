"""Every function a Keras Lambda carries is read: `function`, `output_shape`, `mask` and
functions inside `arguments`, in the Keras 2 (H5) and Keras 3 (`.keras`) layouts.

Hostile code objects are compiled here and marshalled, never run; the configs around them
are laid out exactly as Keras writes them. Benign files are saved by Keras itself.
"""

from __future__ import annotations

import base64
import marshal
from pathlib import Path
from typing import Any

import pytest

from modelaudit.findings import IssueSeverity
from modelaudit.rules import frameworks as R
from tests.frameworks._frameworks_helpers import rules_at, scan
from tests.frameworks.test_keras_h5 import _dense, _sequential, lambda_layer, write_keras_h5
from tests.frameworks.test_keras_zip import _layer, keras3_config, write_keras_zip

CRIT = IssueSeverity.CRITICAL
WARN = IssueSeverity.WARNING
HARMLESS = "lambda x: x * 2.0"
EVIL = "lambda s: __import__('os').system('id') or s"


def _blob(source: str) -> str:
    code = compile(source, "<lambda>", "eval").co_consts[0]
    return base64.b64encode(marshal.dumps(code)).decode("ascii")


def _keras2_lambda(**extra: Any) -> dict[str, Any]:
    layer = lambda_layer(HARMLESS)
    layer["config"].update(extra)
    return layer


def _critical_lambda(result: Any) -> list[Any]:
    return [i for i in result.issues if i.rule == R.KERAS_LAMBDA_DANGEROUS]


@pytest.mark.parametrize("key", ["output_shape", "mask"])
def test_keras2_code_in_output_shape_or_mask(tmp_path: Path, key: str) -> None:
    layer = _keras2_lambda(
        **{key: [_blob(EVIL), None, None], f"{key}_type": "lambda", f"{key}_module": "__main__"}
    )
    result = scan(write_keras_h5(tmp_path / "m.h5", _sequential([_dense("d", 4), layer])))
    found = _critical_lambda(result)
    assert found and found[0].severity is CRIT
    assert "system" in found[0].details["evidence"]
    assert key in found[0].message


def test_keras2_named_function_from_os_as_output_shape(tmp_path: Path) -> None:
    layer = _keras2_lambda(
        output_shape="system", output_shape_type="function", output_shape_module="os"
    )
    result = scan(write_keras_h5(tmp_path / "m.h5", _sequential([layer])))
    assert R.KERAS_DANGEROUS_MODULE in rules_at(result, CRIT)


def test_keras2_raw_output_shape_is_data(tmp_path: Path) -> None:
    layer = _keras2_lambda(output_shape=[4], output_shape_type="raw", mask=None)
    result = scan(write_keras_h5(tmp_path / "m.h5", _sequential([layer])))
    assert rules_at(result, CRIT) == set()
    assert rules_at(result, WARN) == {R.KERAS_LAMBDA}


def _lambda_object(source: str) -> dict[str, Any]:
    return {
        "class_name": "__lambda__",
        "config": {"code": _blob(source), "defaults": None, "closure": None},
    }


@pytest.mark.parametrize("key", ["output_shape", "mask"])
def test_keras3_output_shape_or_mask_objects(tmp_path: Path, key: str) -> None:
    lam = _layer(
        "Lambda",
        {
            "name": "lam",
            "function": _lambda_object(HARMLESS),
            key: _lambda_object(EVIL),
            "arguments": {},
        },
    )
    result = scan(write_keras_zip(tmp_path / "m.keras", keras3_config([lam])))
    assert _critical_lambda(result)


def test_keras3_function_inside_arguments(tmp_path: Path) -> None:
    # serialize_keras_object(lambda) keeps func_dump's (code, defaults, closure) as `value`
    hidden = {"class_name": "__lambda__", "config": {"value": [_blob(EVIL), None, None]}}
    lam = _layer(
        "Lambda",
        {
            "name": "lam",
            "function": _lambda_object("lambda x, f=None: x"),
            "arguments": {"f": hidden},
        },
    )
    result = scan(write_keras_zip(tmp_path / "m.keras", keras3_config([lam])))
    found = _critical_lambda(result)
    assert found and "system" in found[0].details["evidence"]


TF_APIS = [
    "lambda x: tf.io.write_file('/tmp/p', 'x') or x",
    "lambda x: tf.io.gfile.GFile('/etc/passwd').read() and x",
    "lambda x: tf.io.gfile.remove('/tmp/model') or x",
    "lambda x: tf.py_function(print, [x], tf.float32)",
    "lambda x: tf.compat.v1.py_func(print, [x], tf.float32)",
    "lambda x: tf.numpy_function(print, [x], tf.float32)",
    "lambda x: tf.keras.utils.get_file('m', 'https://example.invalid/m') and x",
    "lambda x: tf.load_op_library('/tmp/evil.so') and x",
    "lambda x: tf.raw_ops.WriteFile(filename='/tmp/p', contents='x') or x",
    "lambda x: tf.io.read_file('/etc/passwd') and x",
]


@pytest.mark.parametrize("source", TF_APIS)
def test_tensorflow_file_and_process_apis_in_lambda_code(tmp_path: Path, source: str) -> None:
    cfg = keras3_config(
        [_layer("Lambda", {"name": "lam", "function": _lambda_object(source), "arguments": {}})]
    )
    result = scan(write_keras_zip(tmp_path / "m.keras", cfg))
    assert _critical_lambda(result), source


def test_tensorflow_math_in_lambda_code_stays_a_warning(tmp_path: Path) -> None:
    source = "lambda x: tf.math.reduce_sum(tf.nn.relu(x), axis=-1, keepdims=True)"
    cfg = keras3_config(
        [_layer("Lambda", {"name": "lam", "function": _lambda_object(source), "arguments": {}})]
    )
    result = scan(write_keras_zip(tmp_path / "m.keras", cfg))
    assert rules_at(result, CRIT) == set()
    assert rules_at(result, WARN) == {R.KERAS_LAMBDA}


@pytest.mark.parametrize("name", ["lambda_functions.keras", "lambda_functions.h5"])
def test_keras_saved_lambda_with_shape_and_mask_functions(tf_models: Path, name: str) -> None:
    result = scan(tf_models / name)
    assert rules_at(result, CRIT) == set()
    assert rules_at(result, WARN) == {R.KERAS_LAMBDA}
