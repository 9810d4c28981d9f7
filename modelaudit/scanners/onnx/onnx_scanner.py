"""ONNX models: external data locations, custom and Python operators.

`formats/onnx.py` walks the model at the protobuf wire level (what `onnx.load(...,
load_external_data=False)` would parse) without reading tensor data; this module judges what it
found. The onnx library's operator schemas decide which ops of the standard domains exist.
"""

from __future__ import annotations

import os
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Final

from ...budget import BudgetExceeded, report_budget
from ...formats.onnx import MAX_NODE_KINDS, OnnxModel, OnnxNode, read_model
from ...formats.protowire import WireError
from ...lazy_re import LazyPattern
from ...rules import frameworks as R
from ..base import BaseScanner, IssueSeverity, ScanResult
from ..keras.config import _escapes
from ..keras.h5_scanner import missing_dependency
from .op_schemas import HasSchema, has_schema_function


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


STANDARD_DOMAINS: Final = frozenset(
    {"", "ai.onnx", "ai.onnx.ml", "ai.onnx.training", "ai.onnx.preview", "ai.onnx.preview.training"}
)
PYTHON_OPS: Final = frozenset({"PyOp", "PythonOp", "PythonOpGrad", "PyFunc", "PyCustomOp"})
PYTHON_DOMAINS: Final = frozenset({"ai.onnx.contrib", "com.microsoft.extensions"})
#: ONNX Runtime contrib ops (com.microsoft) that ship with onnxruntime itself (its schema
#: registry, 1.32, and two layer norms older releases registered there).
ORT_CONTRIB_OPS: Final = _words(
    """
    Attention AttnLSTM BeamSearch BiasAdd BiasDropout BiasGelu BiasSoftmax BiasSplitGelu
    BifurcationDetector BitmaskBiasDropout BitmaskDropout BranchwiseRMSNorm CDist
    CausalConvWithState ComplexMul ComplexMulConj ConvStateReplay ConvTransposeWithDynamicPads
    CropAndResize DecoderAttention DecoderMaskedMultiHeadAttention DecoderMaskedSelfAttention
    DequantizeBFP DequantizeLinear DequantizeWithOrder DynamicQuantizeLSTM
    DynamicQuantizeMatMul DynamicSparseAttention DynamicTimeWarping EPContext
    EmbedLayerNormalization EngramGate ExpandDims FastGelu FusedConv FusedGemm FusedMatMul
    FusedMatMulActivation GatedAdd GatedDeltaNet GatedDeltaNetStateReplay GatedRMSNorm
    GatedRelativePositionBias GatherBlockQuantized GatherND GatherPacked Gelu GemmFastGelu
    GemmFloat8 GemmaRotaryEmbedding GreedySearch GridSample GroupNorm GroupQueryAttention
    HyperConnectionLowRankMix HyperConnectionPostMix HyperConnectionPreMix Inverse Irfft
    IsAllFinite LayerNormalization LinearAttention LinearAttentionGate LongformerAttention
    MRotaryEmbedding Mamba2Verify MatMulBlockQuantizedFp4Weight MatMulBlockQuantizedFp8Weight
    MatMulBnb4 MatMulFpQ4 MatMulInteger16 MatMulIntegerToFloat MatMulNBits MatMulNBitsMlp
    MatMulNBitsQLoRA MatMulNBitsQkv MatMulPacked MaxpoolWithMask MoE MoEGroupRouter MoEPacked
    MulInteger MultiHeadAttention MurmurHash3 NGramHashMapping NGramRepeatBlock NhwcConv
    NhwcFusedConv NhwcMaxPool PackedAttention PackedMultiHeadAttention
    PackedSparseAttentionIndexer PackedSparseAttentionIndexerMerge Pad PagedAttention
    QAttention QEmbedLayerNormalization QGemm QLinearAdd QLinearAveragePool QLinearConcat
    QLinearConv QLinearGlobalAveragePool QLinearLeakyRelu QLinearMul QLinearReduceMean
    QLinearSigmoid QLinearSoftmax QLinearWhere QMoE QOrderedAttention QOrderedGelu
    QOrderedLayerNormalization QOrderedLongformerAttention QOrderedMatMul QuantizeBFP
    QuantizeLinear QuantizeWithOrder QuickGelu RMSNormRotary Range ReduceSumInteger
    RelativePositionBias RemovePadding RestorePadding Rfft RotaryEmbedding RouterGateUpProj
    SampleOp Sampling ScaledSiLU SimplifiedLayerNormalization SkipGroupNorm
    SkipLayerNormalization SkipSimplifiedLayerNormalization Snpe SparseAttention
    SparseAttentionIndexer SparsePagedAttention SparseToDenseMatMul SpeculativePrefixCommit
    SwiGLU Tokenizer TorchEmbedding TransposeMatMul Trilu UnfoldTensor Unique
    VarlenCausalConvWithState VarlenNGramHashMapping WhisperBeamSearch WordConvEmbedding
    """
)
#: ONNX Runtime's own operators by domain: its contrib ops, and the layout domains it writes
#: into a model it saves optimized (`SessionOptions.optimized_model_filepath`).
ORT_DOMAIN_OPS: Final[dict[str, frozenset[str]]] = {
    "com.microsoft": ORT_CONTRIB_OPS,
    "com.microsoft.nchwc": _words(
        "AveragePool Conv GlobalAveragePool GlobalMaxPool MaxPool ReorderInput ReorderOutput "
        "Upsample"
    ),
    "com.ms.internal.nhwc": _words(
        "AveragePool BatchNormalization Conv ConvTranspose DepthToSpace GlobalAveragePool "
        "GlobalLpPool GlobalMaxPool GridSample InstanceNormalization LRN LpPool MaxPool "
        "MaxUnpool QLinearAveragePool QLinearConv QLinearConvTranspose Resize SpaceToDepth"
    ),
}

