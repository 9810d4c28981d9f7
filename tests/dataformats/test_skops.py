"""skops archives written by the real skops: the types their schema names are judged.

`skops.io.dump` records functions and classes by name (dumping never calls them); a load
with the documented `trusted=get_untrusted_types(file=...)` builds whatever is named.
"""

from __future__ import annotations

import functools
import io
import json
import operator
import os
import pickle
import subprocess
import warnings
import zipfile
from collections import OrderedDict
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
    """What skops.io.dump writes for common estimators, pipelines and searches names nothing to
    warn about: FunctionNodes of numpy ufuncs, TypeNodes of dtypes, scorers, loss functions,
    trees, OrderedDicts, tuples and sets (DictNode/ListNode/SetNode/TupleNode types are judged)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression, SGDClassifier, SGDRegressor
    from sklearn.metrics import f1_score, make_scorer
    from sklearn.model_selection import GridSearchCV
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import (
        FunctionTransformer,
        MinMaxScaler,
        OneHotEncoder,
        SplineTransformer,
        StandardScaler,
    )
    from sklearn.svm import SVC

    rng = np.random.default_rng(0)
    x = rng.random((40, 3))
    y = (x[:, 0] > 0.5).astype(int)
    docs = ["the cat sat", "a dog ran", "the bird flew", "cat and dog"] * 3
    models = {
        "hgb": HistGradientBoostingClassifier(max_iter=3).fit(x, y),
        "forest": RandomForestClassifier(n_estimators=2).fit(x, y),
        "sgd": SGDClassifier(loss="modified_huber").fit(x, y),
        "sgd_regressor": SGDRegressor().fit(x, x[:, 1]),
        "pipeline": make_pipeline(
            FunctionTransformer(np.log1p, inverse_func=np.expm1),
            SplineTransformer(),
            StandardScaler(),
            LogisticRegression(),
        ).fit(x, y),
        "columns": make_pipeline(
            ColumnTransformer(
                [("s", MinMaxScaler(), [0, 1]), ("o", OneHotEncoder(handle_unknown="ignore"), [2])]
            ),
            FunctionTransformer(np.sqrt),
            LogisticRegression(),
        ).fit(x.round(1), y),
        "grid": GridSearchCV(
            make_pipeline(StandardScaler(), SVC()),
            {"svc__C": [1.0, 2.0]},
            cv=2,
            scoring=make_scorer(f1_score),
        ).fit(x, y),
        "tfidf": make_pipeline(TfidfVectorizer(), MultinomialNB()).fit(docs, [0, 1, 0, 1] * 3),
        "containers": {"d": OrderedDict(a=1), "t": (1, "a"), "s": {1, 2}, "a": np.arange(3)},
    }
    for name, model in models.items():
        result = scan(_dump(tmp_path, name, model))
        assert_clean(result)
        assert result.metadata["skops_types"] >= 2  # the schema was read as one


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
        # requirements given, as the MLflow fixture writers give them: inferring them
        # loads the model in a child process MLflow starts (~5 s), for files not read here
        mlflow_sklearn.save_model(
            model,
            tmp_path / "legit",
            skops_trusted_types=[predictor],
            pip_requirements=["scikit-learn==1.9.1", "numpy==2.4.6"],
        )
    # the same model trusting one more type, as save_model writes the list (one save is
    # most of this test's time)
    written = (tmp_path / "legit" / "MLmodel").read_text()
    assert f"- {predictor}\n" in written
    for name, extra in (("evil", "posix.system"), ("getattr", "builtins.getattr")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "MLmodel").write_text(
            written.replace(f"- {predictor}\n", f"- {predictor}\n    - {extra}\n")
        )
    assert_clean(scan(tmp_path / "legit" / "MLmodel"))
    evil = scan(tmp_path / "evil" / "MLmodel")
    crit = [i for i in evil.issues if i.severity is IssueSeverity.CRITICAL]
    assert [i.details["type"] for i in crit] == ["posix.system"]
    assert crit[0].rule == rt.SKOPS_DANGEROUS_TYPE
    # any node of the file may use a trusted name: getattr is not judged by its call there
    resolver = scan(tmp_path / "getattr" / "MLmodel")
    assert rules_of(resolver, IssueSeverity.CRITICAL) == {rt.SKOPS_DANGEROUS_TYPE}


#: The MLmodel mlflow.lightgbm 3.17 writes for an LGBMClassifier saved as skops (its default):
#: the flavor's own trusted list, which it adds to every such model.
_LIGHTGBM_MLMODEL = """flavors:
  lightgbm:
    code: null
    data: model.skops
    lgb_version: 4.7.0
    model_class: lightgbm.sklearn.LGBMClassifier
    serialization_format: skops
    skops_trusted_types:
    - lightgbm.sklearn.LGBMClassifier
    - lightgbm.sklearn.LGBMRegressor
    - collections.OrderedDict
    - lightgbm.basic.Booster{extra}
  python_function:
    data: model.skops
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.lightgbm
    python_version: 3.11.7
