"""What a Keras model config would make Keras resolve, import, read or run when deserialised.

Shared by the H5, `.keras` and SavedModel scanners: each hands over the parsed JSON (model
config, training/compile config, per-layer metadata) and turns the returned `KerasFinding`s
into issues at its own location. Pure functions over plain JSON values; nothing is imported.
"""

from __future__ import annotations

import base64
import binascii
import ntpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from ...rules import frameworks as R
from ..base import IssueSeverity, ScanResult
from ..context import ScanContext
from ..nested_bytes import scan_nested_bytes
from ..pickle.callable_policy import is_dangerous_callable
from ..tensorflow.dangerous_ops import tf_api_danger
from .keras_api import HUB_PACKAGES, non_modeling_api
from .lambda_code import dangerous_evidence, decode_code, marshal_strings


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Top-level packages whose classes Keras itself ships.
KERAS_ROOTS: Final = frozenset({"keras", "tf_keras", "keras_hub", "keras_nlp", "keras_cv"})
#: Modules whose callables run processes, load code or do I/O.
DANGEROUS_MODULES: Final = frozenset(
    {
        "os",
        "posix",
        "nt",
        "sys",
        "subprocess",
        "builtins",
        "__builtin__",
        "shutil",
        "socket",
        "pickle",
        "marshal",
        "importlib",
        "runpy",
        "ctypes",
        "code",
        "pty",
        "webbrowser",
        "requests",
        "urllib",
        "http",
        "ftplib",
        "telnetlib",
        "multiprocessing",
        "commands",
        "pdb",
        "dill",
        "joblib",
    }
)
_DANGEROUS_CALLABLES: Final = frozenset(
    {"eval", "exec", "compile", "__import__", "open", "system", "popen", "getattr", "execfile"}
)
_LAMBDA_FUNCTIONS: Final = ("function", "output_shape", "mask")
_LOOKUP_LAYERS: Final = frozenset({"StringLookup", "IntegerLookup", "TextVectorization"})
_TF_OP_LAYERS: Final = frozenset({"TFOpLambda", "SlicingOpLambda"})
#: KerasHub/KerasNLP tokenizer config keys that, given a string, name a file the tokenizer
#: opens when it is built: BytePair's `vocabulary` and `merges`, WordPiece's and ParSeq's
#: `vocabulary`, SentencePiece's `proto` (a string past 2,048 characters that is valid
#: base64 is the proto itself), Whisper's `special_tokens` and `language_tokens`. Keras
#: itself writes them as None, lists or dicts (the vocabulary travels as an asset); safe mode
#: guards only some of them, and only since January 2026.
_TOKENIZER_FILE_KEYS: Final = ("vocabulary", "merges", "proto", "special_tokens", "language_tokens")
_INLINE_PROTO: Final = 2048
_BASE64: Final = re.compile(r"[A-Za-z0-9+/]+={0,2}")
#: Keras 3 layer whose `module` config is a base64 `torch.save` of a torch.nn.Module.
_TORCH_WRAPPER: Final = "TorchModuleWrapper"
#: Decoded bytes of embedded torch modules kept for nested scans, per config walk.
MAX_EMBEDDED_BYTES: Final = 256 << 20
_URL: Final = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")

