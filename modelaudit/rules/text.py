"""Rules of the text formats (MA4200-MA4499, MA4600-MA4699, MA4900-MA4999): chat templates, JSON and YAML configs, PMML, files nothing loads as code."""

from __future__ import annotations

from ..findings import IssueSeverity
from .catalogue import define_rule

# -- jinja_template

TEMPLATE_INJECTION = define_rule(
    "MA4200",
    "ChatTemplateInjection",
    "A Jinja chat template reaches Python internals or system calls (template injection).",
    "Do not load this model with a renderer that is not sandboxed (llama-cpp-python < 0.2.72, "
    "custom jinja2.Environment). Replace the chat template with the upstream model's template.",
    severity=IssueSeverity.CRITICAL,
    cwe=1336,
)

TEMPLATE_SUSPICIOUS = define_rule(
    "MA4201",
    "ChatTemplateSuspicious",
    "A Jinja chat template uses constructs that ordinary chat templates never need.",
    "Compare the template with the upstream model's chat template and remove the unusual parts.",
    cwe=1336,
)

TEMPLATE_UNPARSEABLE = define_rule(
    "MA4202",
    "ChatTemplateUnparseable",
    "A Jinja chat template could not be parsed, so it was not verified.",
    "A renderer may still accept it. Inspect the template by hand or replace it.",
)

TEMPLATE_PROMPT_INJECTION = define_rule(
    "MA4203",
    "ChatTemplatePromptInjection",
    "A chat template writes instructions or tool calls into the conversation that the user "
    "did not write (a hidden system prompt telling the model to deceive, exfiltrate or run "
    "commands, or a fixed tool call).",
    "Compare the template with the upstream model's chat template; remove the added text.",
    severity=IssueSeverity.WARNING,
    cwe=1427,
)

# -- json_scanner

JSON_REMOTE_CODE = define_rule(
    "MA4300",
    "RemoteCodeReference",
    "The config maps model classes to Python code shipped with the model (trust_remote_code).",
    "Loading with trust_remote_code=True imports and runs the named modules. Read them first, "
    "or load without trust_remote_code.",
    cwe=94,
)

JSON_DANGEROUS_TARGET = define_rule(
    "MA4301",
    "DangerousConfigTarget",
    "A config `_target_` (or `class_path`, `__class_fullname__`, jsonpickle `py/object`, an "
    "OmegaConf resolver) names a callable that runs commands or loads code.",
    "Instantiating this config (hydra.utils.instantiate and friends) calls it. Remove the key "
    "or point it at the intended class.",
    severity=IssueSeverity.CRITICAL,
    cwe=94,
)

SKOPS_DANGEROUS_TYPE = define_rule(
    "MA4305",
    "SkopsDangerousType",
    "A skops file's schema names a function, class or method that runs commands, loads code "
    "or touches files (a FunctionNode for posix.system, a ReduceNode calling it).",
    "Do not trust the types get_untrusted_types lists for this file, and do not load it with "
    "mlflow (which trusts the types its MLmodel lists).",
    severity=IssueSeverity.CRITICAL,
    cwe=502,
)

SKOPS_UNKNOWN_TYPE = define_rule(
    "MA4306",
    "SkopsUnknownType",
    "A skops file's schema names a type that real models are not known to use.",
    "Check that the type is one your code expects before passing it to skops.io.load's "
    "trusted list.",
    cwe=502,
)

SKOPS_TREE_NODES = define_rule(
    "MA4308",
    "SkopsTreeNodeIndices",
    "A decision tree in a skops file (sklearn Tree, HistGradientBoosting TreePredictor) has "
    "nodes whose child or feature indices lie outside their arrays, a node_count past its "
    "node array, or a child before its parent.",
    "scikit-learn follows these indices in C without bounds checks: predict and "
    "feature_importances_ read and write out of bounds (a crash or memory corruption) or "
    "loop for ever. No tree scikit-learn builds has them; do not load the file.",
    severity=IssueSeverity.CRITICAL,
    cwe=787,
)

