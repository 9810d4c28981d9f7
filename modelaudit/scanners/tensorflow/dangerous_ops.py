"""The one list of TensorFlow ops that run Python, touch files or the network.

Shared by the SavedModel/GraphDef judge (graph nodes), the TFLite scanner (Flex ops, which
run TensorFlow kernels), and the Keras config checks (`TFOpLambda`/`SlicingOpLambda` layers
naming `tf.raw_ops.WriteFile`, `tf.io.write_file`, ...; Lambda code naming them), so an op
added here is caught in every format at once. Plain data and string functions; nothing here
imports TensorFlow.
"""

from __future__ import annotations

import re
from typing import Final


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


PYTHON_OPS: Final = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})
FILE_OPS: Final = _words(
    """
    ReadFile WriteFile MatchingFiles ImmutableConst WholeFileReader WholeFileReaderV2
    TextLineReader TextLineReaderV2 FixedLengthRecordReader FixedLengthRecordReaderV2
    TFRecordReader TFRecordReaderV2 LMDBReader IdentityReader IdentityReaderV2 TextLineDataset
    TFRecordDataset TFRecordDatasetV2 FixedLengthRecordDataset FixedLengthRecordDatasetV2
    CSVDataset CSVDatasetV2 ExperimentalCSVDataset LMDBDataset ExperimentalLMDBDataset
    SaveDataset SaveDatasetV2 LoadDataset ExperimentalSaveDataset SnapshotDataset
    SnapshotDatasetV2 SnapshotDatasetReader DatasetToTFRecord ExperimentalDatasetToTFRecord
    MatchingFilesDataset ExperimentalMatchingFilesDataset CreateSummaryFileWriter
    CreateSummaryDbWriter SqlDataset ExperimentalSqlDataset
    RecordInput GenerateVocabRemapping LoadAndRemapMatrix CalibrationStatisticsSaver
    ListSnapshotChunksDataset SnapshotChunkDataset SnapshotNestedDatasetReader
    FileSystemSetConfiguration DumpTensor
    """
)
NETWORK_OPS: Final = _words(
    """
    Rpc TryRpc RpcClient RpcCall RpcCheckStatus RpcServer RpcServerStart RpcServerRegister
    DataServiceDataset DataServiceDatasetV2 DataServiceDatasetV3 DataServiceDatasetV4
    RegisterDataset RegisterDatasetV2 DistributedSave
    """
)
#: Save/restore ops: expected inside a SavedModel's own checkpoint functions, anywhere else
#: they read or write whatever path their inputs name.
CHECKPOINT_OPS: Final = frozenset(
    {
        "Save",
        "SaveV2",
        "SaveSlices",
        "Restore",
        "RestoreV2",
        "RestoreSlice",
        "MergeV2Checkpoints",
        # DTensor's restore (the DTensor device lowers it to RestoreV2): reads the prefix given
        "DTensorRestoreV2",
    }
)
#: Summary writer creators (`CreateSummaryFileWriter`, `CreateSummaryDbWriter`) are file ops:
#: they open the log folder or database their inputs name. These write events into a writer
#: resource and choose no path: one the graph creates (then the creator is reported), or one
#: the host made under a name the graph can repeat (`SummaryWriter(shared_name=...)`: TF1
#: graphs and the legacy `create_file_writer`, whose writer is `logdir:<path>`).
SUMMARY_WRITE_OPS: Final = frozenset(
    {
        "WriteSummary",
        "WriteScalarSummary",
        "WriteHistogramSummary",
        "WriteImageSummary",
        "WriteAudioSummary",
        "WriteGraphSummary",
        "WriteRawProtoSummary",
        "ImportEvent",
        "StatsAggregatorSetSummaryWriter",
    }
)
SUMMARY_CREATORS: Final = frozenset({"CreateSummaryFileWriter", "CreateSummaryDbWriter"})
TEXT_TABLE_OPS: Final = frozenset({"InitializeTableFromTextFile", "InitializeTableFromTextFileV2"})
DEBUG_URL_OPS: Final = frozenset(
    {
        "DebugIdentity",
        "DebugIdentityV2",
        "DebugIdentityV3",
        "DebugNanCount",
        "DebugNumericSummary",
        "DebugNumericSummaryV2",
    }
)
PROTO_OPS: Final = frozenset({"DecodeProtoV2", "EncodeProto"})
#: tf.data caches: an empty `filename` caches in memory, any other writes cache files there.
CACHE_OPS: Final = frozenset({"CacheDataset", "CacheDatasetV2"})
#: Ops whose input is a serialized GraphDef that the dataset runs.
GRAPH_INPUT_OPS: Final = frozenset({"DatasetFromGraph"})
#: Ops that are dangerous whatever their attributes (the rest need their attributes read).
DANGEROUS_TF_OPS: Final = PYTHON_OPS | FILE_OPS | NETWORK_OPS
#: Ops dangerous wherever no checkpoint context vouches for them (a TFLite Flex op, a layer).
DANGEROUS_OUTSIDE_GRAPH: Final = DANGEROUS_TF_OPS | CHECKPOINT_OPS

