"""Which Keras API paths a model config may name: the modeling namespaces, and nothing else.

Keras 3 resolves a config object's `module` + `class_name` (or a function's `module` + name)
through its export table (`keras.<namespace>.<name>`, any of an object's exported paths in
older releases) and, for `keras.*` modules, by importing the module and taking the attribute
(any attribute before Keras 3.9, any `KerasSaveable` since). tf_keras and Keras 2.13+ do the
same for `tf_keras.*`/`keras.*`, importing any module. So a config can hand the model
`keras.utils.get_file`, `keras.saving.load_model`, `keras.src.utils.python_utils.func_load`,
`keras.config.enable_unsafe_deserialization`, a dataset loader or a callback: none of them is
a layer, initializer, regularizer, constraint, activation, loss, metric or optimizer, and
each downloads, reads or writes files, loads another model, or switches safe mode off when the
model calls it. Only the modeling namespaces below are accepted. Keras imports modules under
`keras_hub`, `keras_nlp` and `keras_cv` the same way; there only what clearly does I/O or runs
things is refused (preset loading and uploading, checkpoint converters, dataset loaders,
callbacks, visualisations, the vLLM engine), since their model, layer and tokenizer modules
are many and all model parts. Pure functions of plain data, nothing is imported.
"""

from __future__ import annotations

from typing import Final

#: Packages whose dotted paths name Keras itself (TensorFlow's re-exports are mapped below).
KERAS_PACKAGES: Final = frozenset({"keras", "tf_keras"})
#: Path parts that only say where the public API or its implementation lives.
_MARKERS: Final = frozenset(
    {"src", "api", "_v1", "_v2", "_tf_keras", "keras", "_legacy", "legacy", "python"}
)
#: Namespaces whose classes and functions are model parts.
_MODELING: Final = frozenset(
    {
        "layers",
        "initializers",
        "regularizers",
        "constraints",
        "activations",
        "losses",
        "metrics",
        "optimizers",
        "ops",
        "random",
        "dtype_policies",
        "mixed_precision",
        "quantizers",
        "tree",
        "distillation",
        "feature_column",
        "premade",
        "premade_models",
    }
)
#: Namespaces whose classes are models but whose functions load, save or rebuild them.
_MODEL_CLASSES_ONLY: Final = frozenset({"models", "engine"})
#: Root-level functions that are harmless (everything capitalised at the root is a class).
_ROOT_FUNCTIONS: Final = frozenset({"version", "name_scope", "device", "remat"})
#: `keras.utils` classes that are layers.
_UTILS_LAYERS: Final = frozenset({"FeatureSpace"})
#: Backend functions that evaluate tensors eagerly, touch the session or global state.
_BACKEND_DANGER: Final = frozenset(
    {
        "eval",
        "function",
        "get_value",
        "batch_get_value",
        "set_value",
        "batch_set_value",
        "print_tensor",
        "clear_session",
        "get_session",
        "set_session",
        "set_learning_phase",
        "manual_variable_initialization",
        "set_floatx",
        "set_epsilon",
        "set_image_data_format",
        "update",
        "update_add",
        "update_sub",
        "moving_average_update",
        "set_global_attribute",
        "get_global_attribute",
    }
)
#: Backend submodules that hold process-wide settings (safe mode among them).
_BACKEND_STATE: Final = frozenset({"global_state", "config"})


