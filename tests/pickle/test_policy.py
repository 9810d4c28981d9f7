"""Policy verdicts from names alone: shapes of real checkpoints stay quiet, tricks do not.

Libraries that are not installed here (transformers, accelerate, trl, xgboost, lightgbm,
fastai) are represented by pickles assembled with the exact globals and call shapes those
libraries write, so the verdict is checked through the real engine.
"""

from __future__ import annotations

from typing import Any

import pytest

from modelaudit.scanners.pickle import policy
from tests.pickle._pickle_corpus import (
    Op,
    args,
    call,
    critical,
    g0,
    p2,
    p4,
    s,
    scan,
    sg,
    warnings_of,
)


def newobj_build(module: str, name: str, state: bytes = b"}") -> Op:
    """`cls.__new__(cls)` then `__setstate__(state)`, as protocol 2+ pickles plain classes."""
    return Op(sg(module, name) + b")\x81" + state + b"b")


def enum_member(module: str, name: str, value: str) -> Op:
    return call(sg(module, name), value)


def dict_of(*pairs: tuple[str, bytes]) -> Op:
    body = b"}("
    for key, value in pairs:
        body += s(key) + value
    return Op(body + b"u")


LEGIT_SHAPES = {
    "hf-training-arguments": p4(
        newobj_build(
            "transformers.training_args",
            "TrainingArguments",
            dict_of(
                (
                    "eval_strategy",
                    enum_member("transformers.trainer_utils", "IntervalStrategy", "steps"),
                ),
                (
                    "lr_scheduler_type",
                    enum_member("transformers.trainer_utils", "SchedulerType", "linear"),
                ),
                (
                    "optim",
                    enum_member("transformers.training_args", "OptimizerNames", "adamw_torch"),
                ),
                (
                    "hub_strategy",
                    enum_member("transformers.trainer_utils", "HubStrategy", "every_save"),
                ),
                ("logging_dir", call(sg("transformers.training_args", "default_logdir"))),
                ("distributed_state", newobj_build("accelerate.state", "PartialState")),
            ),
        )
    ),
    "accelerate-config": p4(
        newobj_build(
            "accelerate.utils.dataclasses",
            "DeepSpeedPlugin",
            dict_of(("type", enum_member("accelerate.utils.dataclasses", "DistributedType", "NO"))),
        )
    ),
    "trl-config": p4(
        newobj_build("trl.trainer.sft_config", "SFTConfig", dict_of(("max_seq_length", b"K\x10")))
    ),
    "xgboost-booster": p4(
        newobj_build(
            "xgboost.sklearn",
            "XGBClassifier",
            dict_of(
                (
                    "_Booster",
                    newobj_build("xgboost.core", "Booster", dict_of(("handle", Op(b"C\x03raw")))),
                )
            ),
        )
    ),
    "lightgbm-booster": p4(
        newobj_build(
            "lightgbm.sklearn",
            "LGBMClassifier",
            dict_of(
                (
                    "_Booster",
                    newobj_build("lightgbm.basic", "Booster", dict_of(("model_str", s("tree")))),
                )
            ),
        )
    ),
    "fastai-learner": p4(
        newobj_build(
            "fastai.learner",
            "Learner",
            dict_of(
                ("opt_func", sg("fastai.optimizer", "Adam")),
                ("loss_func", newobj_build("fastai.losses", "CrossEntropyLossFlat")),
                ("metrics", Op(b"]" + sg("fastai.metrics", "accuracy") + b"a")),
                ("splitter", sg("fastai.vision.learner", "_resnet_split")),
                ("arch", sg("torchvision.models.resnet", "resnet34")),
                ("path", call(sg("pathlib", "PosixPath"), "/data/models")),
                (
                    "cbs",
                    Op(
                        sg("functools", "partial")
                        + args(sg("fastai.callback.schedule", "ParamScheduler"))
                        + b"R"
                        + Op(
                            b"(" + sg("fastai.callback.schedule", "ParamScheduler") + b")}N" + b"t"
                        )
                        + b"b"
                    ),
                ),
                ("items", newobj_build("fastcore.foundation", "L")),
            ),
        )
    ),
    "bound-method-of-allowed-class": p4(
        call(sg("builtins", "getattr"), call(sg("collections", "OrderedDict")), "keys")
    ),
    "classmethod-of-allowed-class": p4(
        call(call(sg("builtins", "getattr"), sg("collections", "OrderedDict"), "fromkeys"), "ab")
    ),
    "numpy1-array": p2(
        call(
            g0("numpy.core.multiarray", "_reconstruct"),
            g0("numpy", "ndarray"),
            Op(b"K\x00\x85"),
            Op(s("b")),
        )
        + b"(K\x01K\x03\x85"
        + call(g0("numpy", "dtype"), "f8", Op(b"\x89"), Op(b"\x88"))
        + b"(K\x03"
        + s("<")
        + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t"
        + b"b"
        + b"\x89"
        + call(g0("_codecs", "encode"), "\x00" * 24, "latin1")
        + b"tb"
    ),
    "numpy1-scalar-and-rng": p2(
        Op(
            b"("
            + call(
                g0("numpy.core.multiarray", "scalar"),
                call(g0("numpy", "dtype"), "f8", Op(b"\x89"), Op(b"\x88")),
                Op(b"C\x08" + b"\x00" * 8),
            )
            + call(g0("numpy.random", "__RandomState_ctor"))
            + call(g0("numpy.random._pickle", "__randomstate_ctor"), "MT19937")
            + b"l"
        )
    ),
    "torch-legacy-names": p2(
        Op(
            b"("
            + call(
                g0("torch._utils", "_rebuild_tensor_v2"),
                Op(b"N"),
                0,
                Op(b"K\x02\x85"),
                Op(b"K\x01\x85"),
                Op(b"\x89"),
                Op(b"N"),
            )
            + call(g0("torch._utils", "_rebuild_parameter"), Op(b"N"), Op(b"\x88"), Op(b"N"))
            + g0("torch", "FloatStorage")
            + g0("torch", "BFloat16Storage")
            + g0("torch", "float32")
            + call(g0("torch", "device"), "cpu")
            + call(g0("torch", "Size"), Op(b"K\x02\x85"))
            + call(g0("torch._C._nn", "gelu"))
            + b"l"
        )
    ),
    "python2-compat-names": p2(
        Op(
            b"("
            + call(
                g0("copy_reg", "_reconstructor"),
                g0("__builtin__", "object"),
                g0("__builtin__", "object"),
                Op(b"N"),
            )
            + call(g0("__builtin__", "set"), Op(b"]"))
            + b"l"
        )
    ),
}


