"""Rule ids MA3000-MA3999: what Keras, TensorFlow, TFLite and ONNX loaders can be made to do."""

from __future__ import annotations

from ..findings import IssueSeverity
from .catalogue import define_rule

_C = IssueSeverity.CRITICAL
_W = IssueSeverity.WARNING
_I = IssueSeverity.INFO

# -- Keras (H5, .keras zip, SavedModel Keras metadata)
KERAS_LAMBDA = define_rule(
    "MA3000",
    "KerasLambdaLayer",
    "A Keras Lambda layer carries Python code that runs when the model is loaded or called.",
    "Only load the model if you trust its author; rebuild the Lambda as a registered layer, or "
    "review the decoded names listed in the finding.",
    severity=_W,
    cwe=94,
)
KERAS_LAMBDA_DANGEROUS = define_rule(
    "MA3001",
    "KerasLambdaDangerousCode",
    "A Keras Lambda layer's code references process, file, network or import machinery.",
    "Do not load this model. The names in the finding (os, system, eval, ...) are what the "
    "marshalled code would call.",
    severity=_C,
    cwe=94,
)
KERAS_CUSTOM_OBJECT = define_rule(
    "MA3002",
    "KerasCustomObject",
    "The model config names a class or function from outside Keras.",
    "Loading needs that code via custom_objects; check the named module is one you install "
    "and trust.",
    severity=_W,
    cwe=502,
)
KERAS_DANGEROUS_MODULE = define_rule(
    "MA3003",
    "KerasDangerousModule",
    "The model config makes Keras import a callable from a module that runs processes, code or "
    "I/O.",
    "Do not load this model: deserialising it resolves the named callable.",
    severity=_C,
    cwe=502,
)
KERAS_TFSM_LAYER = define_rule(
    "MA3004",
    "KerasTFSMLayer",
    "A TFSMLayer loads another SavedModel from a path stored in the config.",
    "Scan the referenced SavedModel too, and make sure the path cannot point elsewhere.",
    severity=_W,
    cwe=73,
)
KERAS_DOWNLOAD = define_rule(
    "MA3005",
    "KerasRemoteDownload",
    "The model config downloads a file (keras.utils.get_file or an origin URL) when loaded.",
    "Do not load the model on a machine that can reach the network; fetch and review the "
    "file yourself.",
    severity=_C,
    cwe=829,
)
KERAS_VOCAB_FILE = define_rule(
    "MA3006",
    "KerasVocabularyFile",
    "A lookup layer or a KerasHub tokenizer reads its vocabulary (or merges, proto, token "
    "tables) from a file path or URL when the model is built.",
    "Replace the path with an inline vocabulary or one shipped as a model asset.",
    severity=_W,
    cwe=73,
)
KERAS_CUSTOM_TRAINING = define_rule(
    "MA3007",
    "KerasCustomTrainingObject",
    "The training config names a custom loss, metric or optimizer.",
    "Compiling the loaded model resolves that name; check where the code comes from.",
    severity=_W,
    cwe=502,
)
KERAS_UNSAFE_DESERIALIZATION = define_rule(
    "MA3008",
    "KerasUnsafeDeserialization",
    "The model refers to keras.config.enable_unsafe_deserialization.",
    "Do not load this model: it switches off Keras safe mode so that embedded lambdas run.",
    severity=_C,
    cwe=502,
)
KERAS_ZIP_MEMBER = define_rule(
    "MA3009",
    "KerasArchiveMemberPath",
    "A .keras archive member has an absolute or parent-relative name.",
    "Legitimate Keras archives never contain such names; treat the file as tampered with.",
    severity=_W,
    cwe=22,
)
HDF5_EXTERNAL_LINK = define_rule(
    "MA3010",
    "HDF5ExternalLink",
    "The HDF5 file links to an object in another file, which the loader opens.",
    "Loading reads whatever file the link names; remove the link or ship a self-contained file.",
    severity=_C,
    cwe=73,
)
HDF5_EXTERNAL_STORAGE = define_rule(
    "MA3011",
    "HDF5ExternalStorage",
    "A dataset's bytes are stored in an external raw file named by the HDF5 file.",
    "Loading reads the named file into the model's weights; ship a self-contained file.",
    severity=_C,
    cwe=73,
)
HDF5_VIRTUAL_DATASET = define_rule(
    "MA3012",
    "HDF5VirtualDataset",
    "A virtual dataset maps data from other HDF5 files.",
    "Loading reads the named files; ship a self-contained file.",
    severity=_C,
    cwe=73,
)
KERAS_UNREADABLE_CONFIG = define_rule(
    "MA3013",
    "KerasUnreadableConfig",
    "A Keras config is not valid JSON, so what it would load could not be checked.",
    "Keras would fail or behave unexpectedly on it; replace the file with a known-good copy.",
    severity=_W,
)
HDF5_PLUGIN_FILTER = define_rule(
    "MA3014",
    "HDF5PluginFilter",
    "A dataset is compressed with a filter that HDF5 loads from a native plugin library.",
    "Reading the weights loads a shared library from the HDF5 plugin path; make sure only "
    "trusted plugins are installed there, or re-save the file with gzip or no compression.",
    severity=_W,
    cwe=829,
)
KERAS_TORCH_MODULE = define_rule(
    "MA3015",
    "KerasTorchModuleWrapper",
    "A Keras TorchModuleWrapper layer carries a pickled torch module that torch.load "
    "unpickles when the model is loaded with safe mode off.",
    "Only load the model with safe_mode=False if you trust its author; the embedded module "
    "was scanned as a nested file, see any findings inside it.",
    severity=_W,
    cwe=502,
)

