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
model calls it. Only the modeling namespaces below are accepted; pure functions of plain data,
nothing is imported.
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