@pytest.mark.parametrize("name", sorted(LEGIT_SHAPES))
def test_legit_shapes_are_quiet(name: str) -> None:
    result, info = scan(LEGIT_SHAPES[name])
    assert info.complete, result.status_reason
    assert not critical(result) and not warnings_of(result), [i.message for i in result.issues]


def test_unknown_global_is_a_warning() -> None:
    result, _ = scan(p4(newobj_build("mycompany.models", "Custom")))
    assert warnings_of(result) == ["Unknown global: mycompany.models.Custom"]
    assert not critical(result)


def test_verdicts_never_import(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def guarded(name: str, *a: Any, **k: Any) -> object:
        assert not name.startswith(("evilpkg", "os.", "subprocess")), name
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", guarded)
    for module, name in [("evilpkg.sub", "Thing"), ("subprocess", "Popen"), ("os.path", "join")]:
        policy.classify.cache_clear()
        assert policy.classify(module, name).kind in (policy.DANGER, policy.UNKNOWN)


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("sklearn.utils", "np.load"),
        ("torch.serialization", "pickle"),
        ("mimetypes", "os"),
        ("collections", "OrderedDict.__init__"),
        ("pathlib", "PosixPath.write_text"),
        ("numpy.lib.stride_tricks", "as_strided"),
        ("transformers", "AutoModel.from_pretrained"),
        ("sklearn.datasets", "fetch_openml"),
        ("torch._C", "CompilationUnit"),
        ("collections", "_sys.modules"),
        ("random", "_os.system"),
    ],
)
def test_reexports_dunders_and_leaves_are_denied(module: str, name: str) -> None:
    assert policy.classify(module, name).kind == policy.DANGER