mlflow_version: 3.17.2
model_id: null
model_size_bytes: 43060
model_uuid: 45e34d382dc34512a37f7a74df8c2dea
prompts: null
utc_time_created: '2026-12-07 17:26:32.534998'
"""


def test_mlflow_lightgbm_own_trusted_types_are_not_reported(tmp_path: Path) -> None:
    """mlflow.lightgbm trusts lightgbm.basic.Booster for every model it saves; the model.skops
    that uses it is judged node by node (a Booster called with a model_file is CRITICAL)."""
    legit = tmp_path / "legit" / "MLmodel"
    legit.parent.mkdir()
    legit.write_text(_LIGHTGBM_MLMODEL.format(extra=""))
    assert_clean(scan(legit))
    evil = tmp_path / "evil" / "MLmodel"
    evil.parent.mkdir()
    evil.write_text(_LIGHTGBM_MLMODEL.format(extra="\n    - posix.system\n    - [unhashable]"))
    crit = [i for i in scan(evil).issues if i.severity is IssueSeverity.CRITICAL]
    assert [i.details["type"] for i in crit] == ["posix.system"]
    # another flavor's list gets no such allowance
    other = tmp_path / "other" / "MLmodel"
    other.parent.mkdir()
    other.write_text(_LIGHTGBM_MLMODEL.format(extra="").replace("  lightgbm:", "  sklearn:"))
    crit = [i for i in scan(other).issues if i.severity is IssueSeverity.CRITICAL]
    assert [i.details["type"] for i in crit] == ["lightgbm.basic.Booster"]


def test_skops_booster_called_through_a_reduce_node_is_critical(tmp_path: Path) -> None:
    """What trusting Booster would let a model.skops do: call it with a model file."""
    node = {
        "__class__": "Booster",
        "__module__": "lightgbm.basic",
        "__loader__": "ReduceNode",
        "__reduce__": {
            "__class__": "tuple",
            "__module__": "builtins",
            "__loader__": "TupleNode",
            "content": [{"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode",
                         "content": '"/tmp/other.txt"', "is_json": True}],
        },
        "attrs": {"__class__": "dict", "__module__": "builtins", "__loader__": "DictNode",
                  "content": {}},
    }  # fmt: skip
    result = scan(_edited(tmp_path, "booster", node))
    assert rt.SKOPS_DANGEROUS_TYPE in rules_of(result, IssueSeverity.CRITICAL)


def _edited(
    tmp_path: Path,
    name: str,
    node: dict[str, Any],
    protocol: int | None = None,
    extra: dict[str, bytes] | None = None,
    encoding: str = "utf-8",
) -> Path:
    """A real skops dump of {"k": [1]} whose schema.json has `node` put under "k" (and its
    protocol changed): what a hand-edited file holds, still readable by get_untrusted_types."""
    path = _dump(tmp_path, name, {"k": [1]})
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    schema = json.loads(members["schema.json"])
    schema["content"]["k"] = node
    if protocol is not None:
        schema["protocol"] = protocol
    members["schema.json"] = json.dumps(schema).encode(encoding)
    members.update(extra or {})
    with zipfile.ZipFile(path, "w") as z:
        for member, data in members.items():
            z.writestr(member, data)
    return path


def _value(value: Any) -> dict[str, Any]:
    """A JsonNode, as skops.io.dump writes a str or int."""
    return {
        "__class__": type(value).__name__,
        "__module__": "builtins",
        "__loader__": "JsonNode",
        "content": json.dumps(value),
        "is_json": True,
    }


def _node(loader: str, dotted: str, **fields: Any) -> dict[str, Any]:
    module, _, name = dotted.rpartition(".")
    return {"__class__": name, "__module__": module, "__loader__": loader, **fields}


def _critical_types(path: Path) -> set[str]:
    result = scan(path)
    crit = [i for i in result.issues if i.severity is IssueSeverity.CRITICAL]
    assert all(i.rule == rt.SKOPS_DANGEROUS_TYPE for i in crit), result.issues
    return {i.details["type"] for i in crit}


_EMPTY_LIST = _node("ListNode", "builtins.list", content=[])


@pytest.mark.parametrize(
    ("loader", "dotted", "fields"),
    [
        # ListNode._construct: gettype(module, class)([items]) -> check_output(["id"])
        ("ListNode", "subprocess.check_output", {"content": [_value("id")]}),
        ("SetNode", "subprocess.call", {"content": [_value("id")]}),
        # DictNode._construct: gettype(module, class)() -> set_trace()
        ("DictNode", "pdb.set_trace", {"content": {}, "key_types": _EMPTY_LIST}),
    ],
)
def test_container_nodes_call_the_type_they_name(
    tmp_path: Path, loader: str, dotted: str, fields: dict[str, Any]
) -> None:
    """skops builds a dict/list/set by calling the type its node names, with the content."""
    path = _edited(tmp_path, loader, _node(loader, dotted, **fields))
    assert sio.get_untrusted_types(file=path) == [dotted]
    assert _critical_types(path) == {dotted}


def test_protocol_0_function_node_imports_its_content_name(tmp_path: Path) -> None:
    """A file may claim protocol 0, whose FunctionNode imports content's module_path.function
    and ignores __module__/__class__ (here a harmless numpy ufunc)."""
    node = _node(
        "FunctionNode", "numpy.log1p", content={"module_path": "posix", "function": "system"}
    )
    path = _edited(tmp_path, "proto0", node, protocol=0)
    assert sio.get_untrusted_types(file=path) == ["posix.system"]
    assert _critical_types(path) == {"posix.system"}


def test_getattr_as_a_transformer_function_is_critical(tmp_path: Path) -> None:
    """builtins.getattr is judged by its call in a pickle; in a skops file nothing checks the call:
    FunctionTransformer calls it with the data and the file's own kw_args."""
    from sklearn.preprocessing import FunctionTransformer

    path = _dump(tmp_path, "getattr", FunctionTransformer(func=getattr))
    assert "builtins.getattr" in sio.get_untrusted_types(file=path)
    assert _critical_types(path) == {"builtins.getattr"}


