"""skops archives written by the real skops: the types their schema names are judged.

`skops.io.dump` records functions and classes by name (dumping never calls them); a load
with the documented `trusted=get_untrusted_types(file=...)` builds whatever is named.
"""

from __future__ import annotations

import functools
import operator
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelaudit.findings import IssueSeverity
from modelaudit.rules import text as rt
from tests.dataformats._dataformats_util import assert_clean, rules_of, scan

sio = pytest.importorskip("skops.io")


def _dump(tmp_path: Path, name: str, obj: Any) -> Path:
    path = tmp_path / f"{name}.skops"
    sio.dump(obj, path)
    return path


@pytest.mark.parametrize(
    ("name", "obj", "named"),
    [
        ("function", {"hook": os.system}, "system"),
        ("partial", functools.partial(subprocess.check_output, ["id"]), "check_output"),
        ("operator", operator.methodcaller("system", "id"), "methodcaller"),
    ],
)
def test_dangerous_names_in_the_schema_are_critical(
    tmp_path: Path, name: str, obj: Any, named: str
) -> None:
    path = _dump(tmp_path, name, obj)
    assert named in " ".join(sio.get_untrusted_types(file=path))
    result = scan(path)
    crit = [i for i in result.issues if i.severity is IssueSeverity.CRITICAL]
    assert crit and all(i.rule == rt.SKOPS_DANGEROUS_TYPE for i in crit), result.issues
    assert any(named in i.details["type"] for i in crit)


def test_unknown_class_is_a_warning(tmp_path: Path) -> None:
    path = _dump(tmp_path, "unknown", {"k": _Unknown()})
    assert rules_of(scan(path), IssueSeverity.WARNING) == {rt.SKOPS_UNKNOWN_TYPE}


def test_real_sklearn_models_are_clean(tmp_path: Path) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, SplineTransformer, StandardScaler

    rng = np.random.default_rng(0)
    x = rng.random((40, 3))
    y = (x[:, 0] > 0.5).astype(int)
    models = {
        "hgb": HistGradientBoostingClassifier(max_iter=3).fit(x, y),
        "pipeline": make_pipeline(
            FunctionTransformer(np.log1p),
            SplineTransformer(),
            StandardScaler(),
            LogisticRegression(),
        ).fit(x, y),
    }
    for name, model in models.items():
        result = scan(_dump(tmp_path, name, model))
        assert_clean(result)
        assert result.metadata["skops_types"] > 3


class _Unknown:
    """A plain class of this test module: skops records it by name."""


def test_mlmodel_trusting_a_dangerous_skops_type_is_critical(tmp_path: Path) -> None:
    """mlflow.sklearn passes the MLmodel's skops_trusted_types to skops.io.load."""
    import warnings

    mlflow_sklearn = pytest.importorskip("mlflow.sklearn")
    from sklearn.ensemble import HistGradientBoostingClassifier

    x = np.random.default_rng(0).random((20, 3))
    model = HistGradientBoostingClassifier(max_iter=2).fit(x, (x[:, 0] > 0.5).astype(int))
    predictor = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow_sklearn.save_model(model, tmp_path / "legit", skops_trusted_types=[predictor])
        mlflow_sklearn.save_model(
            model, tmp_path / "evil", skops_trusted_types=[predictor, "posix.system"]
        )
    assert_clean(scan(tmp_path / "legit" / "MLmodel"))
    evil = scan(tmp_path / "evil" / "MLmodel")
    crit = [i for i in evil.issues if i.severity is IssueSeverity.CRITICAL]
    assert [i.details["type"] for i in crit] == ["posix.system"]
    assert crit[0].rule == rt.SKOPS_DANGEROUS_TYPE