CONFIG_TARGET_REMOTE_CODE = define_rule(
    "MA4307",
    "ConfigTargetTrustsRemoteCode",
    "A config `_target_` or `class_path` is instantiated with `trust_remote_code: true` among "
    "its arguments.",
    "Instantiating the config hands trust_remote_code=True to a loader, which then imports "
    "and runs Python from the repository it downloads. Remove the flag, or pin and read that "
    "repository's code.",
    cwe=94,
)

CONFIG_LOADER_ARGS = define_rule(
    "MA4309",
    "ConfigLoaderUnscannedSource",
    "A config `_target_` or `class_path` names a model or pickle loader and hands it a "
    "remote source (`http://`, `s3://`, `hf://`, an fsspec chain) or turns its guard off "
    "(`allow_pickle: true`, `weights_only: false`, `safe_mode: false`, a `pickle_module`).",
    "Instantiating the config loads a file nobody scanned, or loads without the protection "
    "against the code a pickle or Keras lambda carries. Point the loader at a scanned local "
    "file and leave its guard on. CRITICAL when what is fetched is unpickled.",
    severity=IssueSeverity.WARNING,
    cwe=502,
)

JSON_CONFIG_TARGET = define_rule(
    "MA4302",
    "ConfigTarget",
    "A config `_target_` (or `class_path`, `__class_fullname__`, jsonpickle `py/object`) "
    "names a callable that instantiation imports and calls.",
    "Check the named classes are the ones you expect to be instantiated.",
    severity=IssueSeverity.INFO,
)

CONFIG_RESOLVER = define_rule(
    "MA4304",
    "ConfigResolverCall",
    "An OmegaConf interpolation calls a resolver that evaluates Python or imports a callable "
    "(`${eval:...}`, `${get_method:...}`) when the loading program registered one.",
    "Check that the expression or the named callable is what you expect the config to run.",
    severity=IssueSeverity.INFO,
)

JSON_EXCESSIVE_NESTING = define_rule(
    "MA4303",
    "ExcessiveNesting",
    "The document nests deeper than any legitimate config; parsers recurse per level.",
    "A nesting bomb crashes or stalls the tools that read it. Replace the file.",
    cwe=674,
)

# -- yaml_scanner

YAML_PYTHON_TAG = define_rule(
    "MA4400",
    "YamlPythonTag",
    "The YAML uses a Python tag, which yaml.load with an unsafe loader turns into imports or "
    "calls.",
    "Load YAML only with yaml.safe_load, and remove the tag. Treat the file as an exploit.",
    severity=IssueSeverity.CRITICAL,
    cwe=502,
)

YAML_CUSTOM_TAG = define_rule(
    "MA4401",
    "YamlCustomTag",
    "The YAML uses an application-specific tag.",
    "Custom tags are handled by the application's own constructors; check what it does with them.",
    severity=IssueSeverity.INFO,
)

YAML_ALIAS_BOMB = define_rule(
    "MA4402",
    "YamlAliasBomb",
    "YAML anchors and aliases expand into an enormous document (billion laughs).",
    "Consumers that expand aliases (serialising, copying, merging configs) exhaust memory. "
    "Replace the file.",
    cwe=776,
)

# -- pmml_scanner

PMML_XXE = define_rule(
    "MA4600",
    "XmlExternalEntity",
    "The XML declares an external entity, an external DTD or an XInclude (XXE).",
    "A parser that resolves it reads local files or makes network requests for the attacker. "
    "Remove the DOCTYPE; parse PMML with resolve_entities disabled.",
    severity=IssueSeverity.CRITICAL,
    cwe=611,
)

PMML_ENTITY_BOMB = define_rule(
    "MA4601",
    "XmlEntityExpansion",
    "XML entities expand into an enormous text (billion laughs).",
    "Expanding parsers exhaust memory and CPU. Remove the DOCTYPE.",
    severity=IssueSeverity.CRITICAL,
    cwe=776,
)

PMML_DTD = define_rule(
    "MA4602",
    "XmlDoctype",
    "The XML has an internal DTD, which PMML never needs.",
    "Remove the DOCTYPE; entity declarations are the building blocks of XXE and bombs.",
    cwe=611,
)