def test_every_rule_has_id_name_cwe_and_help() -> None:
    from modelaudit.rules import RULES
    from modelaudit.rules import pickle as R

    ids = [
        v for k, v in vars(R).items() if k.isupper() and isinstance(v, str) and v.startswith("MA1")
    ]
    assert len(ids) >= 8
    for rule_id in ids:
        rule = RULES[rule_id]
        assert rule.name and rule.help
        if rule.severity.value in ("critical", "warning"):
            assert rule.cwe == (409 if rule_id == R.STRUCTURE_BOMB else 502)


def test_escape_of_getattr_into_partial_is_critical() -> None:
    data = p4(
        call(
            sg("functools", "partial"), sg("builtins", "getattr"), sg("collections", "OrderedDict")
        )
    )
    result, _ = scan(data)
    assert any("builtins.getattr is passed as a value" in m for m in critical(result))


@pytest.mark.parametrize("container", ["list", "dict"])
def test_getattr_as_the_sixty_fifth_item_of_an_argument_is_critical(container: str) -> None:
    """Only the first 64 items of a list or dict argument were looked at for resolvers."""
    pad = [Op(b"J" + i.to_bytes(4, "little") + b"K\x01") for i in range(64)]
    if container == "list":
        arg = Op(b"(" + b"K\x01" * 64 + sg("builtins", "getattr") + b"l")
    else:
        arg = Op(b"(" + b"".join(pad) + b"K\xff" + sg("builtins", "getattr") + b"d")
    result, _ = scan(p4(call(sg("builtins", container), arg)))
    assert any(
        f"builtins.getattr is passed as a value to builtins.{container}" in m
        for m in critical(result)
    )


def test_a_list_shared_by_many_calls_spends_the_escape_budget() -> None:
    """Every item of a container argument is read, each charged to the stream: one long
    list fetched from the memo by many calls ends the analysis there, inconclusive."""
    from modelaudit.findings import FileStatus
    from modelaudit.rules.core import ANALYSIS_BUDGET

    # getattr imported (so every call's arguments are looked at), then the shared list
    body = sg("builtins", "getattr") + b"0(" + b"K\x01" * 65536 + b"l\x94"  # MEMOIZE 0
    for _ in range(200):
        body += sg("builtins", "len") + b"h\x00\x85R0"  # len(memo[0])
    result, _ = scan(p4(body + b"N"))
    assert ANALYSIS_BUDGET in {i.rule for i in result.issues}
    assert result.status is FileStatus.INCONCLUSIVE


#: Globals the zoo's real fine-tuning output names (transformers 5.25 Trainer, accelerate 1.16
#: save_state, trl 1.16 SFTConfig), read from those files with pickletools.
TRAINING_RUN_GLOBALS = [
    ("transformers.training_args", "TrainingArguments"),
    ("transformers.training_args", "OptimizerNames"),
    ("transformers.training_args_seq2seq", "Seq2SeqTrainingArguments"),
    ("transformers.trainer_utils", "IntervalStrategy"),
    ("transformers.trainer_utils", "SaveStrategy"),
    ("transformers.trainer_utils", "SchedulerType"),
    ("transformers.trainer_utils", "HubStrategy"),
    ("transformers.trainer_pt_utils", "AcceleratorConfig"),
    ("transformers.generation.configuration_utils", "GenerationConfig"),
    ("accelerate.state", "PartialState"),
    ("accelerate.utils.dataclasses", "DistributedType"),
    ("trl.trainer.sft_config", "SFTConfig"),
    ("torch.nn.modules.linear", "LazyLinear"),
    ("torch.nn.modules.lazy", "LazyModuleMixin"),
]