#: onnxruntime-extensions' operators (domain ai.onnx.contrib) that transform the tensors they
#: are given: tokenizers, string, audio and image codecs. Not its PyOp family (Python code),
#: its Azure/OpenAI invokers (HTTP requests to a URL) or ImageReader (reads a path).
ORT_EXTENSIONS_OPS: Final = _words(
    """
    AudioDecoder BasicTokenizer BertTokenizer BertTokenizerDecoder BlingFireSentenceBreaker
    BpeDecoder CLIPTokenizer DecodeImage DrawBoundingBoxes EncodeImage GaussianBlur
    GPT2Tokenizer HfBertTokenizer HfJsonTokenizer ImageDecoder Inverse MaskedFill
    MergeSignalSegments RaggedTensorToDense RaggedTensorToSparse RobertaTokenizer
    SegmentExtraction SegmentSum SentencepieceDecoder SentencepieceTokenizer SplitSignalSegments
    SpmTokenizer StftNorm StringConcat StringECMARegexReplace StringECMARegexSplitWithOffsets
    StringEqual StringJoin StringLength StringLower StringMapping StringRaggedTensorToDense
    StringRegexReplace StringRegexSplitWithOffsets StringSplit StringStrip StringToHashBucket
    StringToHashBucketFast StringToVector StringUpper TrieDetokenizer TrieTokenizer
    VectorToString WordpieceTokenizer
    """
)
#: TensorRT's own plugins (libnvinfer_plugin, shipped with TensorRT), as its ONNX parser finds
#: them for unknown ops: NMS and detection heads in YOLO end-to-end exports, BERT kernels.
TENSORRT_PLUGINS: Final = _words(
    """
    BatchTilePlugin_TRT BatchedNMS_TRT BatchedNMSDynamic_TRT CustomQKVToContextPluginDynamic
    Clip_TRT CoordConvAC CropAndResize CropAndResizeDynamic DecodeBbox3DPlugin DetectionLayer_TRT
    DisentangledAttention_TRT EfficientNMS_TRT EfficientNMS_ONNX_TRT
    CustomEmbLayerNormPluginDynamic CustomFCPluginDynamic FlattenConcat_TRT
    CustomGeluPluginDynamic GenerateDetection_TRT GridAnchor_TRT GridAnchorRect_TRT
    GroupNormalizationPlugin InstanceNormalization_TRT LReLU_TRT ModulatedDeformConv2d
    MultilevelCropAndResize_TRT MultilevelProposeROI_TRT MultiscaleDeformableAttnPlugin_TRT
    NMS_TRT NMSDynamic_TRT Normalize_TRT RPROI_TRT PillarScatterPlugin PriorBox_TRT
    ProposalLayer_TRT Proposal ProposalDynamic PyramidROIAlign_TRT Region_TRT Reorg_TRT
    ROIAlign_TRT ResizeNearest_TRT CustomSkipLayerNormPluginDynamic SpecialSlice_TRT
    VoxelGeneratorPlugin
    """
)