#: KerasHub and the packages it replaced: Keras 3 imports any module under them that a config's
#: `module` names and takes `class_name` from it (any attribute before Keras 3.9, any
#: `KerasSaveable` since). Their models, layers, tokenizers, samplers and metrics are model
#: parts; what is judged here is only what clearly does I/O or runs things.
HUB_PACKAGES: Final = frozenset({"keras_hub", "keras_nlp", "keras_cv"})
_HUB_MARKERS: Final = frozenset({"src", "api"})
#: Their namespaces that are not model parts: dataset loaders download, callbacks and
#: visualisations write files, `vllm` starts an inference engine, tests are test helpers
#: (preset tests download presets).
_HUB_NON_MODELING: Final = frozenset(
    {"datasets", "callbacks", "visualization", "vllm", "tests", "conftest"}
)
#: Modules under their `utils` that fetch, read, write or load: preset loading, saving and
#: uploading (Kaggle, Hugging Face, GCS, local paths), checkpoint converters that read another
#: framework's files, OpenVINO, keras_cv's custom-op loader (a shared library).
_HUB_IO_MODULES: Final = frozenset(
    {"preset_utils", "transformers", "timm", "openvino_utils", "resource_loader"}
)
#: Names of preset_utils' I/O functions and classes, wherever met: model modules import them
#: (`keras_hub.src.models.backbone` has `get_preset_loader`), and before Keras 3.9 a config
#: could take any attribute of the module it names.
_HUB_IO_NAMES: Final = frozenset(
    {
        "get_file",
        "tf_copy_gfile_to_cache",
        "copy_gfile_to_cache",
        "check_file_exists",
        "create_model_card",
        "delete_model_card",
        "upload_preset",
        "load_json",
        "load_serialized_object",
        "save_serialized_object",
        "save_metadata",
        "save_tokenizer_assets",
        "make_preset_dir",
        "get_preset_loader",
        "get_preset_saver",
        "find_subclass",
        "_validate_backbone",
        "_validate_tokenizer",
        "PresetLoader",
        "KerasPresetLoader",
        "KerasPresetSaver",
        "from_preset",
        "save_to_preset",
    }
)


def _hub_api(parts: list[str]) -> bool:
    """A KerasHub/KerasNLP/KerasCV path (package first) that is not a model part."""
    rest = parts[1:]
    start = 0
    while start < len(rest) - 1 and rest[start] in _HUB_MARKERS:
        start += 1
    rest = rest[start:]
    if not rest:
        return False
    if rest[-1] in _HUB_IO_NAMES or rest[0] in _HUB_NON_MODELING:
        return True
    return rest[0] == "utils" and not _HUB_IO_MODULES.isdisjoint(rest[1:-1])


def _keras_rest(parts: list[str]) -> list[str] | None:
    """The path after the Keras package (`keras`, `tf_keras`, `tensorflow.keras`,
    `tensorflow.python.keras`, `tf.keras`) with API/implementation markers dropped;
    None when the path is not under Keras."""
    if parts[0] in KERAS_PACKAGES:
        rest = parts[1:]
    elif parts[0] in ("tensorflow", "tf") and "keras" in parts[1:3]:
        rest = parts[parts.index("keras", 1) + 1 :]
    else:
        return None
    start = 0
    while start < len(rest) - 1 and rest[start] in _MARKERS:
        start += 1
    return rest[start:]


def non_modeling_api(module: str, name: str) -> str | None:
    """The dotted Keras path `module` + `name` resolve to when it is not a model part
    (layer, initializer, regularizer, constraint, activation, loss, metric, optimizer and
    the like), else None. `name` may itself be dotted (`module="keras"`,
    `name="utils.get_file"` resolves like `keras.utils.get_file`)."""
    if not module or not name or name.startswith("__"):
        return None
    full = f"{module}.{name}"
    parts = [p.strip() for p in full.split(".")[:64]]
    if parts[0] in HUB_PACKAGES:
        return full if _hub_api(parts) else None
    rest = _keras_rest(parts)
    if not rest:
        return None
    leaf = rest[-1]
    is_class = leaf[:1].isupper()
    if len(rest) == 1:
        return None if is_class or leaf in _ROOT_FUNCTIONS else full
    namespace = rest[0]
    if namespace in _MODELING:
        return None
    if namespace in _MODEL_CLASSES_ONLY:
        return None if is_class else full
    if namespace == "utils":
        return None if leaf in _UTILS_LAYERS else full
    if namespace == "backend":
        if leaf in _BACKEND_DANGER or _BACKEND_STATE.intersection(rest[1:-1]):
            return full
        return None
    return full