PMML_EXTENSION_CODE = define_rule(
    "MA4603",
    "PmmlExtensionCode",
    "A PMML Extension element holds code or a pickle.",
    "Extensions are vendor data some consumers evaluate. Remove the payload and check the "
    "producer.",
    cwe=94,
)

# -- files beside models that nothing loads as code (MA4900-MA4999)

NOTEBOOK_CODE = define_rule(
    "MA4900",
    "NotebookCode",
    "A Jupyter notebook: its code cells run only when someone executes the notebook.",
    "Read the code cells before running the notebook; loading a model never runs them.",
    severity=IssueSeverity.INFO,
)

DVC_POINTER = define_rule(
    "MA4901",
    "DvcPointer",
    "A DVC pointer file: it names data kept in a DVC remote, not the data itself.",
    "Scan the data too: pass the .dvc file to modelaudit as a target to fetch and scan it.",
    severity=IssueSeverity.INFO,
)

DVC_STAGE_COMMAND = define_rule(
    "MA4902",
    "DvcStageCommand",
    "A .dvc file defines a stage command, which `dvc repro` runs as a shell command.",
    "Read the command before running `dvc repro`; pointer files written by `dvc add` have none.",
    cwe=78,
)

MLMODEL_LOADER = define_rule(
    "MA4903",
    "MlflowCustomLoader",
    "The MLmodel makes mlflow import a module outside MLflow, or Python code shipped with the "
    "model, when the model is loaded.",
    "mlflow.pyfunc.load_model imports `loader_module` (from the model's `code` directory if it "
    "has one) and calls it. Read that code before loading the model.",
    cwe=94,
)

MLMODEL_SHIPPED_CODE = define_rule(
    "MA4905",
    "MlflowShippedCodeRuns",
    "Loading the MLflow model runs Python shipped in the model's folder: a loader module or "
    "PythonModel class from its `code` directory, or a model-from-code file.",
    "mlflow.pyfunc.load_model imports that file and calls `_load_pyfunc` or `load_context`. "
    "Read the file before loading the model, or load only models you built.",
    severity=IssueSeverity.CRITICAL,
    cwe=94,
)

MLFLOW_ENV_SOURCE = define_rule(
    "MA4904",
    "MlflowEnvironmentSource",
    "An MLflow model's environment (requirements.txt, constraints.txt, python_env.yaml, "
    "conda.yaml) takes a package from a URL, a version-control checkout, a local path or a "
    "package index the model chose, which environment restoration installs.",
    "Restoring the environment (`--env-manager virtualenv|conda|uv`, spark_udf, "
    "`pip install -r`) runs that package's build and install code. Replace the requirement "
    "with a pinned release from your own index, or restore without it.",
    severity=IssueSeverity.WARNING,
    cwe=829,
)

PYTHON_IMPORT_EXEC = define_rule(
    "MA4950",
    "PythonCodeRunsOnImport",
    "A Python file shipped with the model runs commands, executes decoded or dynamic code, "
    "loads native code or unpickles data when it is imported, or while a class that loaders "
    "instantiate (`auto_map`, trust_remote_code) is being built.",
    "Do not load the model with trust_remote_code=True; read the file and remove the code.",
    severity=IssueSeverity.CRITICAL,
    cwe=94,
)
PYTHON_BEHAVIOUR = define_rule(
    "MA4951",
    "PythonCodeBehaviour",
    "A Python file shipped with the model can run commands, execute code, reach the network "
    "or write files when its functions are called.",
    "Review what the file does before running it or loading the model with trust_remote_code=True.",
    severity=IssueSeverity.WARNING,
    cwe=94,
)
PYTHON_UNPARSEABLE = define_rule(
    "MA4952",
    "PythonFileUnparseable",
    "A Python file shipped with the model could not be parsed, so what it does is unknown.",
    "Python refuses it too unless it targets another version; read it before running it.",
    severity=IssueSeverity.INFO,
)
