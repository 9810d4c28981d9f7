"""Which globals a pickle may name: default-deny, decided from names alone.

A global is judged as `module` + `qualname` after the loader's own renaming. Nothing is ever
imported to decide: a re-exported alias (`mimetypes.os.system`), a dunder walk
(`numpy.__builtins__`) or a dangerous method name reached through an allowed class is
recognised from the dotted path itself, so the verdict never depends on what is installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from ...lazy_re import LazyPattern
from .behaviour import behaviour_family, words

SAFE: Final = 0
UNKNOWN: Final = 1
DANGER: Final = 2
SHAPE: Final = 3


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: int
    family: str = ""
    why: str = ""
    #: For SHAPE verdicts: which call-shape check the emulator applies.
    special: str = ""


FAMILIES: Final[dict[str, str]] = {
    "process": "Runs operating-system commands or spawns processes (os/posix/nt, subprocess, "
    "pty, multiprocessing): loading the file gives the attacker a shell as your user.",
    "code-exec": "Evaluates or executes Python code chosen by the file (eval, exec, compile, "
    "stdlib code runners): loading the file runs arbitrary attacker code.",
    "resolver": "Resolves an arbitrary object by name or attribute at load time (importlib, "
    "getattr on modules, pkgutil.resolve_name, pydoc.locate, operator getters): it reaches "
    "os.system or eval without naming them.",
    "import-system": "Tampers with the import system or interpreter state (sys, site, "
    "zipimport, copyreg registry, atexit, gc): later imports or exit run attacker code.",
    "code-object": "Builds functions or code objects from bytes in the file (marshal, "
    "types.FunctionType/CodeType, cloudpickle, dill): the attacker ships compiled code.",
    "nested-unpickler": "Starts another unpickler or model loader (pickle, dill, joblib, "
    "torch.load, numpy.load, pandas.read_pickle) on attacker data, so the file's own checks are "
    "bypassed.",
    "native": "Loads native code or calls C functions directly (ctypes, cffi, library "
    "loaders): the attacker runs machine code in your process.",
    "file": "Reads, writes or deletes files (open, shutil, io.FileIO, logging file handlers, "
    "tempfile, numpy/pandas file I/O): the attacker plants or steals files.",
    "network": "Opens network connections or URLs (socket, ssl, urllib, http.client, requests, "
    "webbrowser, smtplib): the attacker exfiltrates data or fetches a second stage.",
    "logging-config": "Configures logging from data (logging.config), which instantiates "
    "arbitrary classes and can listen on a socket.",
    "typing-eval": "Evaluates a string as a type annotation (typing ForwardRef evaluation), "
    "which is eval() of attacker text.",
    "torch-gadget": "A PyTorch entry point that loads or compiles code (torch.load, torch.jit, "
    "torch.hub, torch.package, cpp_extension, fx code generation) named in public advisories.",
    "package-install": "Installs packages or runs setup code (pip, ensurepip, setuptools, "
    "venv): the attacker installs and runs any package.",
    "subinterpreter": "Starts a subinterpreter or thread that runs attacker code outside the "
    "loader's view.",
    "dunder-walk": "Walks a dunder attribute (__builtins__, __globals__, __class__, "
    "__subclasses__...) to escape from an allowed object to eval/exec or a module.",
}

_MODULE_FAMILIES: Final[dict[str, tuple[str, ...]]] = {
    "process": (
        # re-exported as sklearn.show_versions
        "sklearn.show_versions",
        "os",
        "posix",
        "nt",
        "subprocess",
        "_posixsubprocess",
        "pty",
        "commands",
        "popen2",
        "multiprocessing",
        "_multiprocessing",
        "asyncio",
        "pexpect",
        "sh",
        "plumbum",
        "pipes",
        "concurrent.futures.ProcessPoolExecutor",
        "platform",
        "_osx_support",
        "_aix_support",
        "mailcap",
        "signal",
        "fabric",
        "invoke",
        "paramiko",
        "torch.multiprocessing",
        "torch.distributed",
        "torch.utils.collect_env",
        "torch.utils.bottleneck",
        "torch.utils.benchmark",
        "torch.utils.tensorboard",
        "torch.utils.model_zoo",
        "torch.onnx",
        "torch.compiler",
        "torch._C",
        "torch._ops",
        "torch._library",
        "torch.library",
        # custom-op registries: `custom_op(name, fn)` puts a callable behind torch.ops
        "torch._custom_ops",
        "torch._custom_op",
        # dill's multiprocessing fork (re-exported by datasets) and its relatives
        "multiprocess",
        "pathos",
        "billiard",
        # joblib's process pools: MemmappingPool starts its workers when built
        "joblib.externals.loky",
        "joblib.pool",
        "joblib.executor",
        # subprocess.run of a command line or of strobeclient
        "torch.utils._get_clean_triton",
        "torch.utils._strobelight",
        "torch._strobelight",
        # a launcher: Popen of the script it is given
        "torch.backends.xeon",
        # the memory visualiser downloads flamegraph.pl and runs it
        "torch.cuda._memory_viz",
        # quack compiles GPU kernels in worker processes it talks to with pickle
        "torch._vendor.quack",
        # ray.init starts a cluster; mlflow projects run an entry point's command
        "ray",
        "mlflow.projects",
        "mlflow.cli",
        "mlflow.server",
        "mlflow.utils.process",
        "sklearn.datasets",
        "sklearn.utils._show_versions",
        "joblib.parallel",
        "joblib._parallel_backends",
        # re-exports multiprocessing's Process, Manager and get_context
        "fastcore.parallel",
        # command lines and servers: trl's vllm_serve starts processes, diffusers' env
        # command runs subprocesses, trl's CLI imports the trainer module it is told
        "trl.cli",
        "transformers.commands",
        # the newer command line (serve, chat, env, ...)
        "transformers.cli",
        # fastai.launch.main(gpus, script, args) Popens python on any script;
        # setup_distrib joins a process group
        "fastai.launch",
        "fastai.distributed",
        "trl.scripts",
        "diffusers.commands",
        "concurrent.futures.process",
        "_winapi",
        "msvcrt",
        "winreg",
        "_winreg",
    ),
    "code-exec": (
        "code",
        "codeop",
        "runpy",
        "timeit",
        "cProfile",
        "profile",
        "_lsprof",
        "trace",
        "bdb",
        "pdb",
        "doctest",
        "pydoc",
        "idlelib",
        "lib2to3",
        "numpy.f2py",
        "numpy.testing",
        "numpy.distutils",
        "_pyrepl",
        "test",
        "tkinter",
        "Tkinter",
        "IPython",
        "jinja2",
        "numexpr",
        "sympy.parsing",
        # lambdify execs the code it generates; S(text) is sympify(text), an eval; autowrap
        # compiles and imports C or Fortran; preview runs LaTeX; the test runners run tests
        "sympy.utilities.lambdify",
        "sympy.lambdify",
        "sympy.core.sympify",
        "sympy.S",
        "sympy.core.singleton.S",
        "sympy.utilities.autowrap",
        "sympy.printing.preview",
        "sympy.preview",
        "sympy.testing",
        "sympy.interactive",
        # formula languages evaluate their terms as Python: ols("y ~ __import__('os')...")
        "statsmodels.formula",
        "patsy",
        "formulaic",
        # Template(text) compiles the template to a Python module and runs its `<%! %>`
        # blocks; ImageMath's eval/unsafe_eval evaluate their expression as Python
        "mako",
        "PIL.ImageMath",
        "pandas.core.computation",
        "torch.testing",
        "torch._dynamo",
        "torch._inductor",
        "torch.fx",
        "torch.utils._config_module",
        "torch._export",
        "torch.export",
        "torch.jit",
        "torch.package",
        "torch.hub",
        "torch.utils.cpp_extension",
        "torch.utils.data.datapipes",
        "torch._functorch",
        # dynamo's guard sources: `Source.get_value` evals the source's name
        "torch._guards",
        # re-export torch.utils.benchmark's Timer (`log_extract.Timer(stmt)`, whose
        # blocked_autorange runs stmt), torch.fx's GraphModule/Graph/Tracer, torch.export's
        # ExportedProgram, and compile-time operators
        "torch.utils.jit",
        "torch.ao.quantization.fx",
        "torch.ao.ns.fx",
        "torch._higher_order_ops",
        "torch.nativert",
        # test harnesses that re-export the testing helpers denied above
        "sklearn.conftest",
        "sklearn.utils.estimator_checks",
        "numpy.ma.testutils",
        "optuna.testing",
        # optuna's command line re-exports the storages and runs studies
        "optuna.cli",
        "transformers.dynamic_module_utils",
        # subprocess runners and test cases (execute_subprocess_async, TestCasePlus)
        "transformers.testing_utils",
        # agents and tools: Python interpreters for model-written code (evaluate_python_code,
        # LocalPythonInterpreter, CodeAgent) and loaders of Hub tools
        "transformers.agents",
        # fastai's documentation tools: str2func('os.system') walks sys.modules,
        # gen_notebooks executes notebooks
        "fastai.gen_doc",
        "transformers.tools",
        "smolagents",
        "diffusers.utils.dynamic_modules_utils",
        "keras.src.saving",
        "ast",
        "dis",
        "sklearn.utils._testing",
        # unittest.main(module=...) imports the module named and runs its tests;
        # unittest.mock.patch sets any attribute of any module it imports by name
        "unittest",
        "pandas.util._tester",
        # decorator's FunctionMaker.create(signature, body, evaldict) execs the source it builds
        "decorator",
        "scipy._lib.decorator",
        "sklearn.externals",
        # build helpers: Tempita templates run the Python code they hold
        "sklearn._build_utils",
        # test runners: pytest imports the plugins and runs the test files its arguments name
        "numpy._pytesttester",
        "pytest",
        "_pytest",
        "scipy.weave",
        "scipy._lib._testutils",
        "_testcapi",
        "_testinternalcapi",
        "_xxtestfuzz",
        "cgitb",
        "warnings",
    ),
    "resolver": (
        "importlib",
        "imp",
        "_imp",
        "pkgutil",
        "inspect",
        "zipimport",
        "modulefinder",
        "pkg_resources",
        # backports of importlib.metadata/resources: entry points load whatever they name
        "importlib_metadata",
        "importlib_resources",
        "pyarrow._module_is_available",
        # every plotting entry point imports the backend module it is told (backend=...);
        # the matplotlib converters a pickled figure may name stay out of this
        "pandas.plotting._core",
        # clone_module(name) imports the module named and execs `from name import *`
        "scipy._lib.array_api_compat._internal",
        "array_api_compat._internal",
        # imports `scipy.<sub_package>.<module>` and hands out any attribute of it
        "scipy._lib.deprecation._sub_module_deprecation",
        "_frozen_importlib",
        "_frozen_importlib_external",
        "builtins.__import__",
    ),
    "import-system": (
        # registries that call what they are given later: codecs by name, the logging
        # record and logger factories
        "codecs.register",
        "_codecs.register",
        "logging.setLoggerClass",
        "logging.setLogRecordFactory",
        "sys",
        "site",
        "sitecustomize",
        "usercustomize",
        "gc",
        "atexit",
        "faulthandler",
        "sysconfig",
        "copyreg._extension_registry",
        # puts any object into sys.modules as `torch.<name>`
        "torch._register_device_module",
        "copyreg._inverted_registry",
        "copyreg._extension_cache",
        "copyreg.dispatch_table",
        "readline",
        "rlcompleter",
        "tracemalloc",
        "_thread",
        "thread",
        "dummy_thread",
        "_dummy_thread",
        "threading",
    ),
    "code-object": ("marshal", "cloudpickle", "dill", "new", "opcode", "_opcode"),
    "nested-unpickler": (
        "pickle",
        "_pickle",
        "cPickle",
        "pickletools",
        "shelve",
        "dbm",
        "anydbm",
        "jsonpickle",
        "yaml",
        "ruamel",
        "joblib.numpy_pickle_utils",
        # a pickle.Unpickler subclass that prints what it loads
        "torch.utils.show_pickle",
        "pandas.io",
        "torch.serialization",
        # weights_only's own unpickler; _add_safe_globals widens its allow-list for every later
        # torch.load(weights_only=True) in the process
        "torch._weights_only_unpickler",
        "numpy.lib.format",
        "numpy.lib.npyio",
        "numpy.lib._npyio_impl",
        "numpy.lib.utils",
        "numpy.lib._utils_impl",
        "scipy.io",
        "sklearn.utils._joblib",
        "xmlrpc",
        "xmlrpclib",
        # JournalStorage unpickles the snapshot its backend gives (Redis); the file backend
        # creates the path it is given
        "optuna.storages.journal",
        "optuna.storages.JournalStorage",
        "optuna.storages.JournalFileStorage",
        "optuna.storages.JournalRedisStorage",
        # the same storages where optuna 3 kept them, and optuna 2's RedisStorage, which
        # unpickled the trials its Redis server gave back
        "optuna.storages._journal",
        "optuna.storages._redis",
        "optuna.storages.RedisStorage",
        # model_dump unpickles a TorchScript archive's debug info; the content store torch.loads
        "torch.utils.model_dump",
        "networkx.readwrite.gpickle",
        # pickle.load of a memory snapshot or graph trace from a path
        "torch._utils._augment_memory_snapshot_stack_traces",
        "torch.cuda._annotate_cuda_graph_trace",
        "torch.utils._content_store",
    ),
    "native": (
        "ctypes",
        "_ctypes",
        "cffi",
        "_cffi_backend",
        # Hub kernels: get_kernel("org/repo") downloads compiled extensions and imports them
        "kernels",
        "transformers.integrations.hub_kernels",
        "numpy.ctypeslib",
        "_ctypes_test",
        "mmap",
        # _create_jit_fn(code_string) compiles and runs the CUDA C++ it is given
        "torch.cuda.jiterator",
        # ctypes.CDLL of the CUDA/HIP runtime libraries
        "torch.cuda._utils",
        # pyarrow's cffi FFI (cast and call any address), the JVM bridge, CUDA contexts
        # built from foreign handles and addresses
        "pyarrow.cffi",
        "pyarrow.jvm",
        "pyarrow.cuda",
        # the ctypes bindings: find and dlopen the library, wrap its C functions
        "xgboost._c_api",
        "xgboost.libpath",
        "lightgbm.libpath",
    ),
    "file": (
        "shutil",
        "_io",
        "tempfile",
        "fileinput",
        "glob",
        "tarfile",
        "zipfile",
        "filecmp",
        "logging.handlers",
        "sqlite3",
        "_sqlite3",
        "numpy.lib._datasource",
        "gzip",
        "bz2",
        "lzma",
        "pathlib._local",
        "genericpath",
        "ntpath",
        "posixpath",
        "macpath",
        "netrc",
        "mailbox",
        "wave",
        "aifc",
        "sunau",
        "codecs.open",
        # scipy's maintainer scripts that regenerate data files
        "scipy.special._precompute",
        # joblib's I/O helpers: PrintTime(logfile) truncates and appends to any path,
        # BinaryZlibFile(path, "wb") truncates it, rm_subdirs deletes, the memmapping
        # reducer dumps into a folder its resolver names
        "joblib.logger",
        "joblib.compressor",
        "joblib.disk",
        "joblib._memmapping_reducer",
        # ExecutionTraceObserver.register_callback(path) opens any path for writing
        "torch.profiler",
        # GdsFile(path, flags): os.open with the pickle's flags (O_CREAT|O_TRUNC)
        "torch.cuda.gds",
        # tunable-op results files: set_filename/write_file write where they are told
        "torch.cuda.tunable",
        # fastcore's Config(path, name, create={...}) writes an ini file of the pickle's
        # keys and values where none exists (a .pth line runs at every Python start)
        "fastcore.foundation.Config",
        # rmtree of its `name` when collected (a BUILD sets the name); timm's checkpoint
        # saver deletes and replaces files in the folder it is given
        "datasets.fingerprint._TempCacheDir",
        "timm.utils.checkpoint_saver",
        # FileBaton(path).release() removes the path; LazyTraceHandler writes where it is told
        "torch.utils.file_baton",
        "torch._logging",
        # a copy of the zipfile command line (ZipFile re-exported: mode "w" truncates)
        "torch.utils._zip",
        # hipify_python rewrites the sources of any project tree it is pointed at
        "torch.utils.hipify",
        # download, extract and decompress into the folders they are given
        "torchvision.datasets.utils",
        "torchaudio.datasets.utils",
        "torchtext.utils",
        # shutil's copy/move/rmtree wrapped for Paths
        "fastcore.shutil",
        # _cached_dataset_load(url, ...) downloads any tar and extractall()s it (no filter);
        # the evaluation helpers train models and write fold files where they are told
        "catboost.datasets",
        "catboost.eval",
        # write .pyc files and archives where they are told
        "zipapp",
        "compileall",
        "py_compile",
        # reads any file into the loaded object
        "linecache",
        # joblib's cache: Memory and MemorizedFunc create, write and clear folders
        "joblib.memory",
        "joblib._store_backends",
        # tf.io: write_file, gfile copy/rename/remove/makedirs, GFile(path, "w")
        "tensorflow.io",
        "tensorflow.compat.v1.io",
        "tensorflow.compat.v1.gfile",
        "tensorflow.python.lib.io.file_io",
        "tensorflow.python.platform.gfile",
        # Files: File(path, "w") creates or truncates any path
        "h5py",
    ),
    "network": (
        "fastcore.net",
        "joblib._dask",
        # multiprocessing.connection's Listener/Connection (recv() unpickles what arrives)
        "sklearn.callback._transport",
        # Dask's distributed scheduler: Client(address) connects, LocalCluster starts workers
        "distributed",
        "dask.distributed",
        # Arrow Flight clients and servers; from_uri builds an S3/GCS/HDFS file system from a
        # URL
        "pyarrow.flight",
        "pyarrow.fs.FileSystem.from_uri",
        "pyarrow._fs.FileSystem.from_uri",
        "statsmodels.tools.web",
        "statsmodels.datasets",
        # FastDownload: downloads and extracts archives into its base folder
        "fastdownload",
        # optuna storages that connect when built: RDBStorage(url) opens the database,
        # GrpcStorageProxy a channel
        # xgboost's RabitTracker(host_ip, n_workers) opens a listening tracker (start() serves
        # it); the Dask and Spark integrations connect to clusters
        "xgboost.tracker",
        "xgboost.RabitTracker",
        # test helpers: dataset downloads (urllib), Dask clusters
        "xgboost.testing",
        "xgboost.dask",
        "xgboost.spark",
        # collective.init joins a tracker; broadcast unpickles what a peer sends
        "xgboost.collective",
        "lightgbm.dask",
        "optuna.storages._rdb",
        "optuna.storages._grpc",
        "optuna.storages.RDBStorage",
        "optuna.storages.GrpcStorageProxy",
        "optuna.storages.run_grpc_proxy_server",
        # Hub requests (has_file, shard downloads) and the Hub's conversion bot
        "transformers.utils.hub",
        "transformers.safetensors_conversion",
        # artifact stores upload any local file and download to any path
        "optuna.artifacts",
        # pooch downloads of the sample data sets into a cache folder
        "scipy.datasets",
        "optuna.storages._cached_storage.RDBStorage",
        "socket",
        "_socket",
        "ssl",
        "_ssl",
        "urllib",
        "urllib2",
        "urllib3",
        "http",
        "httplib",
        "requests",
        "httpx",
        "aiohttp",
        "ftplib",
        "smtplib",
        "poplib",
        "imaplib",
        "nntplib",
        "telnetlib",
        "webbrowser",
        # `import antigravity` opens a web browser
        "antigravity",
        # GitPython runs git (clone_from fetches any URL); docker drives the local daemon
        "git",
        "docker",
        # experiment trackers and remote file systems: a run or a client connects and uploads
        "wandb",
        "comet_ml",
        "neptune",
        "gcsfs",
        "s3fs",
        "adlfs",
        # Keras' get_file downloads any URL and may extract it where it is told
        "keras.src.utils.file_utils",
        "keras.utils.get_file",
        "keras.utils.file_utils",
        "tensorflow.keras.utils.get_file",
        "tf_keras.utils.get_file",
        "tf_keras.src.utils.data_utils.get_file",
        # progress bars that post to chat services
        "tqdm.contrib.telegram",
        "tqdm.contrib.discord",
        "tqdm.contrib.slack",
        "socketserver",
        "SocketServer",
        "BaseHTTPServer",
        "SimpleHTTPServer",
        "CGIHTTPServer",
        "wsgiref",
        "xmlrpc",
        "select",
        "selectors",
        "asynchat",
        "asyncore",
        "smtpd",
        "huggingface_hub",
        "fsspec",
        "boto3",
        "botocore",
    ),
    "logging-config": ("logging.config",),
    "package-install": ("pip", "ensurepip", "setuptools", "distutils", "venv", "_distutils_hack"),
    "subinterpreter": (
        "_xxsubinterpreters",
        "_interpreters",
        "interpreters",
        "concurrent.interpreters",
        "_xxinterpchannels",
        "_interpchannels",
        "_interpqueues",
    ),
}

_NAME_FAMILIES: Final[dict[str, tuple[str, ...]]] = {
    "code-exec": (
        "builtins.eval",
        "builtins.exec",
        "builtins.compile",
        "builtins.execfile",
        "builtins.breakpoint",
        "builtins.input",
        "builtins.raw_input",
        "builtins.help",
        "builtins.exit",
        "builtins.quit",
        "builtins.license",
        "builtins.credits",
        "builtins.copyright",
        "builtins.__build_class__",
        "builtins.__loader__",
        "builtins.__spec__",
        "builtins.reload",
        "pandas.eval",
        "pandas.core.frame.DataFrame.eval",
        "pandas.core.frame.DataFrame.query",
        "sympy.sympify",
        "sympy.core.sympify.sympify",
        "uuid._get_command_stdout",
        "uuid._popen",
        "numpy.core._internal._ctypes",
        # source built from the arguments and exec'd: _nonlin_wrapper interpolates `name`
        # into a def line unchecked
        "scipy.optimize._nonlin._nonlin_wrapper",
        "scipy._lib._bunch._make_tuple_bunch",
        "torch._C._jit_compile",
        "torch.jit.unsupported_tensor_ops.execWrapper",
        "torch._C._load_for_lite_interpreter",
        "torch.compile",
        "torch._ops.ops.load_library",
        "torch.ops.load_library",
        "torch.classes.load_library",
        "torch._classes.load_library",
        "numpy.lookfor",
        "numpy.info",
        "numpy.source",
        "numpy.who",
        "numpy.show_config",
        "numpy.show_runtime",
        # the wrappers torch.compile builds; calling one compiles and runs generated code
        "torch._TorchCompileInductorWrapper",
        "torch._TorchCompileWrapper",
        "torch._TorchCompileAOTInductorWrapper",
        # torch._higher_order_ops re-exported: they run their functions under torch.compile
        "torch.cond",
        "torch.while_loop",
        "pandas.DataFrame.query",
    ),
    "resolver": (
        "builtins.__import__",
        "builtins.vars",
        "builtins.globals",
        "builtins.locals",
        "builtins.setattr",
        "builtins.delattr",
        "builtins.dir",
        "operator.attrgetter",
        "operator.methodcaller",
        "operator.itemgetter",
        "operator.getitem",
        "operator.call",
        "operator.setitem",
        "operator.delitem",
        "operator.__getitem__",
        "operator.__setitem__",
        "operator.__delitem__",
        "operator.__call__",
        "_operator.attrgetter",
        "_operator.methodcaller",
        "_operator.itemgetter",
        "_operator.getitem",
        "_operator.call",
        "_operator.setitem",
        "_operator.delitem",
        "torch._utils._import_dotted_name",
        "torch.serialization.locate",
        # a string argument is imported by its dotted name (`_import_dotted_name`)
        "torch.set_default_tensor_type",
        "functools.reduce",
        "_functools.reduce",
        "functools.singledispatch",
        "copyreg.add_extension",
        "copyreg.remove_extension",
        "copyreg.clear_extension_cache",
        "copyreg.pickle",
        "copyreg.constructor",
        "types.new_class",
        "types.prepare_class",
        "types.resolve_bases",
        "builtins.super",
        "builtins.object.__getattribute__",
        "builtins.type.__getattribute__",
    ),
    "code-object": (
        "types.FunctionType",
        "types.CodeType",
        "types.LambdaType",
        "types.MethodType",
        "types.ModuleType",
        "types.CellType",
        "types.BuiltinFunctionType",
        "types.BuiltinMethodType",
        "types.GeneratorType",
        "types.CoroutineType",
        "types.FrameType",
        "types.TracebackType",
        "builtins.function",
        "builtins.code",
    ),
    "nested-unpickler": (
        "torch.load",
        "torch.serialization.load",
        "numpy.load",
        "numpy.loads",
        "numpy.core.multiarray.loads",
        "numpy._core.multiarray.loads",
        "joblib.load",
        "joblib.numpy_pickle.load",
        "joblib.numpy_pickle.NumpyUnpickler",
        "joblib.numpy_pickle_compat.load_compatibility",
        "pandas.read_pickle",
        "sklearn.externals.joblib.load",
        "keras.models.load_model",
        "tensorflow.keras.models.load_model",
        "tensorflow.saved_model.load",
        "transformers.modeling_utils.load_state_dict",
        # NeMo 2: reads the io.json of the path it is given and builds what it names
        "nemo.lightning.io.load_context",
        "nemo.lightning.io.api.load_context",
    ),
    "native": (
        "torch.ops.load_library",
        "numpy.ctypeslib.load_library",
        # dlopen a path or glob the caller gives (an absolute lib_name replaces the folder)
        "torch._preload_cuda_lib",
        "torch._preload_cuda_deps",
    ),
    "file": (
        "builtins.open",
        "builtins.file",
        "io.open",
        "io.open_code",
        "io.FileIO",
        "io.BufferedReader",
        "io.BufferedWriter",
        "io.BufferedRandom",
        "io.TextIOWrapper",
        "codecs.open",
        "codecs.EncodedFile",
        "logging.FileHandler",
        "logging.basicConfig",
        "numpy.save",
        "numpy.savez",
        "numpy.savez_compressed",
        "numpy.savetxt",
        "numpy.loadtxt",
        "numpy.genfromtxt",
        "numpy.fromfile",
        "numpy.fromregex",
        "numpy.memmap",
        "numpy.DataSource",
        "numpy.core.memmap",
        "numpy._core.memmap",
        "numpy.lib.DataSource",
        "numpy.core.records.fromfile",
        "numpy._core.records.fromfile",
        "numpy.rec.fromfile",
        "numpy.ma.mrecords.fromtextfile",
        "numpy.lib.stride_tricks.as_strided",
        "numpy.lib._stride_tricks_impl.as_strided",
        "torch.save",
        "torch.from_file",
        "torch.storage.UntypedStorage.from_file",
        "torch.UntypedStorage.from_file",
        "pandas.read_csv",
        "pandas.read_json",
        "pandas.read_html",
        "pandas.read_excel",
        "pandas.read_parquet",
        "pandas.read_feather",
        "pandas.read_hdf",
        "pandas.read_sql",
        "pandas.read_table",
        "pandas.read_fwf",
        "pandas.read_xml",
        "pandas.read_orc",
        "pandas.read_sas",
        "pandas.read_spss",
        "pandas.read_stata",
        "pandas.read_clipboard",
        "pandas.read_sql_query",
        "pandas.read_sql_table",
        "pandas.HDFStore",
        "joblib.dump",
        "joblib.Memory",
        "joblib.memory.Memory",
        "pathlib.Path.open",
        "sklearn.datasets.fetch_openml",
        "PIL.Image.open",
        "matplotlib.pyplot.savefig",
        "matplotlib.pyplot.imsave",
        "matplotlib.image.imsave",
        "matplotlib.figure.Figure.savefig",
    ),
    "logging-config": ("logging.config", "logging.config.dictConfig", "logging.config.listen"),
    "typing-eval": (
        "typing.ForwardRef",
        "typing._eval_type",
        "typing.get_type_hints",
        "typing._type_check",
        "typing.ForwardRef._evaluate",
        "typing.evaluate_forward_ref",
        "annotationlib",
        "typing_extensions.get_type_hints",
        "typing_extensions.ForwardRef",
        "typing_extensions.evaluate_forward_ref",
        "dataclasses._create_fn",
        "dataclasses.make_dataclass",
    ),
}

#: Modules that are dangerous wherever they appear in a dotted path, as re-exported aliases
#: (`torch.serialization.pickle`, `sklearn.utils.np.load`).
_ANYWHERE: Final = frozenset(
    {
        "os",
        "posix",
        "nt",
        "sys",
        "subprocess",
        "_posixsubprocess",
        "builtins",
        "__builtin__",
        "importlib",
        "pickle",
        "_pickle",
        "cPickle",
        "dill",
        "cloudpickle",
        "marshal",
        "ctypes",
        "_ctypes",
        "shutil",
        "socket",
        "_socket",
        "runpy",
        "pty",
        "pdb",
        "bdb",
        "timeit",
        "webbrowser",
        "requests",
        "urllib",
        "urllib2",
        "urllib3",
        "httplib",
        "pydoc",
        "inspect",
        "multiprocessing",
        "codeop",
        "tempfile",
        "asyncio",
        "pkgutil",
        "zipimport",
        "shelve",
        "cProfile",
        "doctest",
        "ssl",
        "ftplib",
        "smtplib",
        "telnetlib",
        "gc",
        "atexit",
        "signal",
        "platform",
        "_io",
        "io",
        "joblib",
        "yaml",
        "pip",
    }
)

_ALIASES: Final[dict[str, str]] = {
    "__builtin__": "builtins",
    "__builtins__": "builtins",
    "np": "numpy",
    "pd": "pandas",
    "sp": "scipy",
    "_np": "numpy",
    "_pickle": "pickle",
    "cPickle": "pickle",
    "copy_reg": "copyreg",
    "exceptions": "builtins",
    "_sp": "scipy",
    "tf": "tensorflow",
}

#: `import torch.distributed as dist` at the top of a trusted module re-exports the denied
#: package under a short name: `torch.nn.modules._functions.dist.TCPStore("evil", 1)`.
_SUBMODULE_ALIASES: Final[dict[tuple[str, str], str]] = {
    ("torch", "dist"): "torch.distributed",
    ("torch", "mp"): "torch.multiprocessing",
    # `import multiprocessing as python_multiprocessing` in torch.utils.data.dataloader
    ("torch", "python_multiprocessing"): "multiprocessing",
    # `torch.cuda.memory._C` is torch._C; `torch._lazy.extract_compiled_graph.fx` is torch.fx
    ("torch", "_C"): "torch._C",
    ("torch", "fx"): "torch.fx",
    # `from xgboost import collective` in xgboost.callback
    ("xgboost", "collective"): "xgboost.collective",
}

#: Libraries that rebuild functions from code in the file, vendored under other packages
#: (`srsly.cloudpickle`, `ray.cloudpickle`, `pyspark.cloudpickle`, older
#: `joblib.externals.cloudpickle`): `_builtin_type("CodeType")` and `_make_function` there
#: are cloudpickle's own.
_VENDORED_CODE_LIBRARIES: Final = frozenset({"cloudpickle", "dill"})

#: Method or function names that read, write or execute wherever they are reached.
_DANGER_LEAVES: Final[dict[str, str]] = {
    **{
        n: "process"
        for n in (
            "system",
            "popen",
            "popen2",
            "popen3",
            "popen4",
            "spawnl",
            "spawnle",
            "spawnlp",
            "spawnlpe",
            "spawnv",
            "spawnve",
            "spawnvp",
            "spawnvpe",
            "posix_spawn",
            "posix_spawnp",
            "execl",
            "execle",
            "execlp",
            "execlpe",
            "execv",
            "execve",
            "execvp",
            "execvpe",
            "check_output",
            "check_call",
            "getoutput",
            "getstatusoutput",
            "startfile",
            "fork",
            "forkpty",
            "kill",
            "killpg",
            # process pools re-exported by other modules start their workers when built
            # or on first use
            "ProcessPoolExecutor",
            "ProcessPool",
            "MemmappingPool",
        )
    },
    # a thread pool runs what is submitted to it outside the loader's view
    "ThreadPoolExecutor": "subinterpreter",
    # creates (or clones) a Hub repository when built
    "PushToHubCallback": "network",
    **{
        n: "code-exec"
        for n in (
            "eval",
            "exec",
            "execfile",
            "run_path",
            "run_module",
            "run_code",
            "runcode",
            "runsource",
            "interact",
            "load_inline",
            "compile_command",
            # sympy's string evaluators and formula front ends, re-exported
            "sympify",
            "lambdify",
            "parse_expr",
            "from_formula",
            # pdb's breakpoint, re-exported (fastai.imports.core.set_trace): an interactive
            # debugger with a Python prompt opens at load time
            "set_trace",
            "post_mortem",
            # Hub code loaders, re-exported across transformers/diffusers modules
            "get_class_from_dynamic_module",
            "get_class_in_module",
            # classes of denied modules that trusted modules re-export under their own
            # names (`scipy.sparse.PytestTester`, `torch.utils.data.IterDataPipe`)
            "PytestTester",
            "GraphModule",
            "FusedGraphModule",
            "ObservedGraphModule",
            "ObservedStandaloneGraphModule",
            "QuantizedGraphModule",
            "ExportedProgram",
            "IterDataPipe",
            "MapDataPipe",
            "DFIterDataPipe",
            "ScriptModule",
            "ScriptMethod",
            "ScriptFunction",
            "RecursiveScriptModule",
            # scipy's exec-built named tuples, re-exported by scipy.stats modules
            "_make_tuple_bunch",
        )
    },
    # typing's string evaluators, re-exported (`torch._jit_internal.ForwardRef`)
    **dict.fromkeys(
        ("ForwardRef", "get_type_hints", "_eval_type", "evaluate_forward_ref"), "typing-eval"
    ),
    # re-exported classes of denied modules: joblib's PrintTime truncates its log file,
    # MemorizedResult.get() joblib.loads from its cache, torch's ContentStoreReader
    # torch.loads, a Thread runs its target, an RRef is a remote reference
    "PrintTime": "file",
    "MemorizedResult": "nested-unpickler",
    "ContentStoreReader": "nested-unpickler",
    "Thread": "subinterpreter",
    "RRef": "network",
    "PyRRef": "network",
    **{
        n: "resolver"
        for n in (
            "import_module",
            "__import__",
            "_import_dotted_name",
            "resolve_name",
            "locate",
            "getattr_static",
            "_ufunc_reconstruct",
            "find_class",
            # operator's getters re-exported by trusted modules (`from operator import
            # attrgetter` in sklearn.feature_selection._base): attrgetter("os.system")
            # applied to any module that imports os
            "attrgetter",
            "itemgetter",
            "methodcaller",
            # numpy's `add_newdoc(place, obj, doc)` runs `__import__(place)`
            "add_newdoc",
            # sklearn: `importlib.import_module(library)`, the module returned
            "check_library_installed",
            # scipy's import-by-name helpers, re-exported by dozens of its modules
            "_sub_module_deprecation",
            "clone_module",
            # getattr by a dotted path or over several names (fastcore/fastai's nested_attr
            # and getattrs, the common rgetattr): nested_attr(fastai.torch_core, "os.system")
            "nested_attr",
            "nested_callable",
            "getcallable",
            "getattrs",
            "setattrs",
            "delattrs",
            "try_attrs",
            "rgetattr",
            "rsetattr",
            "deep_getattr",
            "recursive_getattr",
        )
    },
    **{
        n: "nested-unpickler"
        for n in (
            "load",
            "loads",
            "load_model",
            "unsafe_load",
            "full_load",
            "read_pickle",
            "from_pretrained",
            # `AutoModel.from_config(cfg, trust_remote_code=True)` runs the code cfg.auto_map names
            "from_config",
            "load_state_dict_from_url",
            "load_library",
            "load_learner",
            "load_url",
            "load_pickle",
            "load_checkpoint",
            "npy_import_entry_point",
            "read_gpickle",
        )
    },
    **{
        n: "file"
        for n in (
            "open",
            "write_text",
            "write_bytes",
            "read_text",
            "read_bytes",
            "unlink",
            "rmtree",
            "rmdir",
            "mkdir",
            "makedirs",
            "touch",
            "chmod",
            "lchmod",
            "chown",
            "symlink_to",
            "hardlink_to",
            "link_to",
            "to_pickle",
            "to_csv",
            "to_parquet",
            "to_hdf",
            "to_sql",
            "to_excel",
            "to_json",
            "to_feather",
            "to_html",
            "to_latex",
            "to_stata",
            "to_markdown",
            "to_clipboard",
            "tofile",
            "dump",
            "dumps_to",
            "save",
            "savez",
            "savetxt",
            "fromfile",
            "from_file",
            "extractall",
            "extract",
            "copyfile",
            "copytree",
            "move",
            "truncate",
            "urlopen",
            "urlretrieve",
            "untar_data",
            "untar_dir",
            "unpack_archive",
            "extract_archive",
            "download_and_extract_archive",
            "save_pickle",
            "open_file",
            "openfile",
            "bunzip",
            "tarfile_extractall",
            "open_memmap",
            "loadtxt",
            "genfromtxt",
            "fromregex",
            "savez_compressed",
            "save_npz",
            "load_npz",
            "read_array",
            "write_array",
            "_load_from_filelike",
            "_dump",
            "download_url",
            "download_data",
            "cached_file",
            "hf_hub_download",
            "snapshot_download",
            "as_strided",
            "remove",
            "rename",
            # the savers of trusted packages' classes, reached as methods of an allowed
            # instance (`getattr(PretrainedConfig(), "to_json_file")(path)` writes any path)
            "to_json_file",
            "to_yaml_file",
            "save_pretrained",
            "save_state",
            "save_model",
            "save_vocabulary",
            "save_to_disk",
            "save_checkpoint",
            "save_metrics",
            # fsspec-style file systems (re-exported by trusted packages: datasets.filesystems)
            "rm",
            "rm_file",
            "pipe_file",
            "put_file",
            "cp_file",
            "mv_file",
            # tempfile's makers re-exported (lightgbm.basic.NamedTemporaryFile,
            # timm.models._hub.TemporaryDirectory)
            "NamedTemporaryFile",
            "TemporaryDirectory",
            "mkdtemp",
            "mkstemp",
            # joblib's store backends: `FileSystemStoreBackend().clear_location(path)` is
            # shutil.rmtree(path)
            "clear_location",
            "create_location",
            "clear_path",
            "clear_item",
            "store_cached_func_code",
        )
    },
    # torch's pluggable allocators dlopen the shared library their first argument names
    **{n: "native" for n in ("CUDAPluggableAllocator", "XPUPluggableAllocator")},
    # cffi's FFI re-exported (numpy's numba examples): dlopen and cast any address
    "FFI": "native",
    # raw addresses, handles and shared-memory fds: torch storages' internals
    # (`UntypedStorage._new_with_weak_ptr(addr)`, `_set_cdata`, `_free_weak_ref`), Arrow's C
    # data interface (`Array._export_to_c(addr)` writes a struct at any address) and
    # `foreign_buffer(addr, size)`
    **dict.fromkeys(
        (
            "_new_with_weak_ptr",
            "_weak_ref",
            "_free_weak_ref",
            "_expired",
            "_shared_decref",
            "_shared_incref",
            "_share_cuda_",
            "_new_shared_cuda",
            "_release_ipc_counter_cuda",
            "_set_cdata",
            "_new_shared",
            "_get_shared_fd",
            "_import_from_c",
            "_export_to_c",
            "_import_from_c_device",
            "_export_to_c_device",
            "foreign_buffer",
        ),
        "native",
    ),
    # Hub uploads with the user's own token: the loaded data leaves the machine
    **{
        n: "network"
        for n in ("push_to_hub", "upload_file", "upload_folder", "create_repo", "create_commit")
    },
    # URL fetchers that trusted packages keep under generic names (datasets, old transformers)
    **dict.fromkeys(
        (
            "cached_path",
            "get_from_cache",
            "cached_download",
            "http_get",
            "ftp_get",
            "fsspec_get",
            # connects to the name node (and loads libhdfs) when built
            "HadoopFileSystem",
        ),
        "network",
    ),
}

#: Words that, anywhere in a method's name (or a trusted package's function's), say it
#: reaches the network, writes files, loads another model or builds and runs code: a pickle
#: calling it through an allowed class (`DiffusionPipeline.download` fetches a repository
#: whose pipeline code may run; `Module.compile` starts a compiler; `Accelerator.load_state`
#: unpickles) does what no checkpoint needs. Real checkpoints name none of these.
_ACTION_WORDS: Final[dict[str, str]] = {
    **{
        w: "network"
        for w in (
            "download",
            "downloads",
            "upload",
            "uploads",
            "fetch",
            "hub",
            "url",
            "urls",
            "urlpath",
            "http",
            "https",
            "remote",
            "server",
            "servers",
            "serve",
            "socket",
            "repo",
            "webhook",
            "send",
        )
    },
    **{
        w: "file"
        for w in (
            "save",
            "saves",
            "write",
            "writes",
            "dump",
            "export",
            "persist",
            "store",
            "open",
            "mkdir",
            "makedirs",
            "unlink",
            "rmtree",
        )
    },
    **{w: "nested-unpickler" for w in ("load", "loads", "unpickler")},
    **{
        w: "code-exec"
        for w in ("compile", "precompile", "script", "torchscript", "exec", "eval", "launch")
    },
    "atexit": "import-system",
    # threads and worker pools that run the object's code outside the loader's view
    **{w: "subinterpreter" for w in ("thread", "executor", "multiprocessing")},
    **{w: "package-install" for w in ("install", "pip")},
    "import": "resolver",
}
#: Methods of trusted classes whose names' words do not say what they do.
_ACTION_METHODS: Final[dict[str, str]] = {
    # transformers' Trainer: ray, optuna or sigopt run trials in workers it starts
    "hyperparameter_search": "process",
    # sentence-transformers: a pool of worker processes encoding in parallel
    "_multi_process": "process",
    "_multi_process_worker": "process",
    "encode_multi_process": "process",
    # trl: HTTP requests to a generation server
    "_request_model": "network",
}
_REGISTER_WORDS: Final = frozenset({"register", "unregister", "deregister"})
#: A name pairing one of these verbs with one of these nouns touches the file system
#: (`cleanup_cache_files`, `delete_dir`, `from_json_file`, `_share_filename_cpu_`).
_FILE_VERBS: Final = frozenset(
    {"delete", "remove", "rename", "move", "copy", "clean", "cleanup", "read", "from", "new"}
    | {"share", "create", "manage", "offload", "parse", "iter"}
)
_FILE_NOUNS: Final = frozenset(
    {"file", "files", "filename", "fd", "dir", "dirs", "directory", "folder", "path", "paths"}
    | {"tmp", "disk"}
)


#: Words of a trusted package's class that opens a path for writing or a connection when
#: built (pyarrow's `OSFile(path, "w")`, `RecordBatchFileWriter(path, schema)`,
#: `flight.FlightClient`): checkpoints pickle data, not these handles. (A file system object
#: opens nothing when built; its methods are judged by their names.)
_IO_CLASS_WORDS: Final = frozenset({"writer", "client", "server", "listener"})
_FILE_CLASS_KINDS: Final = frozenset({"os", "mapped", "binary", "gds", "native"})


def _io_class_family(leaf: str) -> str | None:
    ws = set(words(leaf))
    if "writer" in ws or ("file" in ws and ws & _FILE_CLASS_KINDS):
        return "file"
    if ws & _IO_CLASS_WORDS:
        return "network"
    if "unpickler" in ws:
        # pickle.Unpickler subclasses (pandas.compat.pickle_compat.Unpickler)
        return "nested-unpickler"
    return None


def _action_family(leaf: str) -> str | None:
    """The family a method or function name claims by its words (see `_ACTION_WORDS`)."""
    listed = _ACTION_METHODS.get(leaf)
    if listed:
        return listed
    named = words(leaf)
    if named and named[0] in _REGISTER_WORDS:
        # `register_pytree_node`, `register_extension_dtype`, `register_backend`: a
        # process-wide registry keeps the callable or class and calls it later
        return "import-system"
    for w in named:
        fam = _ACTION_WORDS.get(w)
        if fam:
            return fam
    ws = set(named)
    if ws & _FILE_VERBS and ws & _FILE_NOUNS:
        return "file"
    if {"class", "name"} <= ws and ws & {"from", "by"}:
        # `tokenizer_class_from_name("pipeline")` hands out any attribute of transformers
        return "resolver"
    return behaviour_family("", leaf)


#: gensim classes that `SaveLoad.save` pickles. Only these, not gensim as a package: some
#: gensim constructors unpickle files they are given (`IndexedCorpus(index_fname=...)`) or
#: import modules by name (`EnsembleLda`), and some helpers load pickles (`utils.unpickle`).
#: None of these defines `__new__`/`__setstate__` or runs anything when built or called.
_GENSIM_SAFE: Final = (
    "gensim.models.word2vec.Word2Vec",
    "gensim.models.keyedvectors.KeyedVectors",
    "gensim.models.keyedvectors.Word2VecKeyedVectors",
    "gensim.models.keyedvectors.Vocab",
    "gensim.models.doc2vec.Doc2Vec",
    "gensim.models.doc2vec.Doctag",
    "gensim.models.fasttext.FastText",
    "gensim.models.fasttext.FastTextKeyedVectors",
    "gensim.models.tfidfmodel.TfidfModel",
    "gensim.models.ldamodel.LdaModel",
    "gensim.models.ldamodel.LdaState",
    "gensim.models.lsimodel.LsiModel",
    "gensim.models.lsimodel.Projection",
    "gensim.models.phrases.Phrases",
    "gensim.models.phrases.FrozenPhrases",
    "gensim.models.phrases.original_scorer",
    "gensim.models.phrases.npmi_scorer",
    "gensim.corpora.dictionary.Dictionary",
    # assigned to instances' `load` so that it is called on the class only; it only raises
    "gensim.utils.call_on_class_only",
)

#: Classes other libraries pickle as their saved form, each built by `__init__` arguments or
#: `__dict__` updates only (no file, import or network): NLTK's punkt tokenizer (the
#: `tokenizers/punkt/*.pickle` of nltk_data, not `PunktTokenizer`, which reads files), the
#: `vec_normalize.pkl` stable-baselines3 writes beside each RL Zoo model with the gymnasium
#: spaces it keeps, pmdarima's fitted ARIMA, and the torch head of a SetFit model
#: (`model_head.pkl`). stable-baselines3's model zip also cloudpickles, into its `data` JSON,
#: the policy and buffer classes (by reference, not called), schedules, the train frequency
#: and action noise of the run.
_SB3_SAVED: Final = tuple(
    f"stable_baselines3.{name}"
    for name in (
        "common.policies.ActorCriticPolicy",
        "common.policies.ActorCriticCnnPolicy",
        "common.policies.MultiInputActorCriticPolicy",
        *(
            f"{algo}.policies.{cls}"
            for algo in ("dqn", "sac", "td3")
            for cls in ("CnnPolicy", "MultiInputPolicy")
        ),
        "dqn.policies.DQNPolicy",
        "sac.policies.SACPolicy",
        "td3.policies.TD3Policy",
        "common.buffers.RolloutBuffer",
        "common.buffers.DictRolloutBuffer",
        "common.buffers.ReplayBuffer",
        "common.buffers.DictReplayBuffer",
        "her.her_replay_buffer.HerReplayBuffer",
        "common.utils.FloatSchedule",
        "common.utils.ConstantSchedule",
        "common.utils.LinearSchedule",
        "common.type_aliases.TrainFreq",
        "common.type_aliases.TrainFrequencyUnit",
        "common.torch_layers.FlattenExtractor",
        "common.torch_layers.NatureCNN",
        "common.torch_layers.CombinedExtractor",
        "common.noise.NormalActionNoise",
        "common.noise.OrnsteinUhlenbeckActionNoise",
    )
)
#: DeepSpeed's ZeRO optimizer states (`zero_pp_rank_*_optim_states.pt`, which its loader and
#: zero_to_fp32.py torch.load): the loss scaler, the stage enum and the fragment addresses of
#: each parameter's slice.
_DEEPSPEED_SAVED: Final = (
    "deepspeed.runtime.fp16.loss_scaler.LossScaler",
    "deepspeed.runtime.fp16.loss_scaler.DynamicLossScaler",
    "deepspeed.runtime.zero.config.ZeroStageEnum",
    "deepspeed.utils.tensor_fragment.fragment_address",
)
#: NLTK's trained taggers and classifiers as `pickle.dump` saves them (nltk_data's
#: `*.pickle` beside punkt's): their `__init__`s store arguments or count the corpus they
#: are given, FreqDist is a Counter, the ProbDists compute from a FreqDist; no file, import
#: or eval (ConditionalProbDist, which calls the factory it is given, is left out).
_NLTK_SAVED: Final = (
    *(
        f"nltk.tag.sequential.{cls}"
        for cls in (
            "DefaultTagger",
            "NgramTagger",
            "UnigramTagger",
            "BigramTagger",
            "TrigramTagger",
            "AffixTagger",
        )
    ),
    "nltk.classify.naivebayes.NaiveBayesClassifier",
    "nltk.classify.decisiontree.DecisionTreeClassifier",
    *(
        f"nltk.probability.{cls}"
        for cls in (
            "FreqDist",
            "MLEProbDist",
            "LidstoneProbDist",
            "LaplaceProbDist",
            "ELEProbDist",
            "DictionaryProbDist",
        )
    ),
)
#: river's online models as pickled: estimators, tree nodes and splitters, statistics and
#: optimizers whose `__init__` stores parameters (StandardScaler's `__setstate__` only
#: defaults a missing attribute), and the Rust VectorDict, rebuilt from its dict, default
#: factory (called on a missing key, as defaultdict's) and mask.
_RIVER_SAVED: Final = tuple(
    f"river.{name}"
    for name in (
        "tree.hoeffding_tree_classifier.HoeffdingTreeClassifier",
        "tree.nodes.htc_nodes.LeafMajorityClass",
        "tree.nodes.htc_nodes.LeafNaiveBayes",
        "tree.nodes.htc_nodes.LeafNaiveBayesAdaptive",
        "tree.nodes.branch.NumericBinaryBranch",
        "tree.nodes.branch.NominalBinaryBranch",
        "tree.nodes.branch.NumericMultiwayBranch",
        "tree.nodes.branch.NominalMultiwayBranch",
        "tree.splitter.gaussian_splitter.GaussianSplitter",
        "proba.gaussian.Gaussian",
        "stats.mean.Mean",
        "stats.var.Var",
        "compose.pipeline.Pipeline",
        "preprocessing.scale.StandardScaler",
        "linear_model.log_reg.LogisticRegression",
        "optim.sgd.SGD",
        "optim.schedulers.Constant",
        "optim.losses.Log",
        "optim.initializers.Zeros",
        "_river_rust.vectordict.VectorDict",
    )
)
_LIBRARY_SAFE: Final = (
    *_SB3_SAVED,
    *_DEEPSPEED_SAVED,
    *_NLTK_SAVED,
    *_RIVER_SAVED,
    "nltk.tokenize.punkt.PunktSentenceTokenizer",
    "nltk.tokenize.punkt.PunktParameters",
    "nltk.tokenize.punkt.PunktLanguageVars",
    "nltk.tokenize.punkt.PunktToken",
    "stable_baselines3.common.vec_env.vec_normalize.VecNormalize",
    "stable_baselines3.common.running_mean_std.RunningMeanStd",
    "gymnasium.spaces.box.Box",
    "gymnasium.spaces.discrete.Discrete",
    "gymnasium.spaces.multi_discrete.MultiDiscrete",
    "gymnasium.spaces.multi_binary.MultiBinary",
    "gymnasium.spaces.dict.Dict",
    "gymnasium.spaces.tuple.Tuple",
    "pmdarima.arima.arima.ARIMA",
    "pmdarima.arima.auto.AutoARIMA",
    "setfit.modeling.SetFitHead",
)

#: Exact names real models contain, with the call-shape check some of them need.
_SAFE_EXACT: Final[dict[str, str]] = {
    **dict.fromkeys(
        (
            # TorchScript archives (torch.jit.save) rebuild typed containers with these
            "torch.jit._pickle.build_intlist",
            "torch.jit._pickle.build_doublelist",
            "torch.jit._pickle.build_boollist",
            "torch.jit._pickle.build_tensorlist",
            "torch.jit._pickle.build_tensor_from_id",
            "torch.jit._pickle.restore_type_tag",
            "builtins.set",
            "builtins.frozenset",
            "builtins.list",
            "builtins.dict",
            "builtins.tuple",
            "builtins.int",
            "builtins.float",
            "builtins.complex",
            "builtins.bool",
            "builtins.bytes",
            "builtins.bytearray",
            "builtins.str",
            "builtins.slice",
            "builtins.range",
            "builtins.object",
            "builtins.reversed",
            "builtins.enumerate",
            "builtins.zip",
            "builtins.map",
            "builtins.filter",
            "builtins.Ellipsis",
            "builtins.NotImplemented",
            "builtins.long",
            "builtins.unicode",
            "builtins.xrange",
            "builtins.basestring",
            "builtins.NoneType",
            "builtins.type",
            "builtins.property",
            "builtins.staticmethod",
            "builtins.classmethod",
            "builtins.memoryview",
            "builtins.print",
            "builtins.len",
            "builtins.abs",
            "builtins.min",
            "builtins.max",
            "builtins.sum",
            "builtins.round",
            "builtins.pow",
            "builtins.divmod",
            "builtins.hash",
            "builtins.iter",
            "builtins.next",
            "builtins.sorted",
            "builtins.any",
            "builtins.all",
            "builtins.chr",
            "builtins.ord",
            "builtins.isinstance",
            "builtins.issubclass",
            "builtins.hasattr",
            "builtins.repr",
            "builtins.format",
            "builtins.ascii",
            "builtins.bin",
            "builtins.hex",
            "builtins.oct",
            "builtins.callable",
            "builtins.id",
            "collections.OrderedDict",
            "collections.defaultdict",
            "collections.deque",
            "collections.Counter",
            "collections.ChainMap",
            "collections.UserDict",
            "collections.UserList",
            "collections.UserString",
            "collections._tuplegetter",
            "copyreg._reconstructor",
            "copyreg.__newobj__",
            "copyreg.__newobj_ex__",
            "copyreg._reduce_ex",
            "datetime.datetime",
            "datetime.date",
            "datetime.time",
            "datetime.timedelta",
            "datetime.timezone",
            "datetime.tzinfo",
            "zoneinfo.ZoneInfo",
            "zoneinfo._zoneinfo.ZoneInfo",
            "zoneinfo.ZoneInfo._unpickle",
            "pytz._p",
            "pytz._UTC",
            "pytz.timezone",
            "decimal.Decimal",
            "_decimal.Decimal",
            "_pydecimal.Decimal",
            "fractions.Fraction",
            "uuid.UUID",
            # a pickled random.Random (training state that seeds Python's generator)
            "random.Random",
            "uuid.SafeUUID",
            "re._compile",
            "re.Pattern",
            "enum.Enum",
            "enum.IntEnum",
            "enum.Flag",
            "enum.IntFlag",
            "enum.StrEnum",
            "array.array",
            "array._array_reconstructor",
            "pathlib.Path",
            "pathlib.PosixPath",
            "pathlib.WindowsPath",
            "pathlib.PurePath",
            "pathlib.PurePosixPath",
            "pathlib.PureWindowsPath",
            "functools.partial",
            "functools.partialmethod",
            "types.SimpleNamespace",
            "types.MappingProxyType",
            "argparse.Namespace",
            "ipaddress.IPv4Address",
            "ipaddress.IPv6Address",
            "ipaddress.IPv4Network",
            "ipaddress.IPv6Network",
            "ipaddress.ip_address",
            "logging.getLogger",
            "logging.Logger",
            "logging.RootLogger",
            "logging.PlaceHolder",
            "logging.Formatter",
            "logging.LogRecord",
            "math.inf",
            "math.nan",
            "builtins.Warning",
            "numpy.core.multiarray._reconstruct",
            "numpy._core.multiarray._reconstruct",
            "numpy.core.multiarray.scalar",
            "numpy._core.multiarray.scalar",
            "numpy.core.numeric._frombuffer",
            "numpy._core.numeric._frombuffer",
            "numpy.random._pickle.__randomstate_ctor",
            "numpy.random._pickle.__bit_generator_ctor",
            "numpy.random._pickle.__generator_ctor",
            "numpy.ma.core._mareconstruct",
            "numpy.core.multiarray._reconstruct",
            "numpy.ndarray",
            "numpy.dtype",
            "joblib.numpy_pickle.NumpyArrayWrapper",
            "joblib.numpy_pickle_compat.NDArrayWrapper",
            "joblib.numpy_pickle_compat.ZNDArrayWrapper",
            "joblib.numpy_pickle.NDArrayWrapper",
            "joblib.numpy_pickle.ZNDArrayWrapper",
            "torch.serialization._get_layout",
            "torch._tensor._rebuild_from_type",
            "torch._tensor._rebuild_from_type_v2",
            "torch.Size",
            "torch.device",
            "torch.Tensor",
            "torch.nn.parameter.Parameter",
            "torch.nn.Parameter",
            "torch.nn.parameter.Buffer",
            "torch.nn.parameter.UninitializedParameter",
            "torch.strided",
            "torch.sparse_coo",
            "torch.sparse_csr",
            "torch.sparse_csc",
            "torch.sparse_bsr",
            "torch.sparse_bsc",
            "torch._mkldnn",
            "torch.contiguous_format",
            "torch.channels_last",
            "torch.channels_last_3d",
            "torch.preserve_format",
            "torch.per_tensor_affine",
            "torch.per_channel_affine",
            "torch.per_channel_affine_float_qparams",
            "torch.per_tensor_symmetric",
            "torch.per_channel_symmetric",
            "torch.Generator",
            "torch.tensor",
            "torch.storage.UntypedStorage",
            "torch.storage.TypedStorage",
            "torch.storage._StorageBase",
            "pandas._libs.internals._unpickle_block",
            "pandas.core.internals.blocks.new_block",
            "pandas.core.internals.blocks._unpickle_block",
            "pandas.core.indexes.base._new_Index",
            "pandas._libs.tslibs.timestamps._unpickle_timestamp",
            "pandas._libs.tslibs.timedeltas._timedelta_unpickle",
            "pandas._libs.tslibs.nattype.__nat_unpickle",
            "pandas._libs.tslibs.offsets._offset_unpickle",
            "pandas.core.indexes.period._new_PeriodIndex",
            "pandas.core.internals.managers.BlockManager",
            "pandas._libs.sparse.BlockIndex",
            "pandas._libs.sparse.IntIndex",
            "transformers.training_args.default_logdir",
            "fastcore.basics.partialler",
        ),
        "",
    ),
    "builtins.getattr": "getattr",
    "dill._dill._get_attr": "getattr",
    "numpy.core._ufunc_reconstruct": "resolve2",
    "numpy._core._ufunc_reconstruct": "resolve2",
    # uarray's multimethods pickle as unpickle_function(mod_name, qname, self_): an import
    # and a getattr walk, judged like the path they name
    "scipy._lib._uarray._backend.unpickle_function": "resolve2",
    "_codecs.encode": "codec",
    "codecs.encode": "codec",
    "torch.storage._load_from_bytes": "nested_bytes",
    "dill._dill._load_type": "dill_type",
    "dill._dill._create_array": "",
    "pyarrow.lib._restore_array": "",
    # lowercase classes: listed so that a protocol-2 bound method (`getattr(interp1d,
    # "_call_linear_np")`, kept by scipy.stats.ecdf) is not taken for getattr on a module
    "scipy.interpolate._interpolate.interp1d": "",
    "scipy.interpolate.interp1d": "",
    "scipy.spatial._ckdtree.cKDTree": "",
    "scipy.spatial.cKDTree": "",
    "dateutil.tz.tz.tzutc": "",
    "dateutil.tz.tz.tzoffset": "",
    "dateutil.tz.tz.tzlocal": "",
    "dateutil.tz.tz.tzfile": "",
    "dateutil.tz.tz.tzstr": "",
    "dateutil.relativedelta.relativedelta": "",
    "pyarrow.lib.type_for_alias": "",
    "pyarrow.lib.py_buffer": "",
    "pyarrow.lib.schema": "",
    "pyarrow.lib.field": "",
    # what pickled pyarrow tables, batches, chunked arrays, scalars and nested types name
    **dict.fromkeys(
        [
            f"pyarrow.lib.{n}"
            for n in (
                "_reconstruct_table",
                "_reconstruct_record_batch",
                "chunked_array",
                "scalar",
                "struct",
                "list_",
                "large_list",
                "list_view",
                "large_list_view",
                "fixed_size_list",
                "map_",
                "dictionary",
                "timestamp",
                "time32",
                "time64",
                "duration",
                "decimal32",
                "decimal64",
                "decimal128",
                "decimal256",
                "fixed_size_binary",
                "dense_union",
                "sparse_union",
                "run_end_encoded",
                "binary",
            )
        ],
        "",
    ),
    # dill's namedtuple rebuild returns `modulename.name` when that imports (its
    # `_import_module(..., safe=True)`), else makes the namedtuple: a resolver
    "dill._dill._create_namedtuple": "dill_namedtuple",
    **dict.fromkeys(_GENSIM_SAFE, ""),
    **dict.fromkeys(_LIBRARY_SAFE, ""),
    # the base classes a cloudpickled MLflow pyfunc names (its own code is reported apart)
    "mlflow.pyfunc.model.PythonModel": "",
    "mlflow.pyfunc.model.ChatModel": "",
    "mlflow.pyfunc.PythonModel": "",
    "mlflow.models.signature._TypeHints": "",
    # torch.Generator pickles as torch._C.Generator(device) plus its state (samplers keep
    # one); a pickled DataLoader names the default collate functions
    "torch._C.Generator": "",
    "torch.utils.data._utils.collate.default_collate": "",
    "torch.utils.data._utils.collate.default_convert": "",
    # torch.distributed.checkpoint's `.metadata`, which FileSystemWriter pickle.dumps and
    # FileSystemReader pickle.loads: dataclasses and an Enum, rebuilt by copyreg and BUILD;
    # the only `__setstate__` (TensorProperties) unpacks a tuple and maps an Enum to a
    # memory format
    **dict.fromkeys(
        (
            "torch.distributed.checkpoint.metadata.Metadata",
            "torch.distributed.checkpoint.metadata.MetadataIndex",
            "torch.distributed.checkpoint.metadata.StorageMeta",
            "torch.distributed.checkpoint.metadata.TensorStorageMetadata",
            "torch.distributed.checkpoint.metadata.TensorProperties",
            "torch.distributed.checkpoint.metadata.ChunkStorageMetadata",
            "torch.distributed.checkpoint.metadata.BytesStorageMetadata",
            "torch.distributed.checkpoint.metadata._MEM_FORMAT_ENCODING",
            "torch.distributed.checkpoint.filesystem._StorageInfo",
        ),
        "",
    ),
    # OmegaConf configs (Hydra; Lightning's `hyper_parameters`, NeMo, latent diffusion):
    # containers and value nodes whose `__setstate__` updates `__dict__` (DictConfig's also
    # rebuilds a `Dict[...]`/`List[...]` annotation), and the metadata dataclasses. Not
    # `OmegaConf` itself (its static methods load and save files) nor any resolver.
    **dict.fromkeys(
        (
            "omegaconf.dictconfig.DictConfig",
            "omegaconf.listconfig.ListConfig",
            "omegaconf.base.Metadata",
            "omegaconf.base.ContainerMetadata",
            "omegaconf.nodes.AnyNode",
            "omegaconf.nodes.StringNode",
            "omegaconf.nodes.IntegerNode",
            "omegaconf.nodes.FloatNode",
            "omegaconf.nodes.BooleanNode",
            "omegaconf.nodes.BytesNode",
            "omegaconf.nodes.PathNode",
            # the annotation OmegaConf keeps for untyped keys and values
            "typing.Any",
        ),
        "",
    ),
}

#: Packages whose classes (CapWords last component) and helpers real models pickle.
_TRUSTED_PACKAGES: Final = (
    "torch",
    "torchvision",
    "torchaudio",
    "torchtext",
    "sklearn",
    "scipy",
    "pandas",
    "numpy",
    "transformers",
    "tokenizers",
    "accelerate",
    "trl",
    "peft",
    "xgboost",
    "lightgbm",
    "catboost",
    "fastai",
    "fastcore",
    "timm",
    "sentence_transformers",
    "statsmodels",
    "joblib",
    "datasets",
    "safetensors",
    "diffusers",
    "pyarrow",
    "optuna",
)
#: Trusted packages whose lowercase functions (not just classes) are allowed.
_TRUSTED_FUNCTIONS: Final = (
    "torch._utils._rebuild_",
    "torch.nn.functional.",
    "torch.nn.init.",
    "torch.nn.modules.",
    "torch.optim.",
    "torch.distributions.",
    "torch.nn.utils.",
    "sklearn.",
    "fastai.",
    "fastcore.",
    "torchvision.models.",
    "torchvision.transforms.",
    "timm.models.",
    "scipy.sparse.",
    "scipy.stats.",
    "scipy.special.",
    # lowercase classes and their bound methods: interp1d (and `interp1d._call_linear_np`,
    # which scipy.stats.ecdf keeps), cKDTree
    "scipy.interpolate.",
    "scipy.spatial.",
    "numpy.",
)
#: Helpers inside otherwise denied modules that real checkpoints reference.
_SAFE_PREFIXES: Final = (
    "torch._utils._rebuild_",
    "torch._tensor._rebuild_",
    "torch._C._nn.",
    "torch._C._fft.",
    "torch._C._linalg.",
    "torch._C._special.",
)
_PANDAS_HELPERS: Final = LazyPattern(r"^pandas\..*\.(_unpickle\w*|_new_\w+|__pyx_unpickle_\w+)$")
_PYX_UNPICKLE: Final = LazyPattern(r"\.__pyx_unpickle_\w+$")
#: The array-API wrappers scipy's splines and interpolators keep as `_asarray` (BSpline,
#: PPoly, CubicSpline, so sklearn's SplineTransformer too). Only the `_aliases` modules: the
#: package's `_internal.clone_module` imports and execs by name.
_ARRAY_API_ALIASES: Final = LazyPattern(
    r"^scipy\._lib\.array_api_compat\.(numpy|torch|cupy|dask\.array|common)\._aliases\.[a-z]\w*$"
)
#: statsmodels' state-space Cython classes, one per BLAS type prefix (`sStatespace`,
#: `dKalmanFilter`, `zSimulationSmoother`): a fitted ARIMA/SARIMAX/UnobservedComponents keeps
#: them as values of its `prefix_*_map` dicts.
_STATSMODELS_TYPED: Final = LazyPattern(
    r"^statsmodels\.tsa\.statespace\._\w+\.[sdcz][A-Z][A-Za-z]*$"
)
#: torchao's quantized tensor subclasses and their layouts, enums and granularities, which
#: torch.save of a quantize_()'d model (and transformers' TorchAoConfig saves) pickles and
#: torchao registers with torch.serialization.add_safe_globals: classes of its quantization,
#: dtypes, float8 and low-bit optimizer-state modules (not pt2e's export helpers, nor prototype).
_TORCHAO_SAVED: Final = LazyPattern(
    r"^torchao\.(?:quantization(?!\.pt2e\b)|dtypes|float8|core\.config|optim\.subclass_\w+)"
    r"(?:\.\w+)*\.[A-Z][A-Za-z0-9_]*$"
)
_CLASS_LIKE: Final = LazyPattern(r"^_*[A-Z]")
_IDENT: Final = LazyPattern(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")

_DUNDER_RE: Final = LazyPattern(r"^__\w+__$")


def _build_module_index() -> dict[str, str]:
    return {m: fam for fam, mods in _MODULE_FAMILIES.items() for m in mods}


def _build_name_index() -> dict[str, str]:
    return {n: fam for fam, names in _NAME_FAMILIES.items() for n in names}


_MODULES: Final = _build_module_index()
_NAMES: Final = _build_name_index()
#: Top-level packages whose names, met as a part of a dotted qualname, are the package itself.
_REEXPORT_TOPS: Final = frozenset(
    {n.split(".", 1)[0] for n in (*_MODULES, *_NAMES)} | set(_TRUSTED_PACKAGES)
)
_SAFE_VERDICT: Final = Verdict(SAFE)
_UNKNOWN_VERDICT: Final = Verdict(UNKNOWN)


def danger(family: str, detail: str = "") -> Verdict:
    why = FAMILIES[family]
    return Verdict(DANGER, family, f"{detail} {why}".strip() if detail else why)


def _alias(module: str) -> str:
    head, sep, rest = module.partition(".")
    mapped = _ALIASES.get(head)
    return f"{mapped}{sep}{rest}" if mapped else module


def reexported_module(part: str) -> str | None:
    """The dangerous module a qualname segment stands for when it is a re-exported alias
    (`_ANYWHERE`: `torch.serialization.pickle`, `collections._sys`), or None."""
    head = _ALIASES.get(part, part)
    if head not in _ANYWHERE and head.startswith("_") and head.lstrip("_") in _ANYWHERE:
        head = head.lstrip("_")
    return head if head in _ANYWHERE else None


def _module_family(module: str) -> str | None:
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        fam = _MODULES.get(".".join(parts[:i]))
        if fam:
            return fam
    return None


def _name_family(full: str) -> str | None:
    parts = full.split(".")
    for i in range(len(parts), 1, -1):
        fam = _NAMES.get(".".join(parts[:i]))
        if fam:
            return fam
    return None


def _deny(module: str, qualname: str) -> Verdict | None:
    module = _alias(module)
    full = f"{module}.{qualname}"
    vendored = next((p for p in module.split(".")[1:] if p in _VENDORED_CODE_LIBRARIES), None)
    if vendored:
        # before the package's own family: ray.cloudpickle carries code, whatever ray does
        return danger("code-object", f"{module} is a copy of {vendored}.")
    fam = _module_family(full) or _name_family(full)
    if fam:
        return danger(fam)
    if module == "builtins" and qualname.split(".", 1)[0] in _BUILTIN_DANGER:
        return danger(_BUILTIN_DANGER[qualname.split(".", 1)[0]])
    qparts = qualname.split(".")
    for part in qparts:
        if _DUNDER_RE.match(part):
            return danger("dunder-walk", f"Attribute {part} is reached.")
    top = module.split(".", 1)[0]
    for k in range(len(qparts)):
        submodule = _SUBMODULE_ALIASES.get((top, qparts[k]))
        if submodule:
            fam = _module_family(submodule) or "resolver"
            return danger(fam, f"{submodule} is reached through {module} as {qparts[k]}.")
        head = _ALIASES.get(qparts[k], qparts[k])
        if head not in _ANYWHERE and head.startswith("_") and head.lstrip("_") in _ANYWHERE:
            head = head.lstrip("_")  # `import sys as _sys` re-exports: collections._sys
        if head in _ANYWHERE and (k > 0 or head != module):
            sub = ".".join([head, *qparts[k + 1 :]])
            fam = _module_family(sub) or _name_family(sub) or "resolver"
            return danger(fam, f"{head} is reached through {module}.")
        if k > 0 or len(qparts) > 1:
            sub = ".".join([head, *qparts[k + 1 :]])
            fam = _name_family(sub) if "." in sub else None
            if fam:
                return danger(fam)
    if top in _CONVERSION_PACKAGES and any(
        p.startswith("convert_") and p not in _NOT_CONVERSIONS for p in module.split(".")[1:]
    ):
        return danger(
            "nested-unpickler",
            f"{module} is a checkpoint conversion script: it loads checkpoints by path "
            "(torch.load, TensorFlow) and writes models.",
        )
    for part in qparts:
        if _importer_class(part):
            return danger("resolver", f"{part} imports whatever module its arguments name.")
        if part in _NATIVE_HANDLES:
            return danger("native", f"{part} is a loaded C library: its functions are called.")
    if top == "torch" and qparts[-1] in _TORCH_QUIET_METHODS:
        return None
    leaf_fam = _DANGER_LEAVES.get(qparts[-1])
    if leaf_fam:
        return danger(leaf_fam, f"'{qparts[-1]}' is a dangerous operation.")
    leaf_fam = _PACKAGE_LEAVES.get(module.split(".", 1)[0], {}).get(qparts[-1])
    if leaf_fam:
        return danger(leaf_fam, f"{full} is a dangerous operation in that package.")
    leaf = qparts[-1]
    if _CLASS_LIKE.match(leaf):
        # a nested class reached through an allowed one (`ResourceTracker._Popen`)
        leaf_fam = behaviour_family("", leaf) if len(qparts) > 1 else None
        if not leaf_fam and module.split(".", 1)[0] in _TRUSTED_PACKAGES:
            leaf_fam = _io_class_family(leaf)
    elif len(qparts) > 1 or module.split(".", 1)[0] in _TRUSTED_PACKAGES:
        leaf_fam = _action_family(leaf)
    if not leaf_fam and module.split(".", 1)[0] == "sympy" and leaf[:1].islower():
        # sympy's functions sympify their arguments: a string is parsed and eval'd
        return danger("code-exec", f"{full} sympifies its arguments (eval of a string).")
    if leaf_fam:
        return danger(leaf_fam, f"'{leaf}' says what it does.")
    return None


#: fastcore's helpers, re-exported by fastai: `run` is subprocess.run, `expand_wildcards`
#: imports what its code names, `delete(path)` is rmtree/unlink, `imp_mod(path)` execs a file.
_FASTCORE_LEAVES: Final[dict[str, str]] = {
    "run": "process",
    "run_procs": "process",
    "expand_wildcards": "resolver",
    "delete": "file",
    "imp_mod": "code-exec",
    # patch_to(cls)(f) sets f as an attribute of any class (Module.__call__, ...)
    "patch": "import-system",
    "patch_to": "import-system",
    "patch_property": "import-system",
    # parallel() is a ProcessPoolExecutor map (re-exported by fastai.torch_core); the
    # tokenizers and image helpers built on it also write where they are told
    "parallel": "process",
    "parallel_gen": "process",
    "parallel_tokenize": "process",
    "tokenize_df": "process",
    "verify_images": "process",
    "startproc": "process",
    "startthread": "subinterpreter",
    "threaded": "subinterpreter",
    "tokenize_folder": "file",
    "tokenize_files": "file",
    "tokenize_csv": "file",
    "resize_images": "file",
    "resize_image": "file",
    # FastDownload(cfg, base) writes its config.ini under base; get(url) fetches and extracts
    "FastDownload": "file",
    # learners that fetch or torch.load the weights their arguments name: a timm arch string
    # ("hf-hub:org/repo") or pretrained_fnames
    "vision_learner": "nested-unpickler",
    "cnn_learner": "nested-unpickler",
    "create_timm_model": "nested-unpickler",
    "language_model_learner": "nested-unpickler",
    "text_classifier_learner": "nested-unpickler",
}
#: torch's operator registries (torch.library, re-exported by _meta_registrations, _decomp,
#: _refs, _prims and others): a Library defines operators and puts any callable behind an
#: existing one (`Library("aten", "IMPL").impl("mm", f)`), so every later model runs it;
#: pytree's JSON loaders import the module a spec names.
_TORCH_LEAVES: Final[dict[str, str]] = {
    **dict.fromkeys(
        (
            "Library",
            "impl",
            "define",
            "fallback",
            "custom_op",
            "triton_op",
            "impl_abstract",
            "_register_fake",
            "_register_impl",
            "fallthrough_kernel",
            # holds a Library("triton", "DEF"); registerOp defines and implements operators
            "_TritonLibrary",
            "_Library",
            # HigherOrderOperator/OpOverload.py_impl(key)(fn): a Python kernel for an operator
            "py_impl",
            "py_functionalize_impl",
            "py_autograd_impl",
        ),
        "import-system",
    ),
    **dict.fromkeys(
        (
            "treespec_loads",
            "str_to_pytree",
            "_json_to_treespec",
            "enum_object_hook",
            "_defaultdict_deserialize",
            # import_module of the ordering function a user names
            "get_user_ordering_fn",
        ),
        "resolver",
    ),
    # dynamo guard sources and ShapeEnv guards: eval of the text they hold or are given;
    # sympy's S(text) re-exported by torch.utils._sympy is sympify, an eval
    **dict.fromkeys(
        ("get_value", "evaluate_guards_expression", "evaluate_guards_for_args", "S"), "code-exec"
    ),
    # datapipe serialization wrappers dill.loads/pickle.loads their state (re-exported by
    # torch.utils.data.dataloader); StorageWeakRef.from_weakref takes a raw pointer
    **dict.fromkeys(
        (
            "_DataPipeSerializationWrapper",
            "_IterDataPipeSerializationWrapper",
            "_MapDataPipeSerializationWrapper",
        ),
        "nested-unpickler",
    ),
    "_ShardingIterDataPipe": "code-exec",
    "from_weakref": "native",
    # _initExtension(manager_path) sets the shared-memory manager binary torch later spawns;
    # the strobelight profilers run their command lines
    **dict.fromkeys(
        ("_initExtension", "StrobelightCompileTimeProfiler", "StrobelightCLIFunctionProfiler"),
        "process",
    ),
}
#: Generic names that are dangerous in one package (whose functions are otherwise trusted,
#: and which re-exports them from module to module): fastcore's `run` is `subprocess.run`,
#: `expand_wildcards` imports the modules its code names.
_PACKAGE_LEAVES: Final[dict[str, dict[str, str]]] = {
    # Path methods that move, copy or delete: replace() renames over its target, copy(),
    # copy_into(), move_into() (Python 3.14) copy or move any file anywhere; fastcore patches
    # a delete() in
    "pathlib": dict.fromkeys(
        ("replace", "copy", "copy_into", "move_into", "_delete", "_copy_from", "delete"), "file"
    ),
    "fastcore": _FASTCORE_LEAVES,
    # `from_pretrained_fastai(repo)` downloads a repository and unpickles its model.pkl
    "fastai": {**_FASTCORE_LEAVES, "from_pretrained_fastai": "nested-unpickler"},
    # `resume_checkpoint(model, path, weights_only=False)` is torch.load of any path
    # `numpy.test`, `scipy.sparse.test`...: a PytestTester whose call runs pytest with the
    # pickle's arguments (plugins to import, test files anywhere to run)
    "numpy": {
        "test": "code-exec",
        # process-wide hooks that call the function they are given later
        "seterrcall": "import-system",
        "set_string_function": "import-system",
    },
    "scipy": {
        "test": "code-exec",
        # exec(self._parse_arg_template): the source comes from the instance's state
        "_attach_argparser_methods": "code-exec",
        "_attach_methods": "code-exec",
        # ODR.run(): ODRPACK writes its report and error files to the instance's paths
        "run": "file",
        # uarray backends: the global backend's functions answer every later scipy.fft call
        "set_global_backend": "import-system",
        "set_backend": "import-system",
    },
    "pandas": {
        "test": "code-exec",
        # show_versions(as_json=path) writes its report over any file
        "show_versions": "file",
        # to_string(buf=path) writes the rendering over any file
        "to_string": "file",
        # pandas.io.common.get_handle(path, "w") opens any path, re-exported by core modules
        "get_handle": "file",
        # reads a table from the catalog its arguments name (pandas.read_iceberg)
        "read_iceberg": "network",
        # pandas.io's stores and readers re-exported by core modules: HDFStore(path, "w")
        # truncates, the readers open any path
        **dict.fromkeys(
            ("HDFStore", "ExcelFile", "JsonReader", "SASReader", "StataReader"), "file"
        ),
        # `set_option("plotting.backend", "evilmod")` imports that module on the next plot;
        # plot/hist/boxplot take the backend's module name as an argument
        "set_option": "resolver",
        "option_context": "resolver",
        **dict.fromkeys(
            (
                "plot",
                "hist",
                "boxplot",
                "boxplot_frame",
                "boxplot_frame_groupby",
                "hist_frame",
                "hist_series",
                "PlotAccessor",
                "_get_plot_backend",
            ),
            "resolver",
        ),
    },
    "torch": _TORCH_LEAVES,
    # optuna's study functions open the storage their URL names (an RDB URL connects to a
    # database server or creates an SQLite file anywhere); optimize runs trials in threads
    "optuna": {
        **dict.fromkeys(
            (
                "create_study",
                "load_study",
                "delete_study",
                "copy_study",
                "get_all_study_summaries",
                "get_all_study_names",
                "get_storage",
            ),
            "network",
        ),
        "optimize": "subinterpreter",
        # CmaEsSampler rebuilds its optimizer with pickle.loads of the hex its trials carry
        "_restore_optimizer": "nested-unpickler",
    },
    # hyperparameter searches start optuna/ray/sigopt/wandb trials (ray starts a cluster)
    "transformers": dict.fromkeys(
        (
            "run_hp_search_optuna",
            "run_hp_search_ray",
            "run_hp_search_sigopt",
            "run_hp_search_wandb",
        ),
        "process",
    ),
    # training writes its train_dir (catboost_info, snapshot files) wherever params say;
    # create_cd writes a column description file at any path
    "catboost": dict.fromkeys(
        (
            "train",
            "cv",
            "fit",
            "_train",
            "_cv",
            "select_features",
            "grid_search",
            "randomized_search",
            "create_cd",
        ),
        "file",
    ),
    # joblib.parallel is a process module; its Parallel re-exported at the top (and by
    # sklearn.utils.parallel) starts the same loky workers
    "joblib": dict.fromkeys(("Parallel", "parallel_backend", "parallel_config"), "process"),
    "sklearn": {"Parallel": "process"},
    # statsmodels.test runs pytest; webdoc opens a browser on a URL
    "statsmodels": {"test": "code-exec", "webdoc": "network"},
    # create_dataset(name, root, download=True) fetches the data set
    "timm": {"resume_checkpoint": "nested-unpickler", "create_dataset": "network"},
    "accelerate": {
        "offload_state_dict": "file",
        "offload_weight": "file",
        "notebook_launcher": "process",
        "debug_launcher": "process",
    },
    # datasets re-exports multiprocess's Pool
    "datasets": {"Pool": "process"},
    # `WeightsEnum.get_state_dict(obj)` is torch.hub.load_state_dict_from_url(obj.url), whose
    # torch.load runs with weights_only=False: any object with a `url` attribute will do
    "torchvision": {"get_state_dict": "nested-unpickler"},
}


#: Lazy-import machinery that trusted packages define as (CapWords) classes: built with
#: arguments a pickle chooses, it imports any module and hands out any attribute under a name
#: no leaf rule knows. transformers', diffusers' and trl's `_LazyModule("logging", f,
#: {"config": ["dictConfig"]})` gives `logging.config.dictConfig` as attribute `dictConfig`;
#: `_LazyConfigMapping`/`_LazyAutoMapping` import any `transformers.models.<key>` path. Real
#: checkpoints never pickle these (they are module objects and module-level registries).
_IMPORTER_CLASSES: Final = frozenset(
    {
        "_LazyModule",
        "_LazyConfigMapping",
        "_LazyAutoMapping",
        "_LazyLoadAllMappings",
        "_LazyUtilsModule",
        "_LegacyModuleAliasFinder",
        "_IntegrationModule",
        "_LazyImport",
    }
)
_IMPORTER_CLASS_RE: Final = LazyPattern(r"^_*Lazy\w*(Module|Mappings?|Importer|Import)$")


#: torch methods whose names' words mislead: an uninitialised lazy module (LazyLinear before
#: its first forward) keeps its bound `_lazy_load_hook` (it fills in parameters from a
#: state dict) among its load-state hooks, so `torch.save(model)` pickles it.
_TORCH_QUIET_METHODS: Final = frozenset({"_lazy_load_hook"})
#: Packages that ship checkpoint conversion scripts as modules (`transformers.models.bert.
#: convert_bert_original_tf_checkpoint_to_pytorch`, `diffusers.pipelines.stable_diffusion.
#: convert_from_ckpt`); the slow-to-fast tokenizer converters only read vocabularies.
_CONVERSION_PACKAGES: Final = frozenset({"transformers", "diffusers"})
_NOT_CONVERSIONS: Final = frozenset({"convert_slow_tokenizer"})
#: ctypes libraries that trusted packages keep at module level (`xgboost.core._LIB`,
#: `lightgbm.basic._LIB`): `_LIB.XGBoosterSaveModel(handle, path)` calls C with the
#: pickle's arguments.
_NATIVE_HANDLES: Final = frozenset({"_LIB", "LIB", "_lib_handle", "_dll", "_DLL"})


def _importer_class(part: str) -> bool:
    return part in _IMPORTER_CLASSES or bool(_IMPORTER_CLASS_RE.match(part))


_BUILTIN_DANGER: Final[dict[str, str]] = {
    n.split(".", 1)[1]: fam
    for n, fam in _NAMES.items()
    if n.startswith("builtins.") and n.count(".") == 1
}


def _trusted(module: str, qualname: str) -> bool:
    full = f"{module}.{qualname}"
    top = module.split(".", 1)[0]
    if top == "torchao" and "." not in qualname:
        return _TORCHAO_SAVED.match(full) is not None
    if top not in _TRUSTED_PACKAGES:
        return False
    if not _IDENT.match(full):
        return False
    leaf = qualname.rsplit(".", 1)[-1]
    if _CLASS_LIKE.match(leaf) or _PYX_UNPICKLE.search(full) or _PANDAS_HELPERS.match(full):
        return True
    if _ARRAY_API_ALIASES.match(full) or _STATSMODELS_TYPED.match(full):
        return True
    if full.startswith("torch.") and "." not in qualname and module == "torch":
        # dtypes and other torch-level singletons (torch.float32, torch.bfloat16, ...)
        return True
    return full.startswith(_TRUSTED_FUNCTIONS)


@lru_cache(maxsize=1)
def trusted_top_levels() -> frozenset[str]:
    """Top-level packages some of whose names `classify` calls safe: an archive that ships its
    own source under one of them (a torch.package) would run that code under a trusted name."""
    exact = {name.split(".", 1)[0] for name in _SAFE_EXACT}
    prefixes = {name.split(".", 1)[0] for name in _SAFE_PREFIXES + _TRUSTED_FUNCTIONS}
    return frozenset(exact | prefixes | set(_TRUSTED_PACKAGES) | {"torchao"})


@lru_cache(maxsize=4096)
def classify(module: str, qualname: str) -> Verdict:
    """Verdict for the global `module.qualname` as the loader resolves it."""
    full = f"{_alias(module)}.{qualname}"
    if module == "__torch__" or module.startswith("__torch__."):
        # TorchScript class types: resolved from the archive's compiled code, never imported
        return _SAFE_VERDICT
    special = _SAFE_EXACT.get(full)
    if special is not None:
        return Verdict(SHAPE, special=special) if special else _SAFE_VERDICT
    if (
        full.startswith(_SAFE_PREFIXES)
        and _IDENT.match(full)
        and not any(_DUNDER_RE.match(p) for p in qualname.split("."))
    ):
        return _SAFE_VERDICT
    reached = _reexported(qualname)
    if reached is not None:
        head, rest = reached
        target = classify(head, rest)
        if target.kind == DANGER:
            return danger(target.family, f"{head}.{rest} is reached through {module}.")
        if head in _TRUSTED_PACKAGES:
            # `torch.nn.functional` + `torch.utils.x.f` is torch.utils.x.f, not a function
            # of torch.nn.functional
            return target
    denied = _deny(module, qualname)
    if denied is not None:
        return denied
    if module == "builtins" or _alias(module) == "builtins":
        leaf = qualname.split(".", 1)[0]
        if leaf.endswith(("Error", "Exception", "Warning")) or leaf in ("BaseException",):
            return _SAFE_VERDICT
    if valid_name(module, qualname):
        claimed = behaviour_family(module, qualname)
        if claimed is not None:
            return danger(claimed, f"The name {full} says what it does.")
    loads = _loads_by_name(_alias(module), qualname)
    if loads is not None:
        return loads
    if _trusted(_alias(module), qualname):
        return _SAFE_VERDICT
    return _UNKNOWN_VERDICT


def _reexported(qualname: str) -> tuple[str, str] | None:
    """A package reached as an attribute inside a dotted name (`import torch` at the top of
    `torch.nn.functional` makes `torch.nn.functional` + `torch.library.Library` the class
    torch.library.Library): the package and the rest of the path."""
    qparts = qualname.split(".")
    for k in range(len(qparts) - 1):
        head = _ALIASES.get(qparts[k], qparts[k])
        if head in _REEXPORT_TOPS:
            return head, ".".join(qparts[k + 1 :])
    return None


#: Trusted-package names that fetch and load the model their first argument names (a Hub
#: repository with `trust_remote_code` runs its code): classes are judged when called (their
#: `__init__` loads; NEWOBJ and copyreg rebuild a saved instance without it), functions always.
_LOADS_BY_NAME_CLASSES: Final = {
    "sentence_transformers": frozenset(
        # models.Transformer/CLIPModel/MLMTransformer(name, model_args=...) load a Hub model,
        # trust_remote_code included
        {
            "SentenceTransformer",
            "CrossEncoder",
            "SparseEncoder",
            "Transformer",
            "CLIPModel",
            "MLMTransformer",
        }
    ),
}
_LOADS_BY_NAME_FUNCTIONS: Final = {
    "transformers": frozenset({"pipeline"}),
    # `create_model("hf-hub:org/repo", pretrained=True)` fetches that repository's weights;
    # `pretrained_cfg_overlay={"file": path}` torch.loads any local file
    "timm": frozenset({"create_model"}),
}
_BOOSTER_BY_PATH: Final = (
    "nested-unpickler",
    "Booster(params, cache, model_file) loads another model from any path: what runs is not "
    "the model that was scanned.",
)
_TRAINER_BUILT: Final = (
    "file",
    "Trainer(model, args) creates its output folder, starts the reporting integrations "
    "args.report_to names and calls args' model_init.",
)
_DATA_BY_PATH: Final = ("file", "Given a path, the data set is read from any file on disk.")
_CHECKPOINT_BUILT: Final = (
    "network",
    "ModelCheckpoint(dirpath=url) opens the filesystem its URL names (fsspec): a remote one "
    "(ssh://, ftp://, s3://...) connects to that host when built.",
)
#: Classes whose `__init__` does something else no load needs, with what it does.
_CALLED_CLASSES: Final[dict[str, dict[str, tuple[str, str]]]] = {
    "transformers": dict.fromkeys(("Trainer", "Seq2SeqTrainer"), _TRAINER_BUILT),
    "xgboost": {"Booster": _BOOSTER_BY_PATH, "DMatrix": _DATA_BY_PATH},
    "scipy": {
        "ODR": (
            "file",
            "ODR(data, model, ..., errfile, rptfile, ..., overwrite=True) deletes both paths "
            "when built; run() has ODRPACK write its reports there.",
        ),
    },
    "lightgbm": {"Booster": _BOOSTER_BY_PATH, "Dataset": _DATA_BY_PATH},
    # Pool(data, column_description=, pairs=, ...) reads every path it is given; a Pool does
    # not pickle (its C++ pool has no state to save), so no real pickle rebuilds one
    "catboost": {"Pool": _DATA_BY_PATH},
    # SD 1.x `.ckpt` files key Lightning 1.4's callback states by this class (a reference,
    # never called)
    "pytorch_lightning": {"ModelCheckpoint": _CHECKPOINT_BUILT},
    "lightning": {"ModelCheckpoint": _CHECKPOINT_BUILT},
    "optuna": {
        "Study": (
            "network",
            "Study(name, storage=url) opens the storage its URL names: it connects to a "
            "database server, or creates an SQLite file at any path.",
        ),
    },
}
#: trl's trainers: `SFTTrainer(model="org/repo", args=SFTConfig(trust_remote_code=True))`
#: loads the named repository, its code included.
_LOADS_BY_NAME_SUFFIXES: Final = {"trl": "Trainer"}
#: Dataset classes: `torchvision.datasets.MNIST(root, download=True)` fetches archives and
#: extracts them under the root it is given. Rebuilt instances (a pickled DataLoader's
#: dataset) stay quiet.
_LOADS_BY_NAME_MODULES: Final = (
    "torchvision.datasets",
    "torchaudio.datasets",
    "torchtext.datasets",
)


def _loads_by_name(module: str, qualname: str) -> Verdict | None:
    root = module.split(".", 1)[0]
    leaf = qualname.rsplit(".", 1)[-1]
    suffix = _LOADS_BY_NAME_SUFFIXES.get(root)
    loading_class = (
        leaf in _LOADS_BY_NAME_CLASSES.get(root, ())
        or bool(suffix and leaf.endswith(suffix) and _CLASS_LIKE.match(leaf))
        or bool(
            f"{module}.".startswith(tuple(f"{m}." for m in _LOADS_BY_NAME_MODULES))
            and "." not in qualname
            and _CLASS_LIKE.match(leaf)
        )
    )
    called = _CALLED_CLASSES.get(root, {}).get(leaf) if "." not in qualname else None
    if called is not None:
        return Verdict(SHAPE, family=called[0], why=called[1], special="loads_by_name")
    if "." in qualname and not loading_class:
        return None
    if loading_class:
        return Verdict(SHAPE, special="loads_by_name")
    if leaf in _LOADS_BY_NAME_FUNCTIONS.get(root, ()):
        return danger("nested-unpickler", f"{module}.{qualname} loads the model it is given.")
    return None


def classify_attribute(base_module: str, base_qualname: str, base: Verdict, attr: str) -> Verdict:
    """Verdict for `base.attr` reached at load time (getattr, dotted names).

    An allowed class's ordinary method stays allowed (a pickled bound method); dunders,
    dangerous method names and aliases of dangerous modules are caught by the path check.
    """
    qualname = f"{base_qualname}.{attr}" if base_qualname else attr
    denied = _deny(base_module, qualname)
    if denied is not None:
        return denied
    if base.kind in (SAFE, SHAPE) and _IDENT.match(attr) and not attr.startswith("__"):
        return _SAFE_VERDICT
    return classify(base_module, qualname)


def module_like(module: str, qualname: str) -> bool:
    """A global that is probably a module (`numpy.core`, `torch.serialization`): getattr on
    it can fetch anything, unlike getattr on a class or an instance."""
    leaf = qualname.rsplit(".", 1)[-1]
    full = f"{_alias(module)}.{qualname}"
    return (
        bool(leaf)
        and leaf[0].islower()
        and full not in _SAFE_EXACT
        and not (module == "torch" and "." not in qualname and leaf not in _TORCH_SUBMODULES)
    )


_TORCH_SUBMODULES: Final = frozenset(
    {
        "nn",
        "optim",
        "utils",
        "cuda",
        "backends",
        "autograd",
        "distributions",
        "fft",
        "linalg",
        "special",
        "sparse",
        "storage",
        "serialization",
        "jit",
        "hub",
        "ops",
        "classes",
        "fx",
        "onnx",
        "package",
        "library",
        "testing",
        "random",
        "multiprocessing",
        "distributed",
    }
)


def valid_name(module: str, qualname: str) -> bool:
    """Whether a loader could import this at all (garbage names fail to import)."""
    return bool(_IDENT.match(module)) and bool(_IDENT.match(qualname))