@pytest.mark.parametrize(("module", "name"), TRAINING_RUN_GLOBALS)
def test_training_run_globals_are_safe(module: str, name: str) -> None:
    assert policy.classify(module, name).kind == policy.SAFE


def _lazy_import_payload(module: str, name: str) -> bytes:
    """`getattr(<lazy importer>("logging", f, {"config": ["dictConfig"]}), "dictConfig")(cfg)`:
    the real classes import `logging.config` and return `dictConfig`, whose "()" factories
    call any dotted name, under an attribute name no leaf rule knows."""
    structure = Op(b"}" + s("config") + b"]" + s("dictConfig") + b"as")
    importer = call(sg(module, name), "logging", "/x/__init__.py", structure)
    fetched = call(sg("builtins", "getattr"), importer, "dictConfig")
    handler = dict_of(("()", s("os.system")), ("command", s("id")))
    config = dict_of(("version", b"K\x01"), ("handlers", dict_of(("h", handler))))
    return p4(call(fetched, config))


LAZY_IMPORTERS = [
    ("transformers.utils.import_utils", "_LazyModule"),
    ("transformers.utils", "_LazyModule"),
    ("diffusers.utils.import_utils", "_LazyModule"),
    ("trl._lazy_module", "_LazyModule"),
    ("transformers.models.auto.configuration_auto", "_LazyConfigMapping"),
    ("transformers.models.auto.auto_factory", "_LazyAutoMapping"),
    ("transformers.utils.import_utils", "_LegacyModuleAliasFinder"),
    ("optuna.integration", "_IntegrationModule"),
    ("accelerate.utils", "_LazyImporter"),  # the same pattern under a name no package uses yet
]


@pytest.mark.parametrize(("module", "name"), LAZY_IMPORTERS)
def test_lazy_importers_of_trusted_packages_are_critical(module: str, name: str) -> None:
    """The trusted packages' CapWords rule must not let their import machinery through: the
    payload names only trusted globals and an innocuous attribute."""
    result, info = scan(_lazy_import_payload(module, name))
    assert info.complete
    assert f"Dangerous global: {module}.{name}" in critical(result)
    assert policy.classify(module, name).family == "resolver"


@pytest.mark.parametrize("opcode", [b"R", b"\x81"])
def test_a_saved_lazy_module_is_critical_however_it_is_built(opcode: bytes) -> None:
    """NEWOBJ (no __init__) then BUILD restores a `_LazyModule` with its import table too."""
    klass = sg("transformers.utils.import_utils", "_LazyModule")
    body = klass + args("logging", "/x/__init__.py", Op(b"}")) + opcode
    result, _ = scan(p4(body + b"0" + b"N"))
    assert critical(result)


@pytest.mark.parametrize(
    ("module", "name", "method", "family"),
    [
        ("transformers.configuration_utils", "PretrainedConfig", "to_json_file", "file"),
        ("transformers.configuration_utils", "PretrainedConfig", "save_pretrained", "file"),
        ("accelerate.accelerator", "Accelerator", "save_state", "file"),
        ("datasets.arrow_dataset", "Dataset", "save_to_disk", "file"),
        ("transformers.configuration_utils", "PretrainedConfig", "push_to_hub", "network"),
    ],
)
def test_savers_and_uploads_of_allowed_instances_are_critical(
    module: str, name: str, method: str, family: str
) -> None:
    """An allowed class's ordinary methods stay allowed, except the ones that write files or
    upload: `getattr(PretrainedConfig(), "to_json_file")("~/.bashrc")` overwrites any path."""
    method_of = call(sg("builtins", "getattr"), call(sg(module, name)), method)
    result, _ = scan(p4(call(method_of, "/home/user/.bashrc")))
    found = critical(result)
    assert any(f"'{method}'" in m for m in found), [i.message for i in result.issues]
    assert policy.classify(module, f"{name}.{method}").family == family


