"""Rule ids of the container scanners (MA2000-MA2999)."""

from __future__ import annotations

from ..findings import IssueSeverity
from .catalogue import define_rule

PATH_TRAVERSAL = define_rule(
    "MA2001",
    "ArchivePathTraversal",
    "An archive member's path escapes the extraction folder ('..', absolute path, drive letter).",
    "Do not extract this archive. A legitimate model archive only holds relative paths inside "
    "its own folder; rebuild it from trusted files.",
    severity=IssueSeverity.CRITICAL,
    cwe=22,
)
LINK_ESCAPE = define_rule(
    "MA2002",
    "ArchiveLinkEscape",
    "An archive holds a symbolic or hard link that points outside the extraction folder.",
    "Do not extract this archive: extracting it writes or reads files outside the target folder.",
    severity=IssueSeverity.CRITICAL,
    cwe=59,
)
DECOMPRESSION_BOMB = define_rule(
    "MA2003",
    "DecompressionBomb",
    "A compressed stream or archive expands beyond the ratio or size limits.",
    "Treat the file as a denial-of-service attempt. If it is legitimate, raise the limits "
    "(max_expanded_size, max_compression_ratio) and scan again.",
    cwe=409,
)
TOO_MANY_ENTRIES = define_rule(
    "MA2004",
    "TooManyArchiveEntries",
    "An archive holds more entries than the scanner will examine.",
    "Split the archive or raise max_archive_entries; members past the limit were not scanned.",
    cwe=409,
)
DEPTH_LIMIT = define_rule(
    "MA2005",
    "NestingTooDeep",
    "Archives or compressed streams are nested deeper than max_depth; the inner ones were not scanned.",
    "Unpack the outer layers yourself and scan the contents, or raise max_depth.",
    cwe=409,
)
ZIP_ANOMALY = define_rule(
    "MA2006",
    "ZipStructureAnomaly",
    "The zip's structure lets different readers see different content (duplicate names, "
    "mismatched local and central names, bad CRC).",
    "Legitimate writers never produce this. Rebuild the file with a standard writer; until then "
    "treat it as crafted to hide content from scanners.",
)
ENCRYPTED_MEMBER = define_rule(
    "MA2007",
    "EncryptedMember",
    "An archive member is encrypted, so its content could not be scanned.",
    "Decrypt the archive and scan its contents; an encrypted model cannot be verified.",
)
UNSUPPORTED_COMPRESSION = define_rule(
    "MA2008",
    "UnsupportedCompression",
    "An archive member uses a compression method the scanner cannot decode.",
    "Repack the archive with stored or deflate members and scan again.",
)
SPECIAL_FILE = define_rule(
    "MA2009",
    "ArchiveSpecialFile",
    "A tar archive holds a device file or FIFO.",
    "Model archives never need device files; do not extract this archive as root.",
    cwe=73,
)
POLYGLOT = define_rule(
    "MA2010",
    "PolyglotZip",
    "The file is also a valid zip archive (a zip appended to another format).",
    "Loaders that check the zip first (zipfile, numpy, torch variants) see different content than "
    "loaders that read from the start. Remove the appended archive.",
)
OBJECT_ARRAY = define_rule(
    "MA2011",
    "NumpyObjectArray",
    "A NumPy array has an object dtype: loading it with allow_pickle=True unpickles its data.",
    "The embedded pickle was scanned; prefer numeric arrays, which load without pickle.",
)
LEGACY_TORCH_TAR = define_rule(
    "MA2012",
    "LegacyTorchTar",
    "The archive uses PyTorch's legacy tar checkpoint format, which torch.load still unpickles.",
    "Re-save the model with a current torch version (or as safetensors).",
)
UNREFERENCED_RECORD = define_rule(
    "MA2013",
    "UnreferencedModelRecord",
    "A PyTorch zip holds a storage record that no pickle in it names: not tensor data torch "
    "uses, but content (a pickle, a program, an archive) shipped for something else.",
    "Legitimate checkpoints reference every storage they contain; re-save the model from a "
    "trusted source.",
    severity=IssueSeverity.WARNING,
    cwe=506,
)
EXECUTABLE_IN_MODEL = define_rule(
    "MA2014",
    "ExecutableInArchive",
    "An archive holds a native program, library or script: CRITICAL inside a model container "
    "(torch zip, .keras, .npz, .nemo), where nothing legitimate needs one.",
    "Do not extract or load it; a program shipped with a model is the payload of the next step.",
    severity=IssueSeverity.CRITICAL,
    cwe=506,
)
TRAILING_PAYLOAD = define_rule(
    "MA2015",
    "TrailingPayload",
    "Bytes after the end of a format (past the last safetensors or GGUF tensor, after a "
    "zip's end record) hold another format: a pickle, a program, an archive.",
    "Loaders of the outer format never read these bytes; something else is meant to. "
    "Re-save the model from a trusted source.",
    severity=IssueSeverity.WARNING,
    cwe=506,
)
TORCHSERVE_HANDLER = define_rule(
    "MA2016",
    "TorchServeHandlerCode",
    "A TorchServe model archive (.mar) names a handler that is Python shipped in the archive "
    "(or a module that is neither in it nor a built-in handler).",
    "TorchServe imports the handler and calls its initialize() when it loads the model, and "
    "handle() on every request. Read the handler before serving the archive.",
    severity=IssueSeverity.CRITICAL,
    cwe=94,
)
TORCHSERVE_REQUIREMENTS = define_rule(
    "MA2017",
    "TorchServeRequirementsSource",
    "A TorchServe model archive's requirements file (MANIFEST `model.requirementsFile`) takes "
    "a package from a URL, a version-control checkout, a local path or a package index the "
    "archive chose, or lies outside the archive.",
    "With install_py_dep_per_model=true TorchServe runs `pip install -r` on that file as the "
    "model loads, which runs the package's build and install code on the server. Replace the "
    "requirement with a pinned release from your own index, or serve with the option off.",
    severity=IssueSeverity.WARNING,
    cwe=829,
)
TORCHSCRIPT_FILE_ACCESS = define_rule(
    "MA2018",
    "TorchScriptFileAccess",
    "TorchScript source in a torch.jit.save archive (or the mobile bytecode of a "
    "lite-interpreter one) calls a builtin that reads, creates or "
    "writes files at a path the model chooses (torch.from_file, torch.save, torchvision's "
    "image read_file/write_file).",
    "torch.jit.load runs a scripted class's __setstate__ while loading, and forward runs on "
    "every call; no model needs to touch the host's files. Do not load it; re-export the "
    "model from trusted code.",
    severity=IssueSeverity.CRITICAL,
    cwe=73,
)
TORCH_PACKAGE_SHADOW = define_rule(
    "MA2019",
    "TorchPackageShadowsModule",
    "A torch.package archive ships its own source under a package the pickle scan trusts by "
    "name (torch, numpy, collections, ...) without marking it extern.",
    "torch.package's importer takes every module that is not extern from the archive, also the "
    "ones its pickles name: a class that reads as torch's runs the archive's code instead. "
    "Load it only if you trust its author, or re-export it with those modules extern.",
    severity=IssueSeverity.WARNING,
    cwe=94,
)
CONTAINER_WITHOUT_CONTENT = define_rule(
    "MA2020",
    "ContainerWithoutContent",
    "A container holds nothing its loader reads: an empty compressed stream, or a PyTorch zip "
    "with no pickle record.",
    "Nothing in it runs; check that the file is the one you meant to ship.",
    severity=IssueSeverity.INFO,
)