# Class names Keras 2 configs carry without a module (layers, initializers, regularizers,
# constraints, optimizers, losses, metrics, dtype policies).
KERAS_CLASS_NAMES: Final = _words(
    """
    Activation ActivityRegularization Add AdditiveAttention AlphaDropout Attention Average
    AveragePooling1D AveragePooling2D AveragePooling3D AvgPool1D AvgPool2D AvgPool3D
    BatchNormalization Bidirectional CategoryEncoding CenterCrop Concatenate Conv1D
    Conv1DTranspose Conv2D Conv2DTranspose Conv3D Conv3DTranspose ConvLSTM1D ConvLSTM2D
    ConvLSTM3D Convolution1D Convolution2D Convolution3D Cropping1D Cropping2D Cropping3D Dense
    DepthwiseConv1D DepthwiseConv2D Discretization Dot Dropout ELU EinsumDense Embedding Flatten
    GRU GRUCell GaussianDropout GaussianNoise GlobalAveragePooling1D GlobalAveragePooling2D
    GlobalAveragePooling3D GlobalAvgPool1D GlobalAvgPool2D GlobalAvgPool3D GlobalMaxPool1D
    GlobalMaxPool2D GlobalMaxPool3D GlobalMaxPooling1D GlobalMaxPooling2D GlobalMaxPooling3D
    GroupNormalization GroupQueryAttention Hashing HashedCrossing Identity InputLayer InputSpec
    IntegerLookup LSTM LSTMCell Lambda LayerNormalization LeakyReLU LocallyConnected1D
    LocallyConnected2D Masking MaxPool1D MaxPool2D MaxPool3D MaxPooling1D MaxPooling2D
    MaxPooling3D Maximum Minimum MultiHeadAttention Multiply Normalization PReLU Permute
    RNN RandomBrightness RandomContrast RandomCrop RandomFlip RandomHeight RandomRotation
    RandomTranslation RandomWidth RandomZoom ReLU RepeatVector Rescaling Reshape Resizing
    SeparableConv1D SeparableConv2D SeparableConvolution1D SeparableConvolution2D SimpleRNN
    SimpleRNNCell Softmax SpatialDropout1D SpatialDropout2D SpatialDropout3D
    SpectralNormalization StackedRNNCells StringLookup Subtract TextVectorization
    ThresholdedReLU TimeDistributed UnitNormalization UpSampling1D UpSampling2D UpSampling3D
    Wrapper ZeroPadding1D ZeroPadding2D ZeroPadding3D TFSMLayer TFOpLambda SlicingOpLambda
    TensorFlowOpLayer DenseFeatures SequenceFeatures CuDNNLSTM CuDNNGRU SyncBatchNormalization
    TorchModuleWrapper
    Functional Sequential Model
    Constant GlorotNormal GlorotUniform HeNormal HeUniform Identity LecunNormal LecunUniform
    Ones Orthogonal RandomNormal RandomUniform TruncatedNormal VarianceScaling Zeros
    L1 L1L2 L2 OrthogonalRegularizer
    MaxNorm MinMaxNorm NonNeg RadialConstraint UnitNorm
    Adadelta Adafactor Adagrad Adam AdamW Adamax Ftrl Lamb Lion LossScaleOptimizer Nadam RMSprop
    SGD ExponentialDecay PiecewiseConstantDecay PolynomialDecay InverseTimeDecay CosineDecay
    CosineDecayRestarts
    BinaryCrossentropy BinaryFocalCrossentropy CategoricalCrossentropy
    CategoricalFocalCrossentropy CategoricalHinge CosineSimilarity Hinge Huber KLDivergence
    LogCosh MeanAbsoluteError MeanAbsolutePercentageError MeanSquaredError
    MeanSquaredLogarithmicError Poisson SparseCategoricalCrossentropy SquaredHinge Tversky Dice
    LossFunctionWrapper MeanMetricWrapper
    AUC Accuracy BinaryAccuracy BinaryIoU CategoricalAccuracy F1Score FBetaScore FalseNegatives
    FalsePositives IoU Mean MeanIoU MeanTensor OneHotIoU OneHotMeanIoU Precision
    PrecisionAtRecall R2Score Recall RecallAtPrecision RootMeanSquaredError
    SensitivityAtSpecificity SparseCategoricalAccuracy SparseTopKCategoricalAccuracy
    SpecificityAtSensitivity Sum TopKCategoricalAccuracy TrueNegatives TruePositives
    DTypePolicy FloatDTypePolicy QuantizedDTypePolicy Policy
    __tuple__ __tensor__ __numpy__ __bytes__ __typespec__ __ellipsis__ __slice__ __keras_tensor__
    __lambda__
    """
)
#: What tf.keras's `json_utils` writes for values JSON cannot hold (`build_input_shape`,
#: `save_spec` and `full_save_spec` of every SavedModel's `keras_metadata.pb`): its decoder
#: turns them back into a shape, a spec looked up in TensorFlow's TypeSpec registry, or a
#: tensor before any class is resolved, so with no module they name no class at all.
_JSON_UTILS_VALUES: Final = frozenset({"TensorShape", "TypeSpec", "CompositeTensor"})
_KNOWN_TRAINING_NAMES: Final = _words(
    """
    accuracy acc crossentropy ce mse mae mape msle mean_squared_error mean_absolute_error
    mean_absolute_percentage_error mean_squared_logarithmic_error binary_crossentropy
    categorical_crossentropy sparse_categorical_crossentropy binary_focal_crossentropy
    categorical_focal_crossentropy kl_divergence kld kullback_leibler_divergence poisson
    cosine_similarity hinge squared_hinge categorical_hinge huber huber_loss log_cosh logcosh
    binary_accuracy categorical_accuracy sparse_categorical_accuracy top_k_categorical_accuracy
    sparse_top_k_categorical_accuracy auc precision recall loss
    """
)