@pytest.mark.parametrize(
    ("module", "name", "family"),
    [
        ("transformers.models.auto.auto_factory", "get_class_from_dynamic_module", "code-exec"),
        ("diffusers.utils", "get_class_from_dynamic_module", "code-exec"),
        ("diffusers.utils.dynamic_modules_utils", "get_class_in_module", "code-exec"),
        ("transformers", "AutoModel.from_config", "nested-unpickler"),
    ],
)
def test_hub_code_loaders_are_denied_through_reexports(module: str, name: str, family: str) -> None:
    """transformers and diffusers re-export their remote-code loaders from many modules; the
    auto classes' `from_config` runs the code a config's auto_map names (trust_remote_code)."""
    assert policy.classify(module, name).family == family


def test_from_config_reached_by_getattr_on_an_allowed_class_is_critical() -> None:
    method = call(sg("builtins", "getattr"), sg("transformers", "AutoModel"), "from_config")
    result, _ = scan(p4(call(method, Op(b"}"))))
    assert any("'from_config'" in m for m in critical(result)), [i.message for i in result.issues]


#: Methods of allowed classes in the trusted packages that fetch, write, load or build code,
#: found in those packages' sources (diffusers 0.42, transformers 5.25, datasets 5.2, peft
#: 0.21, accelerate 1.16, torch 2.13, pyarrow, joblib) and denied by what their names say.
ACTION_METHODS = [
    ("diffusers.pipelines.pipeline_utils", "DiffusionPipeline", "download", "network"),
    ("diffusers", "StableDiffusionPipeline", "from_single_file", "file"),
    ("diffusers", "StableDiffusionPipeline", "load_lora_weights", "nested-unpickler"),
    ("datasets.download.download_manager", "DownloadManager", "download_and_extract", "network"),
    ("datasets.arrow_dataset", "Dataset", "cleanup_cache_files", "file"),
    ("datasets.data_files", "DataFilesDict", "from_hf_repo", "network"),
    (
        "transformers.feature_extraction_sequence_utils",
        "SequenceFeatureExtractor",
        "fetch_audio",
        "network",
    ),
    ("transformers.trainer", "Trainer", "hyperparameter_search", "process"),
    ("peft.peft_model", "PeftModel", "load_adapter", "nested-unpickler"),
    ("accelerate.accelerator", "Accelerator", "load_state", "nested-unpickler"),
    ("torch.nn.modules.module", "Module", "compile", "code-exec"),
    ("torch.storage", "UntypedStorage", "_share_filename_cpu_", "file"),
    ("torch.autograd.profiler_util", "EventList", "export_chrome_trace", "file"),
    ("pyarrow.fs", "LocalFileSystem", "delete_dir_contents", "file"),
    ("pyarrow.fs", "LocalFileSystem", "open_output_stream", "file"),
    (
        "sentence_transformers.util.deprecated_import",
        "_DeprecatedModuleLoader",
        "exec_module",
        "code-exec",
    ),
    ("sentence_transformers", "SentenceTransformer", "encode_multi_process", "process"),
    ("datasets.filesystems", "LocalFileSystem", "rm", "file"),
    ("pathlib", "PosixPath", "replace", "file"),
    ("pathlib", "PosixPath", "copy", "file"),
    ("pathlib", "PosixPath", "copy_into", "file"),
    ("pathlib", "Path", "move_into", "file"),
    ("diffusers.hooks.group_offloading", "ModuleGroup", "_offload_to_disk", "file"),
]


