"""Rule ids of the pickle engine (MA1000-MA1999).

Ids are stable: a SARIF consumer keys alerts on them, so a rule never changes meaning.
"""

from __future__ import annotations

from ..findings import IssueSeverity
from .catalogue import define_rule

_LOAD_HELP = (
    "Do not load this file with pickle, torch.load(weights_only=False), joblib.load or "
    "numpy.load(allow_pickle=True). Obtain the model from a trusted source, or convert it to "
    "a format without code (safetensors, ONNX) in an isolated sandbox."
)

DANGEROUS_GLOBAL = define_rule(
    "MA1001",
    "PickleDangerousGlobal",
    "The pickle imports a callable that runs code, spawns processes, or touches files or the "
    "network when the file is loaded.",
    _LOAD_HELP,
    severity=IssueSeverity.CRITICAL,
    cwe=502,
)
DANGEROUS_CALL = define_rule(
    "MA1002",
    "PickleDangerousCall",
    "Loading the pickle calls a dangerous callable with arguments the file chooses.",
    _LOAD_HELP,
    severity=IssueSeverity.CRITICAL,
    cwe=502,
)
CARRIED_CODE = define_rule(
    "MA1007",
    "PickleCarriesCode",
    "The pickle carries Python code (functions or classes stored as bytecode by cloudpickle, "
    "dill or marshal) that runs when the file is loaded.",
    _LOAD_HELP,
    severity=IssueSeverity.CRITICAL,
    cwe=502,
)
RESOLVER = define_rule(
    "MA1003",
    "PickleAttributeWalk",
    "The pickle reaches a dangerous object through an attribute walk, a resolver function or a "
    "dotted name, which hides the real target from name-based checks.",
    _LOAD_HELP,
    severity=IssueSeverity.CRITICAL,
    cwe=502,
)
GLOBAL_MUTATION = define_rule(
    "MA1004",
    "PickleGlobalMutation",
    "The pickle modifies a module-level object (item assignment, append or __setstate__ on a "
    "global) while it is being loaded.",
    _LOAD_HELP,
    severity=IssueSeverity.CRITICAL,
    cwe=502,
)
EXTENSION_CODE = define_rule(
    "MA1005",
    "PickleExtensionCode",
    "The pickle uses an EXT1/EXT2/EXT4 extension code, which resolves to a global through the "
    "loading process's copyreg registry and so can name any callable.",
    _LOAD_HELP,
    severity=IssueSeverity.CRITICAL,
    cwe=502,
)
NESTED_PICKLE = define_rule(
    "MA1006",
    "NestedPickleThreat",
    "A byte or string constant holds another pickle (raw or base64/hex/zlib wrapped) that "
    "imports or calls something dangerous.",
    _LOAD_HELP,
    severity=IssueSeverity.CRITICAL,
    cwe=502,
)
UNKNOWN_GLOBAL = define_rule(
    "MA1010",
    "PickleUnknownGlobal",
    "The pickle imports a global that is not on the list of names real models use.",
    "Check that the named module is a library you trust and expect in this model; custom "
    "classes run their own code on load. Prefer a weights-only format.",
    severity=IssueSeverity.WARNING,
    cwe=502,
)
SUSPICIOUS_CALL = define_rule(
    "MA1011",
    "PickleSuspiciousCall",
    "Loading the pickle calls something in an unusual way (a bound method, an unknown codec, "
    "a dynamic attribute name).",
    "Review what the call does before loading the file; legitimate models rarely need it.",
    severity=IssueSeverity.WARNING,
    cwe=502,
)
STRUCTURE_BOMB = define_rule(
    "MA1012",
    "PickleStructureBomb",
    "A pickle is shaped as a resource bomb: shared references that expand enormously, "
    "extreme nesting, a long stream that builds almost nothing, or a memo index that makes "
    "pickle.load allocate gigabytes.",
    "Do not walk, print or re-serialise the loaded object; obtain a clean copy of the file.",
    severity=IssueSeverity.WARNING,
    cwe=409,
)
MALFORMED_PICKLE = define_rule(
    "MA1020",
    "PickleMalformed",
    "The pickle stream is truncated or corrupt; what came before the damage is still executed "
    "by a loader.",
    "Replace the file with a known-good copy; do not load it.",
    severity=IssueSeverity.INFO,
)
FRAME_STRADDLE = define_rule(
    "MA1008",
    "PickleReadingsDiffer",
    "An opcode runs past the end of a pickle FRAME, so pickle.load(file), torch.load and "
    "pickle.loads(bytes) read different opcodes from the same file; Python never writes this, "
    "it is built to show a scanner one program and a loader another.",
    _LOAD_HELP,
    severity=IssueSeverity.CRITICAL,
    cwe=502,
)