@dataclass
class KerasFinding:
    message: str
    severity: IssueSeverity
    rule: str
    why: str
    details: dict[str, Any] = field(default_factory=dict)


_MAX_WHERE: Final = 256


def _child(where: str, part: str) -> str:
    """A config path one step down, cut at `_MAX_WHERE` characters: building full paths
    would copy the whole path at every node (quadratic in depth times key length)."""
    if len(where) >= _MAX_WHERE:
        return where
    text = where + part[:_MAX_WHERE]
    return text if len(text) <= _MAX_WHERE else text[: _MAX_WHERE - 3] + "..."


def _root(module: str) -> str:
    return module.split(".", 1)[0].strip()


def _hub(module: Any, registered: Any) -> bool:
    """A config object of KerasHub, KerasNLP or KerasCV, by its module or registered name."""
    if isinstance(module, str) and _root(module) in HUB_PACKAGES:
        return True
    return isinstance(registered, str) and registered.split(">", 1)[0] in HUB_PACKAGES


def _escapes(path: str) -> bool:
    """A path that leaves the model's folder or reaches another host.

    Judged as Windows reads it too (`ntpath`): any drive, not only `C:\\x` but the
    drive-relative `C:x` and `c:..\\x` (relative to that drive's current folder, never the
    model's), UNC shares and `\\\\?\\`/`\\\\.\\` device paths in either slash. A part made of
    dots and spaces with `..` in it counts as a parent too: Win32 trims trailing dots and
    spaces from path parts (`.. ` can end up `..`), and no real file is named so. A reserved
    device name as any part (`CON`, `nul.bin`, `sub/COM1.txt`: reading blocks on the console
    or a serial port, or reads nothing) and any other colon (`weights.bin:payload`, an NTFS
    alternate data stream: bytes no folder listing or scan of the file shows) open something
    other than a file of the model, so they count too; a file of the model has neither.
    """
    norm = path.replace("\\", "/")
    return bool(
        _URL.match(path)
        or norm.startswith("/")
        or ntpath.splitdrive(path)[0]
        or ":" in path
        or any(".." in part and not part.rstrip(". ") for part in norm.split("/"))
        or any(_windows_device(part) for part in norm.split("/"))
        or norm.startswith("~")
    )


#: Names Win32 opens as a device in any folder and with any extension (`nul.bin`,
#: `sub/COM1.txt`, `Aux .json`): Microsoft's list of reserved names, superscript digits too.
_WINDOWS_DEVICES: Final = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{port}{n}" for port in ("COM", "LPT") for n in "0123456789\u00b9\u00b2\u00b3"}
)


def _windows_device(part: str) -> bool:
    """A path part Win32 turns into a device: its name before the first dot, trailing
    spaces and dots trimmed, is a reserved name in any case."""
    return part.split(".", 1)[0].rstrip(" .").upper() in _WINDOWS_DEVICES