@pytest.mark.parametrize(
    ("dotted", "args"),
    [
        # LossNode calls the type it names with the file's arguments
        (
            "torch.storage._load_from_bytes",
            [
                {
                    "__class__": "bytes",
                    "__module__": "builtins",
                    "__loader__": "BytesNode",
                    "file": "p.bin",
                }
            ],
        ),
        ("catboost.Pool", [_value("/etc/passwd")]),
    ],
)
def test_reduce_constructors_judged_by_their_call_are_critical(
    tmp_path: Path, dotted: str, args: list[dict[str, Any]]
) -> None:
    node = _node(
        "LossNode",
        dotted,
        __reduce__={"args": _node("TupleNode", "builtins.tuple", content=args)},
        content=_value({}),
    )
    path = _edited(tmp_path, "loss", node, extra={"p.bin": b"\x80\x02N."})
    assert dotted in sio.get_untrusted_types(file=path)
    assert _critical_types(path) == {dotted}


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32-le"])
def test_schema_in_utf16_or_utf32_is_read(tmp_path: Path, encoding: str) -> None:
    """skops reads schema.json with json.loads(bytes), which detects UTF-16 and UTF-32."""
    node = _node("FunctionNode", "posix.system")
    path = _edited(tmp_path, encoding, node, encoding=encoding)
    assert sio.get_untrusted_types(file=path) == ["posix.system"]
    assert _critical_types(path) == {"posix.system"}


def test_a_booster_rebuilt_from_its_state_is_not_critical(tmp_path: Path) -> None:
    """An ObjectNode is built with __new__ and __setstate__, never called: an XGBoost Booster
    restored from the bytes it holds is what XGBClassifier dumps, and is not a load by path."""
    node = _node("ObjectNode", "xgboost.core.Booster", content=_value({}))
    assert not _critical_types(_edited(tmp_path, "booster", node))
    called = _node("ListNode", "xgboost.core.Booster", content=[_value("/tmp/other.model")])
    assert _critical_types(_edited(tmp_path, "called", called)) == {"xgboost.core.Booster"}


