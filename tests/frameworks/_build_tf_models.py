"""Build real TensorFlow/Keras/TFLite files into a folder; run as a subprocess by conftest.

TensorFlow is heavy and process-global, so the test session never imports it: this script
writes the files, the tests only scan them.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import keras
import tensorflow as tf

# run as a script: the repository root makes the shared op lists importable
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tests.frameworks._tf_op_samples import (
    DEBUG_OP_SAMPLES,
    FILE_OP_SAMPLES,
    SUMMARY_WRITE_OP_SAMPLES,
)


def _legit_module() -> tf.Module:
    class Scale(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = tf.Variable([[1.0, 2.0], [3.0, 4.0]])

        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32)])
        def __call__(self, x: tf.Tensor) -> tf.Tensor:
            return tf.nn.relu(tf.matmul(x, self.w))

    return Scale()


def _evil_module() -> tf.Module:
    class Evil(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
        def read(self, name: tf.Tensor) -> tf.Tensor:
            data = tf.io.read_file(name)
            tf.io.write_file("/tmp/modelaudit-never-written", data)
            return tf.py_function(lambda s: s, [data], tf.string)

    return Evil()


def _debug_module(op: str) -> tf.Module:
    """A graph whose debug op dumps its input to the `file://` URL it names when run."""

    class Debug(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([2], tf.float32)])
        def __call__(self, x: tf.Tensor) -> tf.Tensor:
            return getattr(tf.raw_ops, op)(input=x, debug_urls=["file:///tmp/modelaudit-dump"])

    return Debug()


def _keras_model(with_lambda: bool, features: int = 4, width: int = 8) -> keras.Model:
    inputs = keras.Input(shape=(features,), name="features")
    x = keras.layers.Dense(width, activation="relu", name="hidden")(inputs)
    if with_lambda:
        x = keras.layers.Lambda(lambda t: t * 2.0, name="double")(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="out")(x)
    model = keras.Model(inputs, outputs, name="lambda_net" if with_lambda else "plain_net")
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def _keras_lambda_functions() -> keras.Model:
    """A Lambda whose output_shape and mask are lambdas too (all harmless)."""
    inputs = keras.Input(shape=(4,), name="features")
    x = keras.layers.Lambda(
        lambda t, scale=1.0: t * scale,
        output_shape=lambda s: s,
        mask=lambda i, m=None: None,
        arguments={"scale": 2.0},
        name="scaled",
    )(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, name="out")(x), name="lambda_fns")


def _keras_function_losses() -> keras.Model:
    """Losses, metrics and a Lambda given as Keras functions, which Keras 3 writes as
    `{"module": "builtins", "class_name": "function", ...}` objects."""
    inputs = keras.Input(shape=(4,), name="features")
    x = keras.layers.Dense(3, activation=keras.activations.relu, name="hidden")(inputs)
    x = keras.layers.Lambda(keras.ops.abs, name="absolute")(x)
    model = keras.Model(inputs, x, name="function_losses")
    model.compile(
        optimizer="adam",
        loss=keras.losses.mean_squared_error,
        metrics=[keras.metrics.mean_absolute_error],
    )
    return model


def _keras_exports(path: str) -> None:
    """What Keras writes for every exported modeling object it can build without arguments
    (layers, initializers, regularizers, constraints, activations, losses, metrics,
    optimizers, ops, dtype policies, quantizers): none of it may raise an alarm."""
    import json

    from keras.src.api_export import REGISTERED_NAMES_TO_OBJS
    from keras.src.saving.serialization_lib import serialize_keras_object

    modeling = {
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
        "quantizers",
        "mixed_precision",
    }
    configs = []
    for name, obj in REGISTERED_NAMES_TO_OBJS.items():
        parts = name.split(".")
        if len(parts) > 2 and parts[1] not in modeling:
            continue
        try:
            config = serialize_keras_object(obj() if isinstance(obj, type) else obj)
            json.dumps(config)
        except Exception:  # objects needing arguments are skipped
            continue
        configs.append(config)
    with open(path, "w") as f:
        json.dump(configs, f)


def _flex(module: tf.Module) -> bytes:
    """A TFLite model of `module` converted with the Flex (SELECT_TF_OPS) op set."""
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.__call__.get_concrete_function()], module
    )
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS,
        tf.lite.OpsSet.SELECT_TF_OPS,
    ]
    return bytes(converter.convert())


def _flex_models(out: str) -> None:
    """A Flex model with a harmless TensorFlow op, one whose graph writes a file, and the
    latter with the FlexWriteFile custom op renamed FlexStringLength: the options still hold
    the WriteFile NodeDef, and that is what the Flex delegate runs."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as schema

    class Length(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def __call__(self, s: tf.Tensor) -> tf.Tensor:
            return tf.strings.length(s)

    class Write(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
        def __call__(self, s: tf.Tensor) -> tf.Tensor:
            tf.io.write_file("/tmp/modelaudit-never-written", s)
            return tf.strings.length(s)

    _write(os.path.join(out, "flex_legit.tflite"), _flex(Length()))
    write = _flex(Write())
    _write(os.path.join(out, "flex_write.tflite"), write)
    model = schema.ModelT.InitFromPackedBuf(write, 0)
    for code in model.operatorCodes:
        if code.customCode == b"FlexWriteFile":
            code.customCode = b"FlexStringLength"
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    _write(os.path.join(out, "flex_renamed.tflite"), bytes(builder.Output()))


def _cache_module(filename: str) -> tf.Module:
    """A dataset cached at `filename` (in memory when empty) inside a served function."""

    class Cache(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def __call__(self, x: tf.Tensor) -> tf.Tensor:
            ds = tf.data.Dataset.from_tensor_slices(x).cache(filename)
            return ds.reduce(tf.constant(0.0), lambda a, b: a + b)

    return Cache()


def _summary_module(create: bool) -> tf.Module:
    """Summaries written from a served function: into a writer the function creates in a log
    folder of its choosing, or into one it only names (a writer the host made)."""

    class Summaries(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([], tf.float32)])
        def __call__(self, x: tf.Tensor) -> tf.Tensor:
            writer = tf.raw_ops.SummaryWriter(shared_name="logdir:logs")
            if create:
                tf.raw_ops.CreateSummaryFileWriter(
                    writer=writer,
                    logdir="/tmp/modelaudit-never-written-logs",
                    max_queue=1,
                    flush_millis=1,
                    filename_suffix="",
                )
            step = tf.constant(0, tf.int64)
            tf.raw_ops.WriteScalarSummary(writer=writer, step=step, tag="x", value=x)
            tf.raw_ops.FlushSummaryWriter(writer=writer)
            return x

    return Summaries()


def _trackable_summary_module() -> tf.Module:
    """A writer kept as a trackable attribute: the SavedModel recreates it on load."""

    class Logged(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.writer = tf.summary.create_file_writer(
                "/tmp/modelaudit-never-written-logs", experimental_trackable=True
            )

        @tf.function(input_signature=[tf.TensorSpec([], tf.float32)])
        def __call__(self, x: tf.Tensor) -> tf.Tensor:
            with self.writer.as_default():
                tf.summary.scalar("x", x, step=0)
            return x

    return Logged()


def _dataset_from_graph_module(hidden: bytes | None) -> tf.Module:
    """A served function that runs the dataset graph `hidden` (a serialized GraphDef held
    in a string constant), or one passed in at run time when `hidden` is None."""

    class FromGraph(tf.Module):
        if hidden is None:

            @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
            def __call__(self, graph: tf.Tensor) -> tf.Tensor:
                variant = tf.raw_ops.DatasetFromGraph(graph_def=graph)
                return tf.raw_ops.DatasetCardinality(input_dataset=variant)

        else:

            @tf.function(input_signature=[])
            def __call__(self) -> tf.Tensor:
                variant = tf.raw_ops.DatasetFromGraph(graph_def=tf.constant(hidden))
                return tf.raw_ops.DatasetCardinality(input_dataset=variant)

    return FromGraph()


def _dataset_graph(ds: tf.data.Dataset) -> bytes:
    """The serialized GraphDef of a dataset (what DatasetFromGraph takes); nothing is read."""
    return bytes(tf.raw_ops.DatasetToGraphV2(input_dataset=ds._variant_tensor).numpy())


def _graph(nodes: list[tuple[str, str, dict[str, bytes]]]) -> bytes:
    """A GraphDef built with TensorFlow's own protobuf classes: (name, op, string attrs)."""
    graph = tf.compat.v1.GraphDef()
    for name, op, attrs in nodes:
        node = graph.node.add(name=name, op=op)
        for key, value in attrs.items():
            node.attr[key].s = value
    return bytes(graph.SerializeToString())


def _text_table_graph(filename: bytes) -> bytes:
    """A lookup table initialised from a path held in a Const, as TF1 graphs do."""
    graph = tf.compat.v1.GraphDef()
    graph.node.add(name="table", op="HashTableV2")
    const = graph.node.add(name="vocab_path", op="Const")
    const.attr["dtype"].type = tf.string.as_datatype_enum
    const.attr["value"].tensor.dtype = tf.string.as_datatype_enum
    const.attr["value"].tensor.string_val.append(filename)
    init = graph.node.add(name="init", op="InitializeTableFromTextFileV2")
    init.input.extend(["table", "vocab_path"])
    return bytes(graph.SerializeToString())


def _vocab_module(folder: str) -> tf.Module:
    """A TF2 module whose lookup table reads a vocabulary shipped as a SavedModel asset."""
    vocab = os.path.join(folder, "vocab.txt")
    with open(vocab, "w") as f:
        f.write("cat\ndog\n")

    class Vocab(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.asset = tf.saved_model.Asset(vocab)
            init = tf.lookup.TextFileInitializer(
                self.asset,
                tf.string,
                tf.lookup.TextFileIndex.WHOLE_LINE,
                tf.int64,
                tf.lookup.TextFileIndex.LINE_NUMBER,
            )
            self.table = tf.lookup.StaticHashTable(init, -1)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def __call__(self, words: tf.Tensor) -> tf.Tensor:
            return self.table.lookup(words)

    return Vocab()


def _as_text(folder: str, out_folder: str) -> None:
    """The same SavedModel with `saved_model.pbtxt` (text format) instead of the binary."""
    import shutil

    from google.protobuf import text_format
    from tensorflow.core.protobuf import saved_model_pb2

    shutil.copytree(folder, out_folder)
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(out_folder, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    os.remove(os.path.join(out_folder, "saved_model.pb"))
    with open(os.path.join(out_folder, "saved_model.pbtxt"), "w") as f:
        f.write(text_format.MessageToString(proto))


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def main(out: str) -> None:
    tf.saved_model.save(_vocab_module(out), os.path.join(out, "vocab_savedmodel"))
    _write(os.path.join(out, "table_passwd.pb"), _text_table_graph(b"/etc/passwd"))
    _write(os.path.join(out, "table_relative.pb"), _text_table_graph(b"vocab.txt"))
    _write(
        os.path.join(out, "print_to_file.pb"),
        _graph([("x", "Const", {}), ("p", "PrintV2", {"output_stream": b"file:///tmp/leak.txt"})]),
    )
    _write(
        os.path.join(out, "print_to_log.pb"),
        _graph([("x", "Const", {}), ("p", "PrintV2", {"output_stream": b"log(info)"})]),
    )
    _write(os.path.join(out, "custom_op.pb"), _graph([("c", "MyVendorFusedOp", {})]))
    # a BERT preprocessor's tensorflow-text ops (as TF Hub's bert_en_uncased_preprocess)
    text_ops = ["CaseFoldUTF8", "FastWordpieceTokenizeWithOffsets", "TFText>RoundRobinTrim"]
    _write(
        os.path.join(out, "tf_text_ops.pb"),
        _graph([(f"n{i}", op, {}) for i, op in enumerate([*text_ops, *text_ops])]),
    )
    _write(
        os.path.join(out, "tf_text_and_vendor_ops.pb"),
        _graph([("t", "CaseFoldUTF8", {}), ("c", "MyVendorFusedOp", {})]),
    )
    _write(
        os.path.join(out, "immutable_const.pb"),
        _graph([("m", "ImmutableConst", {"memory_region_name": b"/etc/passwd"})]),
    )
    _write(
        os.path.join(out, "stray_save.pb"),
        _graph([("exfil/SaveV2", "SaveV2", {}), ("save/SaveV2", "SaveV2", {})]),
    )

    for op in FILE_OP_SAMPLES:
        _write(os.path.join(out, f"file_op_{op}.pb"), _graph([("f", op, {})]))
    for op in DEBUG_OP_SAMPLES:
        tf.saved_model.save(_debug_module(op), os.path.join(out, f"debug_{op}"))

    legit = _legit_module()
    tf.saved_model.save(legit, os.path.join(out, "legit_savedmodel"))
    debug = tf.saved_model.SaveOptions(save_debug_info=True)
    tf.saved_model.save(legit, os.path.join(out, "debug_info_savedmodel"), options=debug)
    tf.saved_model.save(_evil_module(), os.path.join(out, "evil_savedmodel"))
    _as_text(os.path.join(out, "legit_savedmodel"), os.path.join(out, "legit_text_savedmodel"))
    _as_text(os.path.join(out, "evil_savedmodel"), os.path.join(out, "evil_text_savedmodel"))

    graph = legit.__call__.get_concrete_function().graph.as_graph_def()
    with open(os.path.join(out, "frozen_legit.pb"), "wb") as f:
        f.write(graph.SerializeToString())

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [legit.__call__.get_concrete_function()], legit
    )
    with open(os.path.join(out, "legit.tflite"), "wb") as f:
        f.write(converter.convert())

    _flex_models(out)

    tf.saved_model.save(_summary_module(True), os.path.join(out, "summary_create"))
    tf.saved_model.save(_summary_module(False), os.path.join(out, "summary_write_only"))
    tf.saved_model.save(_trackable_summary_module(), os.path.join(out, "summary_trackable"))
    for op in SUMMARY_WRITE_OP_SAMPLES:
        _write(os.path.join(out, f"summary_op_{op}.pb"), _graph([("s", op, {})]))
    _write(os.path.join(out, "dtensor_restore.pb"), _graph([("r", "DTensorRestoreV2", {})]))

    tf.saved_model.save(_cache_module(""), os.path.join(out, "cache_memory"))
    tf.saved_model.save(_cache_module("/tmp/modelaudit-cache"), os.path.join(out, "cache_file"))
    reads = _dataset_graph(tf.data.TextLineDataset("/etc/passwd"))
    plain = _dataset_graph(tf.data.Dataset.range(3).map(lambda v: v * 2))
    tf.saved_model.save(_dataset_from_graph_module(reads), os.path.join(out, "dataset_graph_reads"))
    tf.saved_model.save(_dataset_from_graph_module(plain), os.path.join(out, "dataset_graph_plain"))
    tf.saved_model.save(_dataset_from_graph_module(None), os.path.join(out, "dataset_graph_input"))

    _keras_model(False).save(os.path.join(out, "legit.keras"))
    _keras_model(True).save(os.path.join(out, "lambda.keras"))
    _keras_model(False).save(os.path.join(out, "legit_keras3.h5"))
    _keras_model(True).save(os.path.join(out, "lambda_keras3.h5"))
    _keras_lambda_functions().save(os.path.join(out, "lambda_functions.keras"))
    _keras_lambda_functions().save(os.path.join(out, "lambda_functions.h5"))
    _keras_function_losses().save(os.path.join(out, "function_losses.keras"))
    _keras_function_losses().save(os.path.join(out, "function_losses.h5"))
    _keras_exports(os.path.join(out, "keras_exports.json"))
    # For tests/remote_http: a Keras archive larger than a remote scan's first reads (head
    # and tail), so the range planner, not the first read, decides how it is fetched.
    _keras_model(True, features=256, width=256).save(os.path.join(out, "wide_lambda.keras"))


if __name__ == "__main__":
    main(sys.argv[1])