class KerasConfigAnalyzer:
    """Walks one or more config trees, collecting findings; bounded in depth and node count."""

    MAX_NODES: Final = 2_000_000
    MAX_DEPTH: Final = 200

    def __init__(self) -> None:
        self.findings: list[KerasFinding] = []
        self.truncated = False
        self._nodes = 0
        self._seen: set[tuple[str, str]] = set()
        #: (config path, bytes) of embedded files to scan as nested files
        self.embedded: list[tuple[str, bytes]] = []
        self._embedded_bytes = 0

    def _add(
        self,
        message: str,
        severity: IssueSeverity,
        rule: str,
        why: str,
        **details: Any,
    ) -> None:
        key = (rule, message)
        if key not in self._seen:
            self._seen.add(key)
            self.findings.append(KerasFinding(message, severity, rule, why, details))

    def analyze(self, value: Any, where: str = "config") -> None:
        self._walk(value, where, 0)

    def report(
        self,
        result: ScanResult,
        location: Callable[[str], str],
        default: str,
        what: str,
        ctx: ScanContext | None = None,
    ) -> None:
        """Put every finding in `result`, at the location `location` gives the config path it
        was found at (`default` when it has none); a walk cut short leaves the file
        inconclusive, since the rest of the `what` went unchecked. Embedded files (a
        TorchModuleWrapper's torch module) are scanned one level deeper through `ctx`
        (without one, the file is inconclusive: they went unscanned)."""
        for where, data in self.embedded:
            if ctx is None:
                result.mark_inconclusive(f"embedded file at {where} was not scanned")
                continue
            result.merge(scan_nested_bytes(ctx, data, location(where)))
        for finding in self.findings:
            result.add_issue(
                finding.message,
                severity=finding.severity,
                location=location(str(finding.details.get("path", default))),
                details=finding.details,
                why=finding.why,
                rule=finding.rule,
            )
        if self.truncated:
            result.mark_inconclusive(f"Keras {what} too large or deeply nested to check fully")

    def analyze_training(self, training: Any, where: str = "training_config") -> None:
        """Losses and metrics given by name are resolved at compile time: unknown names are custom."""
        self._walk(training, where, 0)
        if not isinstance(training, dict):
            return
        for key in ("loss", "metrics", "weighted_metrics"):
            for name in self._names(training.get(key)):
                if name.lower() not in _KNOWN_TRAINING_NAMES and name not in KERAS_CLASS_NAMES:
                    self._add(
                        f"Custom {key} '{name}' in training config",
                        IssueSeverity.WARNING,
                        R.KERAS_CUSTOM_TRAINING,
                        "Compiling the model resolves this name to code supplied outside Keras.",
                        key=key,
                        name=name,
                        path=_child(where, f".{key}"),
                    )

    def _names(self, value: Any, depth: int = 0) -> list[str]:
        if isinstance(value, str):
            return [value]
        if depth > self.MAX_DEPTH:
            self.truncated = True
            return []
        if isinstance(value, list):
            return [n for v in value for n in self._names(v, depth + 1)]
        if isinstance(value, dict) and "class_name" not in value:
            return [n for v in value.values() for n in self._names(v, depth + 1)]
        return []

    def _walk(self, value: Any, where: str, depth: int) -> None:
        self._nodes += 1
        if self._nodes > self.MAX_NODES or depth > self.MAX_DEPTH:
            self.truncated = True
            return
        if isinstance(value, dict):
            if isinstance(value.get("class_name"), str):
                self._object(value, where)
            for key, sub in value.items():
                if key == "origin" and isinstance(sub, str) and _URL.match(sub):
                    self._add(
                        f"Download origin {sub!r} in config",
                        IssueSeverity.CRITICAL,
                        R.KERAS_DOWNLOAD,
                        "Loading fetches this URL, so the model's author controls what arrives.",
                        url=sub,
                        path=_child(where, f".{key}"),
                    )
                self._walk(sub, _child(where, f".{key}"), depth + 1)
        elif isinstance(value, list):
            for i, sub in enumerate(value):
                self._walk(sub, _child(where, f"[{i}]"), depth + 1)
        elif isinstance(value, str) and "enable_unsafe_deserialization" in value:
            self._add(
                "Config refers to enable_unsafe_deserialization",
                IssueSeverity.CRITICAL,
                R.KERAS_UNSAFE_DESERIALIZATION,
                "It turns off Keras safe mode, letting embedded lambdas run on load.",
                path=where,
            )

    def _object(self, obj: dict[str, Any], where: str) -> None:
        cls = obj["class_name"]
        cfg = obj.get("config")
        module = obj.get("module")
        registered = obj.get("registered_name")
        name = cfg.get("name") if isinstance(cfg, dict) else None
        here = _child(
            where, f"({cls[:_MAX_WHERE]}{' ' + repr(name[:64]) if isinstance(name, str) else ''})"
        )
        if cls == "Lambda" and isinstance(cfg, dict):
            self._lambda(cfg, here)
        elif cls == "__lambda__" and isinstance(cfg, dict):
            # a Lambda's own functions keep `code`; serialize_keras_object (arguments, any
            # other place) keeps func_dump's (code, defaults, closure) under `value`
            blob = cfg.get("code")
            value = cfg.get("value")
            if blob is None and isinstance(value, list) and value:
                blob = value[0]
            self._code(blob, here, "__lambda__ object")
        elif cls == "TFSMLayer" and isinstance(cfg, dict):
            self._tfsm(cfg, here)
        elif cls in _LOOKUP_LAYERS and isinstance(cfg, dict):
            self._vocabulary(cfg, here)
        elif cls in _TF_OP_LAYERS and isinstance(cfg, dict):
            self._tf_op(cfg, here)
        elif cls == _TORCH_WRAPPER and isinstance(cfg, dict):
            self._torch_module(cfg, here)
        elif cls.endswith("Tokenizer") and isinstance(cfg, dict) and _hub(module, registered):
            self._tokenizer_files(cfg, here)
        if cls == "function":
            self._function_ref(module, cfg, here)
        self._class_origin(cls, module, registered, here)

    def _class_origin(self, cls: str, module: Any, registered: Any, where: str) -> None:
        if cls in _JSON_UTILS_VALUES and module is None and registered is None:
            return
        roots = []
        name = cls
        if ">" in cls:
            # tf.keras 2.11+ writes its own optimizers as "Custom>Adam"
            package, name = cls.split(">", 1)
            if not (package == "Custom" and name in KERAS_CLASS_NAMES):
                roots.append(_root(package))
        if isinstance(module, str) and module:
            if cls == "function" and module == "builtins":
                # Keras looks the name up among its own activations, losses, metrics, ...
                # (what it writes for `keras.losses.mean_squared_error` and the like); a
                # Python builtin reached that way is judged by `_function_ref`
                return
            roots.append(_root(module))
            if cls != "function" and self._keras_api(module, name, cls, where):
                return
        if isinstance(registered, str) and ">" in registered:
            roots.append(_root(registered.split(">", 1)[0]))
        for root in roots:
            if root in DANGEROUS_MODULES:
                self._add(
                    f"Config object '{cls}' comes from dangerous module '{root}'",
                    IssueSeverity.CRITICAL,
                    R.KERAS_DANGEROUS_MODULE,
                    "Deserialising resolves a callable that can run commands or code.",
                    class_name=cls,
                    module=module,
                    registered_name=registered,
                    path=where,
                )
                return
        outside = [r for r in roots if r not in KERAS_ROOTS]
        if outside or (not roots and name not in KERAS_CLASS_NAMES and cls != "function"):
            self._add(
                f"Custom object '{cls}' from outside Keras"
                + (f" (module '{module}')" if isinstance(module, str) else ""),
                IssueSeverity.WARNING,
                R.KERAS_CUSTOM_OBJECT,
                "Loading needs code the model does not contain; whoever supplies it controls "
                "what runs.",
                class_name=cls,
                module=module,
                registered_name=registered,
                path=where,
            )

    def _keras_api(self, module: str, name: str, what: str, where: str) -> bool:
        """Report a Keras API outside the modeling namespaces that `module` + `name`
        resolve to; True when one was reported."""
        api = non_modeling_api(module, name)
        if api is None:
            return False
        self._add(
            f"Config object '{what}' resolves Keras non-modeling API '{api}'",
            IssueSeverity.CRITICAL,
            R.KERAS_DANGEROUS_MODULE,
            "Keras imports this API by its dotted path when the model is loaded; it is not a "
            "layer, loss, metric or other model part, and can download or write files, load "
            "other models or switch safe mode off when the model calls it.",
            module=module,
            name=name,
            api=api,
            path=where,
        )
        return True

    def _function_ref(self, module: Any, fn: Any, where: str) -> None:
        if not isinstance(fn, str):
            return
        mod = module if isinstance(module, str) else ""
        if fn == "get_file" or fn.endswith(".get_file"):
            self._add(
                f"Config calls {mod + '.' if mod else ''}{fn}",
                IssueSeverity.CRITICAL,
                R.KERAS_DOWNLOAD,
                "Loading downloads a file chosen by the model's author.",
                module=mod,
                function=fn,
                path=where,
            )
        elif (fn in _DANGEROUS_CALLABLES and (not mod or _root(mod) in DANGEROUS_MODULES)) or (
            is_dangerous_callable(f"{mod}.{fn}" if mod else fn)
        ):
            self._add(
                f"Config resolves the callable {mod + '.' if mod else ''}{fn}",
                IssueSeverity.CRITICAL,
                R.KERAS_DANGEROUS_MODULE,
                "Deserialising hands the model a callable that runs code or commands.",
                module=mod,
                function=fn,
                path=where,
            )
        else:
            self._keras_api(mod, fn, fn, where)

    def _lambda(self, cfg: dict[str, Any], where: str) -> None:
        """Every function a Lambda carries: `function`, `output_shape` and `mask` (Keras 2
        stores each as code, a name or raw data, with `<key>_type`/`<key>_module` beside it;
        Keras 3 as `__lambda__`/`function` objects, which the walk judges)."""
        for key in _LAMBDA_FUNCTIONS:
            if key not in cfg:
                continue
            value = cfg.get(key)
            kind = cfg.get("function_type" if key == "function" else f"{key}_type")
            module = cfg.get("module" if key == "function" else f"{key}_module")
            what = "Lambda layer" if key == "function" else f"Lambda layer {key}"
            if isinstance(value, dict) or value is None:
                continue  # a Keras 3 object (judged when the walk reaches it) or nothing
            if kind == "lambda" or (key == "function" and kind is None and isinstance(value, list)):
                blob = value[0] if isinstance(value, list) and value else value
                self._code(blob, where, what)
            elif kind == "raw" or (key != "function" and kind is None):
                continue  # a shape, or a mask given as data
            else:
                mod = module if isinstance(module, str) else ""
                full = f"{mod}.{value}" if mod else str(value)
                danger = (
                    (bool(mod) and _root(mod) in DANGEROUS_MODULES)
                    or (isinstance(value, str) and is_dangerous_callable(full))
                    or (isinstance(value, str) and non_modeling_api(mod, value) is not None)
                )
                self._add(
                    f"{what} calls function {value!r}" + (f" from module '{mod}'" if mod else ""),
                    IssueSeverity.CRITICAL if danger else IssueSeverity.WARNING,
                    R.KERAS_DANGEROUS_MODULE if danger else R.KERAS_LAMBDA,
                    "Loading imports the named function and calls it on the model's inputs.",
                    function=str(value)[:200],
                    module=mod,
                    path=where,
                )

    def _code(self, blob: Any, where: str, what: str) -> None:
        code = decode_code(blob) if isinstance(blob, str) else None
        if code is None:
            self._add(
                f"{what} with undecodable code",
                IssueSeverity.WARNING,
                R.KERAS_LAMBDA,
                "Keras would still try to load it; its content could not be inspected.",
                path=where,
            )
            return
        strings = marshal_strings(code)
        evidence = dangerous_evidence(strings)
        names = list(dict.fromkeys(strings))[:50]
        if evidence:
            self._add(
                f"{what} code references {', '.join(evidence[:10])}",
                IssueSeverity.CRITICAL,
                R.KERAS_LAMBDA_DANGEROUS,
                "The marshalled Python code runs when the model is loaded and can execute "
                "commands or read and write files.",
                evidence=evidence,
                names=names,
                code_bytes=len(code),
                path=where,
            )
        else:
            self._add(
                f"{what} contains marshalled Python code",
                IssueSeverity.WARNING,
                R.KERAS_LAMBDA,
                "Arbitrary Python runs when the layer is rebuilt; nothing dangerous was named, "
                "but names can be hidden.",
                names=names,
                code_bytes=len(code),
                path=where,
            )

    def _tf_op(self, cfg: dict[str, Any], where: str) -> None:
        """TFOpLambda/SlicingOpLambda resolve `tf.<function>` by name when the model is
        rebuilt; the op list is TensorFlow's (`tensorflow/dangerous_ops.py`)."""
        fn = cfg.get("function")
        if not isinstance(fn, str):
            return
        danger = tf_api_danger(fn)
        if danger is not None:
            self._add(
                f"TFOpLambda layer calls tf.{fn}",
                IssueSeverity.CRITICAL,
                R.KERAS_DANGEROUS_MODULE,
                "Rebuilding the model calls this TensorFlow function, which runs Python or "
                "reads and writes files.",
                function=fn,
                op=danger,
                path=where,
            )

    def _torch_module(self, cfg: dict[str, Any], where: str) -> None:
        """Keras 3's TorchModuleWrapper.from_config base64-decodes `module` and hands it to
        torch.load (when safe mode is off): the bytes are kept for a nested scan, which
        finds what the pickle inside would import. Decoding is linear in the string, and
        the bytes kept per walk are capped at `MAX_EMBEDDED_BYTES`."""
        blob = cfg.get("module")
        if not isinstance(blob, str):
            return
        data: bytes | None = None
        if self._embedded_bytes + len(blob) * 3 // 4 <= MAX_EMBEDDED_BYTES:
            try:
                data = base64.b64decode(blob.encode("ascii", "strict"), validate=False)
            except (binascii.Error, UnicodeEncodeError, ValueError):
                data = None
        else:
            self.truncated = True
        if data:
            self._embedded_bytes += len(data)
            self.embedded.append((_child(where, ".module"), data))
        self._add(
            f"TorchModuleWrapper layer loads a pickled torch module ({len(blob)} base64 chars)",
            IssueSeverity.WARNING,
            R.KERAS_TORCH_MODULE,
            "Loading the model with safe mode off runs torch.load on these bytes, which "
            "unpickles whatever they hold; they were scanned as a nested file.",
            encoded_chars=len(blob),
            decoded_bytes=len(data) if data else 0,
            path=where,
        )

    def _tfsm(self, cfg: dict[str, Any], where: str) -> None:
        fp = cfg.get("filepath")
        text = fp if isinstance(fp, str) else repr(fp)
        escapes = isinstance(fp, str) and _escapes(fp)
        self._add(
            f"TFSMLayer loads SavedModel from {text!r}",
            IssueSeverity.CRITICAL if escapes else IssueSeverity.WARNING,
            R.KERAS_TFSM_LAYER,
            "The referenced SavedModel's graph runs as part of this model and was not scanned.",
            filepath=text,
            path=where,
        )

    def _tokenizer_files(self, cfg: dict[str, Any], where: str) -> None:
        for key in _TOKENIZER_FILE_KEYS:
            value = cfg.get(key)
            if not isinstance(value, str):
                continue
            if key == "proto" and len(value) > _INLINE_PROTO and _BASE64.fullmatch(value):
                continue
            self._add(
                f"Tokenizer reads its {key} from {value[:200]!r}",
                IssueSeverity.CRITICAL if _escapes(value) else IssueSeverity.WARNING,
                R.KERAS_VOCAB_FILE,
                "Building the tokenizer opens this path and reads it into the model; Keras "
                "writes these as data, never as a path.",
                key=key,
                value=value[:1000],
                path=where,
            )

    def _vocabulary(self, cfg: dict[str, Any], where: str) -> None:
        for key in ("vocabulary", "idf_weights"):
            value = cfg.get(key)
            if not isinstance(value, str):
                continue
            escapes = _escapes(value)
            self._add(
                f"Lookup layer reads its {key} from {value!r}",
                IssueSeverity.CRITICAL if escapes else IssueSeverity.WARNING,
                R.KERAS_DOWNLOAD if _URL.match(value) else R.KERAS_VOCAB_FILE,
                "Building the layer reads this path (or URL) through tf.io.gfile.",
                key=key,
                value=value,
                path=where,
            )


def model_names(config: Any) -> list[str]:
    """The model's own name (and nested model names) for --blacklist."""
    names: list[str] = []
    if isinstance(config, dict):
        cfg = config.get("config")
        if isinstance(cfg, dict) and isinstance(cfg.get("name"), str):
            names.append(cfg["name"])
        elif isinstance(config.get("name"), str):
            names.append(config["name"])
    return names