@pytest.mark.parametrize(("module", "name", "method", "family"), ACTION_METHODS)
def test_methods_that_fetch_write_load_or_build_code_are_critical(
    module: str, name: str, method: str, family: str
) -> None:
    """`getattr(DiffusionPipeline, "download")("attacker/repo")` fetches a repository (and
    its pipeline code): a method reached through an allowed class is judged by its name's
    words, as a global and as an attribute."""
    assert policy.classify(module, name).kind in (policy.SAFE, policy.SHAPE)
    assert policy.classify(module, f"{name}.{method}").family == family
    method_of = call(sg("builtins", "getattr"), sg(module, name), method)
    result, _ = scan(p4(call(method_of, "attacker/repo")))
    found = critical(result)
    assert any(f"'{method}'" in m for m in found), [i.message for i in result.issues]


@pytest.mark.parametrize(
    ("module", "name", "method"),
    [
        ("torch.nn.modules.module", "Module", "train"),
        ("torch.nn.modules.module", "Module", "forward"),
        ("torch.nn.modules.activation", "ReLU", "extra_repr"),
        ("torch.optim.adamw", "AdamW", "step"),
        ("sklearn.preprocessing._data", "StandardScaler", "transform"),
        ("sklearn.linear_model._logistic", "LogisticRegression", "predict_proba"),
        ("numpy", "ndarray", "astype"),
        ("transformers.tokenization_utils_base", "PreTrainedTokenizerBase", "decode"),
    ],
)
def test_ordinary_methods_of_allowed_classes_stay_allowed(
    module: str, name: str, method: str
) -> None:
    """A pickled bound method of an ordinary computation (a scheduler's `step`, a fitted
    scaler's `transform`) is what real objects hold; those names say nothing of I/O."""
    base = policy.classify(module, name)
    assert policy.classify_attribute(module, name, base, method).kind == policy.SAFE


def test_getattr_two_containers_down_is_critical() -> None:
    """`list(starmap(sorted, [(getattr, 'os', 'system')]))`: the resolver sits in a tuple
    inside a list argument; only one level of containers was read, so it went unreported."""
    resolver = sg("builtins", "getattr")
    nested = Op(b"(" + b"(" + resolver + s("os") + s("system") + b"t" + b"l")
    starmap = call(sg("itertools", "starmap"), sg("builtins", "sorted"), nested)
    result, _ = scan(p4(call(sg("builtins", "list"), starmap)))
    assert any(
        "builtins.getattr is passed as a value to itertools.starmap" in m for m in critical(result)
    ), result.issues


def test_getattr_deep_in_a_dict_key_and_a_self_containing_list_is_critical() -> None:
    """Deeper still, as a dict key, beside a list that holds itself (read once, no loop)."""
    resolver = sg("builtins", "getattr")
    # memo[0] = a list appended to itself; then {(((getattr,),),): memo[0]}
    looped = b"]\x94h\x00a"  # EMPTY_LIST MEMOIZE, BINGET 0, APPEND
    key = b"(" + b"(" + b"(" + resolver + b"t" + b"t" + b"t"
    mapping = Op(b"}" + key + looped + b"s")
    result, _ = scan(p4(call(sg("builtins", "sorted"), mapping)))
    assert any("builtins.getattr is passed as a value" in m for m in critical(result)), (
        result.issues
    )


def test_nested_lists_shared_by_many_calls_spend_the_escape_budget() -> None:
    """The inner lists are read too: 256 lists of 256 items fetched from the memo by 200
    calls is 13 M values, past `ESCAPE_BUDGET`, so the stream ends inconclusive."""
    from modelaudit.findings import FileStatus
    from modelaudit.rules.core import ANALYSIS_BUDGET

    inner = b"(" + b"K\x01" * 256 + b"l"
    body = sg("builtins", "getattr") + b"0(" + inner * 256 + b"l\x94"  # MEMOIZE 0
    for _ in range(200):
        body += sg("builtins", "len") + b"h\x00\x85R0"  # len(memo[0])
    result, _ = scan(p4(body + b"N"))
    assert ANALYSIS_BUDGET in {i.rule for i in result.issues}
    assert result.status is FileStatus.INCONCLUSIVE
