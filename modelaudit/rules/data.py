"""Rules of the data formats (MA4000-MA4199, MA4500-MA4899): safetensors, GGUF/GGML, msgpack, executables, data-only vocabularies and converted weights, Parquet and Arrow IPC schemas."""

from __future__ import annotations

from ..findings import IssueSeverity
from .catalogue import define_rule

# -- safetensors_scanner

SAFETENSORS_HEADER_TOO_LARGE = define_rule(
    "MA4000",
    "SafetensorsHeaderTooLarge",
    "The safetensors header length is absurd (larger than the file or than 100 MB).",
    "A loader would allocate the claimed size or fail; replace the file with a known-good copy.",
    cwe=409,
)

SAFETENSORS_BAD_LAYOUT = define_rule(
    "MA4001",
    "SafetensorsBadLayout",
    "Tensor offsets or sizes in the safetensors header are inconsistent.",
    "Gaps, overlaps or size mismatches let different loaders see different data, or hide bytes "
    "in the file. Regenerate the file with the safetensors library.",
    cwe=20,
)

SAFETENSORS_UNKNOWN_DTYPE = define_rule(
    "MA4002",
    "SafetensorsUnknownDtype",
    "A tensor uses a dtype the safetensors format does not define.",
    "Regenerate the file with the safetensors library; an unknown dtype is not a real tensor.",
)

SAFETENSORS_METADATA_PAYLOAD = define_rule(
    "MA4003",
    "SafetensorsMetadataPayload",
    "The safetensors `__metadata__` holds code, a pickle or a URL.",
    "Metadata is free text that tools may display, fetch or evaluate. Remove the payload and "
    "never pass metadata values to eval, pickle or a downloader.",
    cwe=94,
)

SAFETENSORS_BAD_HEADER = define_rule(
    "MA4004",
    "SafetensorsBadHeader",
    "The safetensors header is not the JSON object the format specifies.",
    "Regenerate the file with the safetensors library.",
    cwe=20,
)

# -- gguf_scanner

GGUF_BAD_HEADER = define_rule(
    "MA4100",
    "GgufBadHeader",
    "The GGUF header has an unknown version or an impossible count or length.",
    "Crafted counts and lengths target memory bugs in GGUF parsers (llama.cpp advisories of "
    "2024). Do not load the file; replace it with a known-good copy.",
    cwe=787,
)

GGUF_BAD_TENSORS = define_rule(
    "MA4101",
    "GgufBadTensorLayout",
    "GGUF tensor offsets are misaligned, overlapping or outside the file.",
    "A loader may read out of bounds or see different weights than other tools. Regenerate "
    "the file with gguf or llama.cpp's converters.",
    cwe=125,
)

GGUF_UNKNOWN_TENSOR_TYPE = define_rule(
    "MA4102",
    "GgufUnknownTensorType",
    "A GGUF tensor uses a ggml type this scanner does not know.",
    "Usually a newer quantisation; check the file came from a trusted converter.",
    severity=IssueSeverity.INFO,
)

# -- ggml_scanner

GGML_BAD_HEADER = define_rule(
    "MA4103",
    "GgmlBadHeader",
    "The legacy GGML header has an unknown version or impossible hyperparameters.",
    "Old GGML loaders trust these values for allocations. Replace the file, preferably with a "
    "GGUF conversion from a trusted source.",
    cwe=787,
)

# -- msgpack_scanner

MSGPACK_HOSTILE = define_rule(
    "MA4500",
    "MsgpackHostileStructure",
    "The msgpack stream declares lengths or nesting no legitimate checkpoint has.",
    "Decoders that trust them over-allocate or recurse without bound. Replace the file.",
    cwe=409,
)

MSGPACK_UNKNOWN_EXT = define_rule(
    "MA4501",
    "MsgpackUnknownExtension",
    "The msgpack stream uses an extension type Flax does not define.",
    "A custom ext_hook decides what such values become; check what reads this file.",
)

MSGPACK_EMBEDDED_PICKLE = define_rule(
    "MA4502",
    "MsgpackEmbeddedPickle",
    "A bytes value in the msgpack stream is a pickle.",
    "Code that unpickles the value runs whatever the pickle imports. Remove it and store "
    "arrays with Flax's ndarray extension.",
    cwe=502,
)

MSGPACK_PAYLOAD = define_rule(
    "MA4503",
    "MsgpackSuspiciousContent",
    "The msgpack stream holds trailing objects, code strings or unusual array dtypes.",
    "Regenerate the checkpoint with flax.serialization and inspect what else was added.",
)

# -- executable_scanner

EXECUTABLE_FILE = define_rule(
    "MA4700",
    "ExecutableFile",
    "The file is a native program, shared library or script.",
    "Models do not need programs. Find out why it is shipped and what runs it; remove it if "
    "nothing should.",
    cwe=506,
)

DISGUISED_EXECUTABLE = define_rule(
    "MA4701",
    "DisguisedExecutable",
    "A file named like a model is actually a native program or script.",
    "Do not use the model. A program disguised as weights exists to be run or loaded as a "
    "library by some step of your pipeline.",
    severity=IssueSeverity.CRITICAL,
    cwe=506,
)

# -- data-only vocabulary and weight files (sentencepiece, fasttext, ctranslate2, word2vec)

DATA_ONLY_CORRUPT = define_rule(
    "MA4801",
    "DataOnlyFileCorrupt",
    "A data-only file is corrupt. Its own loader will refuse it, and no loader of code can "
    "read it either, so nothing in it runs.",
    "Replace the file with a known-good copy if you need it.",
    severity=IssueSeverity.INFO,
)

# -- arrow_scanner (Parquet, Arrow IPC / Feather v2)

ARROW_PICKLED_EXTENSION = define_rule(
    "MA4802",
    "ArrowPickledExtensionType",
    "A Parquet or Arrow IPC (Feather, `.arrow`) schema declares a field of type "
    "`arrow.py_extension_type`, whose metadata pyarrow before 14.0.1 unpickles when it reads "
    "the file (CVE-2023-47248).",
    "Do not read the file with pyarrow older than 14.0.1 (or without `pyarrow_hotfix`); "
    "datasets, pandas and Hugging Face caches read it through pyarrow. No legitimate writer "
    "needs pickled extension types: regenerate the data with a registered ExtensionType.",
    cwe=502,
)

# -- array stores whose codecs unpickle what they read

ZARR_PICKLE_CODEC = define_rule(
    "MA4810",
    "ZarrPickleCodec",
    "A zarr array decodes its chunks with numcodecs' Pickle codec.",
    "Reading the array's data runs pickle.loads on every chunk it reads, and a chunk can run "
    "any code. Do not read it unless you trust who wrote the store; rewrite object arrays "
    "with a codec that holds only data (vlen-utf8, JSON, msgpack).",
    severity=IssueSeverity.WARNING,
    cwe=502,
)
