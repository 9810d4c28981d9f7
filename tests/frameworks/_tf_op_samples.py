"""Op names the TensorFlow build script writes one GraphDef for and the tests judge."""

from __future__ import annotations

#: Stock ops that read or write host files by a path their inputs or attributes name.
FILE_OP_SAMPLES = (
    "RecordInput",
    "GenerateVocabRemapping",
    "LoadAndRemapMatrix",
    "CalibrationStatisticsSaver",
    "ListSnapshotChunksDataset",
    "SnapshotChunkDataset",
    "SnapshotNestedDatasetReader",
    "FileSystemSetConfiguration",
    "DumpTensor",
    "CreateSummaryFileWriter",
    "CreateSummaryDbWriter",
)
#: Summary ops that write events into a writer resource without choosing its file.
SUMMARY_WRITE_OP_SAMPLES = ("WriteSummary", "WriteRawProtoSummary", "ImportEvent")
#: Debug ops that dump the tensors they see to their `debug_urls`.
DEBUG_OP_SAMPLES = ("DebugIdentity", "DebugIdentityV2", "DebugIdentityV3")