# -- TensorFlow SavedModel / GraphDef
TF_PYTHON_OP = define_rule(
    "MA3020",
    "TensorFlowPythonOp",
    "The graph calls back into Python (PyFunc, EagerPyFunc), running arbitrary code.",
    "Do not load or serve this graph; the Python function is resolved from the loading process.",
    severity=_C,
    cwe=94,
)
TF_FILE_OP = define_rule(
    "MA3021",
    "TensorFlowFileOp",
    "The graph reads or writes files (ReadFile, WriteFile, MatchingFiles, ImmutableConst, ...).",
    "Running the graph touches the file system; remove these ops or review every path.",
    severity=_C,
    cwe=73,
)
TF_NETWORK_OP = define_rule(
    "MA3022",
    "TensorFlowNetworkOp",
    "The graph opens network connections (RPC, data service, debugger URLs).",
    "Running the graph talks to a remote host; do not serve it.",
    severity=_C,
    cwe=918,
)
TF_CHECKPOINT_OP = define_rule(
    "MA3023",
    "TensorFlowSaveRestoreOutsideCheckpoint",
    "Save/restore ops appear outside the SavedModel's checkpoint functions.",
    "They can write or read arbitrary paths when the graph runs; remove them.",
    severity=_C,
    cwe=73,
)
TF_TEXT_TABLE = define_rule(
    "MA3024",
    "TensorFlowTextFileTable",
    "A lookup table is initialised from a text file when the model loads.",
    "Check that the file is one of the model's own assets.",
    severity=_W,
    cwe=73,
)
TF_CUSTOM_OP = define_rule(
    "MA3025",
    "TensorFlowCustomOp",
    "The graph uses an op that stock TensorFlow does not define.",
    "Running it needs a native library loaded with tf.load_op_library; trust that library "
    "before loading the model.",
    severity=_W,
    cwe=829,
)
TF_ASSET_ESCAPE = define_rule(
    "MA3026",
    "TensorFlowAssetPathEscape",
    "A SavedModel asset or op path points outside the model's folder.",
    "Loading reads a file the model does not ship; do not load it.",
    severity=_C,
    cwe=22,
)
TF_PRINT_TO_FILE = define_rule(
    "MA3027",
    "TensorFlowPrintToFile",
    "A PrintV2 op writes to a file instead of a log stream.",
    "Running the graph appends to the named file; remove the op.",
    severity=_C,
    cwe=73,
)

# -- TFLite
TFLITE_CUSTOM_OP = define_rule(
    "MA3040",
    "TFLiteCustomOp",
    "The TFLite model uses a custom operator the interpreter must be given as native code.",
    "Check which library provides the operator before running the model.",
    severity=_W,
    cwe=829,
)
TFLITE_DANGEROUS_OP = define_rule(
    "MA3041",
    "TFLiteDangerousFlexOp",
    "A Flex (TensorFlow select) op runs a TensorFlow kernel that executes Python or touches files "
    "or the network.",
    "Do not run this model with the Flex delegate.",
    severity=_C,
    cwe=94,
)
TFLITE_OP_INFO = define_rule(
    "MA3042",
    "TFLiteKnownCustomOp",
    "The TFLite model uses a well-known custom or Flex operator.",
    "No action needed; listed so the operator set is visible.",
    severity=_I,
)

# -- ONNX
ONNX_EXTERNAL_ESCAPE = define_rule(
    "MA3060",
    "ONNXExternalDataPathEscape",
    "A tensor's external data location points outside the model's folder, or is ONNX "
    "Runtime's in-memory address tag (the offset read as a pointer).",
    "Loading the weights reads an arbitrary file; do not load the model.",
    severity=_C,
    cwe=22,
)
ONNX_EXTERNAL_MISSING = define_rule(
    "MA3061",
    "ONNXExternalDataMissing",
    "A tensor's external data file is missing or shorter than the model says.",
    "Ship the external data file next to the model, or the model will not load as intended.",
    severity=_W,
)
ONNX_CUSTOM_DOMAIN = define_rule(
    "MA3062",
    "ONNXCustomOperator",
    "A node uses an operator outside the standard ONNX and ONNX Runtime operator sets.",
    "Running it needs a custom-op library; trust that library before loading the model.",
    severity=_W,
    cwe=829,
)
ONNX_PYTHON_OP = define_rule(
    "MA3063",
    "ONNXPythonOperator",
    "A node runs a Python operator (onnxruntime-extensions PyOp, ORT PythonOp).",
    "Do not run this model: the operator executes Python code in the inference process.",
    severity=_C,
    cwe=94,
)
ONNX_UNKNOWN_OP = define_rule(
    "MA3064",
    "ONNXUnknownStandardOp",
    "A node in the standard ONNX domain names an operator ONNX does not define.",
    "The runtime must resolve it some other way; treat it as a custom operator.",
    severity=_W,
    cwe=829,
)