_CAMEL: Final = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake_name(op: str) -> str:
    """The Python API spelling of an op name (`WriteFile` -> `write_file`,
    `EagerPyFunc` -> `eager_py_func`)."""
    return _CAMEL.sub("_", op).lower()


#: The same ops as the Python functions TensorFlow generates for them (`tf.io.write_file`).
DANGEROUS_OP_FUNCTIONS: Final = frozenset(snake_name(op) for op in DANGEROUS_OUTSIDE_GRAPH)
#: Python API functions without an op of the same name that run Python, load native code
#: or another model, or write files.
DANGEROUS_TF_FUNCTIONS: Final = frozenset(
    {
        "py_function",
        "numpy_function",
        "load_op_library",
        "load_library",
        "load_file_system_library",
        "load_pluggable_device_library",
        "create_file_writer",
        "write_graph",
        "enable_dump_debug_info",
    }
)
#: API namespaces every function of which reaches files or other models.
DANGEROUS_TF_NAMESPACES: Final = frozenset(
    {"gfile", "saved_model", "summary", "profiler", "keras", "lite"}
)


def tf_api_danger(function: str) -> str | None:
    """The dangerous op or API a TensorFlow symbol path names (`raw_ops.WriteFile`,
    `io.write_file`, `compat.v1.py_func`, `io.gfile.GFile`), else None. Paths are what
    Keras's `TFOpLambda` stores: the symbol's name under `tf.`."""
    parts = [p.strip() for p in function.split(".")[:64]]
    leaf = parts[-1]
    if leaf in DANGEROUS_OUTSIDE_GRAPH or leaf in GRAPH_INPUT_OPS:
        return leaf
    if leaf in DANGEROUS_OP_FUNCTIONS or leaf in DANGEROUS_TF_FUNCTIONS:
        return leaf
    for part in parts[:-1]:
        if part in DANGEROUS_TF_NAMESPACES:
            return f"{part}.{leaf}"
    return None


#: PrintV2 output streams that go to the process's own output or log, not a file.
LOG_STREAMS: Final = frozenset({"", "stderr", "stdout", "log(info)", "log(warning)", "log(error)"})


def node_danger(op: str, attrs: dict[str, list[str]]) -> str | None:
    """Why one node, judged alone (no graph around it to vouch for a checkpoint op or show
    a cache's filename), is dangerous, else None. Used for a TFLite Flex op's NodeDef."""
    if op in PYTHON_OPS:
        return f"{op} runs Python"
    if op in FILE_OPS or op in CHECKPOINT_OPS or op in CACHE_OPS:
        return f"{op} reads or writes files"
    if op in NETWORK_OPS:
        return f"{op} opens network connections"
    if op in GRAPH_INPUT_OPS:
        return f"{op} runs a serialized graph given as a tensor"
    if op == "PrintV2" and (attrs.get("output_stream") or [""])[0] not in LOG_STREAMS:
        return f"{op} writes to {(attrs.get('output_stream') or [''])[0]!r}"
    if op in DEBUG_URL_OPS and any(attrs.get("debug_urls", [])):
        return f"{op} sends tensors to {[u for u in attrs['debug_urls'] if u][:3]}"
    if op in PROTO_OPS and (attrs.get("descriptor_source") or ["local://"])[0] != "local://":
        return f"{op} loads descriptors from {attrs['descriptor_source'][0]!r}"
    return None