def _tweaked_with(tmp_path: Path, name: str, members: dict[str, bytes]) -> Path:
    """A real dump of {"h": [1]} with `members` added (a later schema.json is a duplicate)."""
    path = _dump(tmp_path, name, {"h": [1]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        with zipfile.ZipFile(path, "a") as z:
            for member, data in members.items():
                z.writestr(member, data)
    return path


def test_members_and_old_advisories_are_covered(tmp_path: Path) -> None:
    """Shapes of earlier skops bypasses stay covered: a pickled object array member, a .skops
    inside the archive, a second schema.json (zipfile reads the last), CVE-2025-54413's
    MethodNode claiming a trusted class for another object and CVE-2025-54412's operator call."""
    evil = _dump(tmp_path, "inner", {"h": os.system})
    schema = json.loads(zipfile.ZipFile(evil).read("schema.json"))
    array = io.BytesIO()
    np.save(array, np.array([_System()], dtype=object), allow_pickle=True)
    for name, members in {
        "npy": {"x.npy": array.getvalue()},
        "nested": {"inner.skops": evil.read_bytes()},
        "duplicate": {"schema.json": json.dumps(schema).encode()},
    }.items():
        result = scan(_tweaked_with(tmp_path, name, members))
        assert any(i.severity is IssueSeverity.CRITICAL for i in result.issues), name
    lr = "sklearn.linear_model._logistic.LogisticRegression"
    method = _node(
        "MethodNode", lr, content={"func": "fit", "obj": _node("TypeNode", "posix.system")}
    )
    assert "posix.system" in _critical_types(_edited(tmp_path, "method", method))
    call = _node(
        "OperatorFuncNode",
        "operator.call",
        attrs=_node("TupleNode", "builtins.tuple", content=[_node("TypeNode", "posix.system")]),
    )
    assert _critical_types(_edited(tmp_path, "operator", call)) == {"operator.call", "posix.system"}


class _System:
    """Pickles as a call of os.system (only ever pickled here, never unpickled)."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, ("id",))


def test_unknown_types_do_not_crowd_out_a_dangerous_one(tmp_path: Path) -> None:
    """The findings per schema are capped; names sorting before posix.system (unknown
    classes aaa0.Thing...) must not take every place, leaving only WARNINGs."""
    unknown = [_node("ObjectNode", f"aaa{i}.Thing") for i in range(60)]
    node = _node("ListNode", "builtins.list", content=[*unknown, _node("TypeNode", "posix.system")])
    path = _edited(tmp_path, "crowd", node)
    assert "posix.system" in sio.get_untrusted_types(file=path)
    assert _critical_types(path) == {"posix.system"}


def test_bytes_values_are_data_unless_they_hold_a_pickle(tmp_path: Path) -> None:
    """skops keeps bytes values as `<uuid>.bin` members and returns them as bytes: raw bytes
    (an XGBoost booster's model) are not a broken pickle, a pickle there is still one."""
    values = {"blob": b"{L\x00\x00\x00raw", "buf": bytearray(b"\x00\x01"), "text": b"xx"}
    raw = _dump(tmp_path, "raw", values)
    assert sum(n.endswith(".bin") for n in zipfile.ZipFile(raw).namelist()) == 3
    assert_clean(scan(raw))
    held = _dump(tmp_path, "held", {"blob": pickle.dumps(_System())})
    result = scan(held)
    assert rules_of(result, IssueSeverity.CRITICAL) >= {"MA1001"}, result.issues


def test_a_dangerous_trusted_type_past_a_thousand_harmless_ones_is_critical(
    tmp_path: Path,
) -> None:
    """The list was read to its 1,000th entry: the 1,001st went unjudged."""
    padding = "".join(f"\n    - collections.OrderedDict{n}" for n in range(1000))
    mlmodel = tmp_path / "MLmodel"
    mlmodel.write_text(_LIGHTGBM_MLMODEL.format(extra=padding + "\n    - posix.system"))
    crit = [i for i in scan(mlmodel).issues if i.severity is IssueSeverity.CRITICAL]
    assert [i.details["type"] for i in crit] == ["posix.system"]