@dataclass(frozen=True, eq=False)
class KnownOps:
    """Operators of a library users install by name (not a model's own native code): running
    the model needs that library, which one INFO says instead of a WARNING per operator."""

    library: str
    domains: frozenset[str]
    ops: frozenset[str]
    why: str


KNOWN_OP_LIBRARIES: Final = (
    KnownOps(
        "onnxruntime-extensions",
        frozenset({"ai.onnx.contrib"}),
        ORT_EXTENSIONS_OPS,
        "Running the model needs onnxruntime-extensions' library registered; these operators "
        "tokenize or decode the tensors they are given.",
    ),
    KnownOps(
        "TensorRT plugins",
        frozenset({"", "ai.onnx", "TRT"}),
        TENSORRT_PLUGINS,
        "TensorRT runs these from the plugin library it ships; ONNX Runtime needs its TensorRT "
        "execution provider.",
    ),
)


def known_library(domain: str, op: str) -> KnownOps | None:
    for known in KNOWN_OP_LIBRARIES:
        if domain in known.domains and op in known.ops:
            return known
    return None


#: The location ONNX Runtime (`kTensorProtoMemoryAddressTag`) and OpenVINO's ONNX frontend
#: read as "the bytes are already in this process at address `offset`": never a file, and in
#: a model file an arbitrary read of the loader's memory.
ORT_MEMORY_ADDRESS: Final = "*/_ORT_MEM_ADDR_/*"


#: The operator names of pnnx's own graph IR (`nn.Conv2d`, `F.relu`, `torch.cat`,
#: `Tensor.view`, `pnnx.Input`, `prim::Constant`), which pnnx also writes as a debug ONNX file.
_PNNX_OP: Final = LazyPattern(
    r"(?:pnnx|nn|F|torch|Tensor|torchvision)\.[A-Za-z_][\w.]*|(?:prim|aten)::\w+"
)
_PNNX_ENDS: Final = frozenset({"pnnx.Input", "pnnx.Output"})


def is_pnnx_debug_graph(model: OnnxModel) -> bool:
    """pnnx's `model.pnnx.onnx`: its IR written with neither an IR version nor an opset
    import, which ONNX Runtime refuses to load ("Missing opset in the model"), so no runtime
    looks for a library behind its operator names."""
    return (
        not model.opsets
        and model.ir_version == 0
        and any(n.domain == "" and n.op_type in _PNNX_ENDS for _, n in model.nodes)
    )


def is_python_op(node: OnnxNode) -> bool:
    """A node the runtime hands to Python code registered under its name."""
    op = node.op_type
    return op in PYTHON_OPS or (node.domain in PYTHON_DOMAINS and op.startswith("Py"))


def judged_by_name(node: OnnxNode) -> tuple[str, Hashable] | None:
    """What `_judge_nodes` must see of a node even past the walker's cap on kinds: any
    Python op (one is enough to make the file CRITICAL), and each EPContext that loads its
    engine cache from a path, by that path."""
    if is_python_op(node):
        return "python", None
    if node.op_type == "EPContext" and node.ints.get("embed_mode", 1) == 0:
        return "EPContext", node.strings.get("ep_cache_context", "")
    return None


class OnnxScanner(BaseScanner):
    name = "onnx"
    description = "ONNX models: external data paths, custom and Python operators"
    supported_extensions = [".onnx"]
    formats = ("onnx",)

    def scan(self, path: str) -> ScanResult:
        result = self._create_result()
        try:
            has_schema = has_schema_function()
        except ImportError:
            missing_dependency(result, "onnx", "ONNX models", self.location(path))
            result.finish()
            return result
        result.bytes_scanned = self.file_size(path)
        try:
            model = read_model(path, judged_by_name)
        except (WireError, OSError, ValueError) as exc:
            self.mark_malformed(result, path, "ONNX model", exc)
            result.finish()
            return result
        if not model.graph_names and not model.nodes and not model.ir_version:
            result.mark_inconclusive("malformed: no ONNX model structure found")
        if model.kinds_dropped:
            report_budget(
                result, self.location(path), BudgetExceeded("ONNX node kinds", MAX_NODE_KINDS)
            )
        self._judge_nodes(model, has_schema, path, result)
        self._judge_externals(model, path, result)
        names = [n for n in (*model.graph_names, model.producer) if n]
        if names:
            result.metadata["model_names"] = names
        result.metadata["format_details"] = {
            "ir_version": model.ir_version,
            "producer": model.producer,
            "producer_version": model.producer_version,
            "opsets": model.opsets,
            "nodes": model.node_count,
            "initializers": model.initializers,
            "external_tensors": len(model.externals),
        }
        result.finish()
        return result

    def _judge_nodes(
        self, model: OnnxModel, has_schema: HasSchema, path: str, result: ScanResult
    ) -> None:
        seen: set[tuple[str, str]] = set()
        pnnx = is_pnnx_debug_graph(model)
        pnnx_ops: list[str] = []
        library_ops: dict[KnownOps, list[str]] = {}
        for where, node in model.nodes:
            domain, op = node.domain, node.op_type
            loc = self.location(path, f"{where}/{node.name or op}")
            details = {"op_type": op, "domain": domain, "node": node.name, "scope": where}
            if is_python_op(node):
                result.add_issue(
                    f"Python operator {domain or 'ai.onnx'}::{op} in node '{node.name}'",
                    severity=IssueSeverity.CRITICAL,
                    location=loc,
                    details=details,
                    why="The runtime calls Python code registered under this name while the "
                    "model runs, so the model can execute arbitrary code.",
                    rule=R.ONNX_PYTHON_OP,
                )
                continue
            if op == "EPContext" and node.ints.get("embed_mode", 1) == 0:
                self._ep_context(node, path, loc, result)
            if (domain, op) in model.functions:
                continue
            if (domain, op) in seen:
                continue
            if domain in STANDARD_DOMAINS:
                schema_domain = "" if domain == "ai.onnx" else domain
                if has_schema(op, schema_domain):
                    continue
                seen.add((domain, op))
                if pnnx and not domain and _PNNX_OP.fullmatch(op):
                    pnnx_ops.append(op)
                    continue
                if (known := known_library(domain, op)) is not None:
                    library_ops.setdefault(known, []).append(op)
                    continue
                result.add_issue(
                    f"Unknown operator {op} in standard domain '{domain or 'ai.onnx'}'",
                    severity=IssueSeverity.WARNING,
                    location=loc,
                    details=details,
                    why="The runtime must find this op in a custom library, which runs native "
                    "code the scan cannot see.",
                    rule=R.ONNX_UNKNOWN_OP,
                )
            elif op in ORT_DOMAIN_OPS.get(domain, ()):
                continue
            elif (known := known_library(domain, op)) is not None:
                seen.add((domain, op))
                library_ops.setdefault(known, []).append(op)
            else:
                seen.add((domain, op))
                result.add_issue(
                    f"Custom operator {domain}::{op}",
                    severity=IssueSeverity.WARNING,
                    location=loc,
                    details=details,
                    why="Running the model needs a custom-op library registered for this domain; "
                    "that native code is outside the model and unverified.",
                    rule=R.ONNX_CUSTOM_DOMAIN,
                )
        for known, ops in library_ops.items():
            result.add_issue(
                f"{known.library} operators: {', '.join(ops)}",
                severity=IssueSeverity.INFO,
                location=self.location(path),
                details={"operators": ops, "library": known.library},
                why=known.why,
                rule=R.ONNX_CUSTOM_DOMAIN,
            )
        if pnnx_ops:
            shown = ", ".join(pnnx_ops[:8]) + (", ..." if len(pnnx_ops) > 8 else "")
            result.add_issue(
                f"pnnx debug graph: {len(pnnx_ops)} operator(s) of pnnx's IR ({shown})",
                severity=IssueSeverity.INFO,
                location=self.location(path),
                details={"operators": pnnx_ops},
                why="The file has no IR version and no opset import, so ONNX Runtime refuses "
                "it; ncnn and pnnx load the .param/.bin files beside it instead.",
                rule=R.ONNX_UNKNOWN_OP,
            )

    def _ep_context(self, node: OnnxNode, path: str, loc: str, result: ScanResult) -> None:
        target = node.strings.get("ep_cache_context", "")
        problem = self._path_problem(target, path) if target else None
        if problem and problem[0] is IssueSeverity.CRITICAL:
            result.add_issue(
                f"EPContext node loads an engine cache from {target!r}: {problem[1]}",
                severity=IssueSeverity.CRITICAL,
                location=loc,
                details={"ep_cache_context": target},
                why="The execution provider loads a compiled engine from a file outside the model.",
                rule=R.ONNX_EXTERNAL_ESCAPE,
            )

    def _path_problem(self, location: str, path: str) -> tuple[IssueSeverity, str] | None:
        """Why an external location is unsafe (CRITICAL) or unusable (WARNING), or None."""
        if not location:
            return IssueSeverity.WARNING, "no location given"
        if location == ORT_MEMORY_ADDRESS:
            return (
                IssueSeverity.CRITICAL,
                "ONNX Runtime's in-memory tag: the offset is taken as a raw memory address",
            )
        if _escapes(location) or "\x00" in location:
            return (
                IssueSeverity.CRITICAL,
                "absolute, drive, parent-relative, remote, Windows device or stream path",
            )
        folder = os.path.dirname(os.path.abspath(path))
        full = os.path.join(folder, location)
        real_folder = os.path.realpath(folder)
        real = os.path.realpath(full)
        if os.path.commonpath([real_folder, real]) != real_folder:
            return IssueSeverity.CRITICAL, f"resolves outside the model folder to {real}"
        if not os.path.isfile(real):
            return IssueSeverity.WARNING, "file not found next to the model"
        return None

    def _judge_externals(self, model: OnnxModel, path: str, result: ScanResult) -> None:
        sizes: dict[str, int] = {}
        reported: set[str] = set()
        for ext in model.externals:
            loc = self.location(path, f"initializer {ext.tensor}")
            problems = [(where, self._path_problem(where, path)) for where in ext.locations or [""]]
            bad = [(where, p) for where, p in problems if p is not None]
            if bad:
                for location, (severity, why) in bad:
                    if location in reported:
                        continue
                    reported.add(location)
                    result.add_issue(
                        f"External data for '{ext.tensor}' at {location!r}: {why}",
                        severity=severity,
                        location=loc,
                        details={"tensor": ext.tensor, "location": location},
                        why="Loading the weights reads this file, which the model does not ship."
                        if severity is IssueSeverity.CRITICAL
                        else "The model cannot load as shipped; the missing file could be "
                        "supplied by anyone.",
                        rule=R.ONNX_EXTERNAL_ESCAPE
                        if severity is IssueSeverity.CRITICAL
                        else R.ONNX_EXTERNAL_MISSING,
                    )
                continue
            location = ext.locations[-1]
            self._judge_span(ext.tensor, ext.entries, location, path, loc, sizes, result)

    def _judge_span(
        self,
        tensor: str,
        entries: dict[str, str],
        location: str,
        path: str,
        loc: str,
        sizes: dict[str, int],
        result: ScanResult,
    ) -> None:
        full = os.path.join(os.path.dirname(os.path.abspath(path)), location)
        size = sizes.setdefault(location, os.path.getsize(full))
        try:
            offset = int(entries.get("offset", "0") or 0)
            length = int(entries.get("length", "0") or 0)
        except ValueError:
            offset, length = -1, 0
        if offset < 0 or length < 0 or offset + length > size:
            result.add_issue(
                f"External data for '{tensor}' lies outside {location!r} "
                f"(offset {offset}, length {length}, file {size} bytes)",
                severity=IssueSeverity.WARNING,
                location=loc,
                details={
                    "tensor": tensor,
                    "location": location,
                    "offset": offset,
                    "length": length,
                    "file_size": size,
                },
                why="The loader would read past the file or fail; the file is not the one "
                "the model was saved with.",
                rule=R.ONNX_EXTERNAL_MISSING,
            )
