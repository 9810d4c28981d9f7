"""diffusers `model_index.json`: which code `DiffusionPipeline.from_pretrained` imports.

Each component entry is `[library, class]`. diffusers takes the class from a diffusers pipeline
subpackage (`stable_diffusion` for the safety checker) when the library names one; else, when
the component's folder holds `<library>.py`, it loads that file as a custom component (the Hub
download fetches it from the repository); else it imports `library` with `importlib` and takes
the class from it. `_class_name` may be `[module, class]` instead of a pipeline class name: a
custom pipeline, loaded from `<module>.py` in the repository (or from diffusers' community
pipelines on GitHub). Known libraries stay quiet; any other library is custom code fetched or
imported at load (WARNING); code the repository holds, which loading imports, is reported with
what the file does (read with `ast`, never imported): CRITICAL when that is harm, when the file
was not read (past the per-index bound) or when it stands in for a known library (`diffusers.py`
in a component's folder), a WARNING when it only does a model's work (a custom component or
pipeline published with its code: unvetted, not an attack).
"""

from __future__ import annotations

import os
from typing import Any, Final, NamedTuple

from ...rules.text import JSON_REMOTE_CODE
from ..base import BaseScanner, IssueSeverity, ScanResult

#: Libraries whose classes diffusers' own loader tables know (`LOADABLE_CLASSES`).
KNOWN_LIBRARIES: Final = frozenset({"diffusers", "transformers", "onnxruntime.training"})
#: diffusers pipeline subpackages (`diffusers.pipelines.<name>`): components defined there
#: (safety checkers, watermarkers, projection models, text decoders) name them as library.
PIPELINE_SUBPACKAGES: Final = frozenset(
    [
        "ace_step",
        "allegro",
        "alt_diffusion",
        "amused",
        "animatediff",
        "anyflow",
        "audio_diffusion",
        "audioldm",
        "audioldm2",
        "aura_flow",
        "auto_pipeline",
        "blip_diffusion",
        "bria",
        "bria_fibo",
        "chroma",
        "chronoedit",
        "cogvideo",
        "cogview3",
        "cogview4",
        "consisid",
        "consistency_models",
        "controlnet",
        "controlnet_hunyuandit",
        "controlnet_sd3",
        "controlnet_xs",
        "cosmos",
        "dance_diffusion",
        "ddim",
        "ddpm",
        "deepfloyd_if",
        "deprecated",
        "dit",
        "easyanimate",
        "ernie_image",
        "flux",
        "flux2",
        "glm_image",
        "helios",
        "hidream_image",
        "hunyuan_image",
        "hunyuan_video",
        "hunyuan_video1_5",
        "hunyuandit",
        "i2vgen_xl",
        "ideogram4",
        "joyimage",
        "kandinsky",
        "kandinsky2_2",
        "kandinsky3",
        "kandinsky5",
        "kolors",
        "krea2",
        "latent_consistency_models",
        "latent_diffusion",
        "latte",
        "ledits_pp",
        "llada2",
        "longcat_audio_dit",
        "longcat_image",
        "lucy",
        "lumina",
        "lumina2",
        "ltx",
        "ltx2",
        "marigold",
        "mochi",
        "motif_video",
        "musicldm",
        "nucleusmoe_image",
        "omnigen",
        "onnx_utils",
        "ovis_image",
        "pag",
        "paint_by_example",
        "pia",
        "pixart_alpha",
        "prx",
        "qwenimage",
        "sana",
        "sana_video",
        "semantic_stable_diffusion",
        "shap_e",
        "skyreels_v2",
        "spectrogram_diffusion",
        "stable_audio",
        "stable_cascade",
        "stable_diffusion",
        "stable_diffusion_3",
        "stable_diffusion_attend_and_excite",
        "stable_diffusion_diffedit",
        "stable_diffusion_gligen",
        "stable_diffusion_k_diffusion",
        "stable_diffusion_ldm3d",
        "stable_diffusion_panorama",
        "stable_diffusion_safe",
        "stable_diffusion_sag",
        "stable_diffusion_xl",
        "stable_video_diffusion",
        "t2i_adapter",
        "text_to_video_synthesis",
        "unclip",
        "unidiffuser",
        "versatile_diffusion",
        "visualcloze",
        "vq_diffusion",
        "wan",
        "wuerstchen",
        "z_image",
    ]
)
#: Files whose behaviour is read per index (each is parsed); the rest are reported unread.
_MAX_ANALYSED: Final = 10


def is_model_index(shown: str) -> bool:
    """A diffusers pipeline index, by its name: each component's own `config.json` carries
    `_class_name` and `_diffusers_version` too, with lists that are no components."""
    return shown.replace("\\", "/").rsplit("/", 1)[-1] == "model_index.json"


class _Load(NamedTuple):
    """One class the index makes diffusers load, and where from."""

    message: str
    file: str | None
    cls: str
    details: dict[str, Any]
    remote: str
    shadows: bool


def report_model_index(
    scanner: BaseScanner, doc: dict[str, Any], path: str, result: ScanResult
) -> None:
    """One finding per component or custom pipeline whose code is not a known library's.

    Loading imports each shipped file once and builds every class named from it, so a file
    is judged once with all those classes (`behaviour_summary` of the set): a verdict read
    for the first class named from a file, reused for the next, passed a harmful class
    named second as harmless."""
    folder = os.path.dirname(path)
    loads: list[_Load] = []
    pipeline = doc.get("_class_name")
    if (
        isinstance(pipeline, list)
        and len(pipeline) == 2
        and all(isinstance(p, str) for p in pipeline)
    ):
        module, cls = pipeline
        loads.append(
            _Load(
                f"model_index.json loads the custom pipeline {cls} from {module}.py",
                _local_py(folder, "", module),
                cls,
                {"key": "_class_name", "module": module, "class": cls},
                "the repository or diffusers' community pipelines",
                False,
            )
        )
    for component, value in doc.items():
        if component.startswith("_") or not isinstance(value, list) or len(value) != 2:
            continue
        library, cls = value
        if not isinstance(library, str) or not isinstance(cls, str):
            continue  # [null, null]: an optional component left out
        if library in PIPELINE_SUBPACKAGES:
            continue  # diffusers looks these up in its own pipelines package first
        # a `<component>/<library>.py` wins over importing the library, even diffusers'
        file = _local_py(folder, component, library)
        if file is None and library in KNOWN_LIBRARIES:
            continue
        loads.append(
            _Load(
                f"model_index.json component '{component}' loads {cls} from '{library}'"
                + ("" if file else ", which is not a known library"),
                file,
                cls,
                {"key": component, "library": library, "class": cls},
                f"the repository ({component}/{library}.py) or an installed module",
                library in KNOWN_LIBRARIES,
            )
        )
    classes: dict[str, set[str]] = {}
    for load in loads:
        if load.file is not None:
            classes.setdefault(load.file, set()).add(load.cls)
    read: dict[str, str | None] = {}  # file -> what it does: at most _MAX_ANALYSED per index
    if classes:
        from .python_scanner import file_behaviour_summary

        for file in list(classes)[:_MAX_ANALYSED]:
            read[file] = file_behaviour_summary(file, frozenset(classes[file]))
    for load in loads:
        _report(scanner, path, result, load, read)


def _local_py(folder: str, component: str, module: str) -> str | None:
    """`folder/component/module.py` (diffusers joins the names as given, so a library like
    `../shared/unet` is a path) when it stays inside the repository and the file is there."""
    if not module or "\x00" in module or "\\" in module or os.path.isabs(module):
        return None
    if component and not _plain_name(component):
        return None
    root = os.path.normpath(folder)
    file = os.path.normpath(os.path.join(root, component, module + ".py"))
    if not file.startswith(root.rstrip(os.sep) + os.sep):
        return None
    return file if os.path.isfile(file) else None


def _plain_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name


def _report(
    scanner: BaseScanner,
    path: str,
    result: ScanResult,
    load: _Load,
    read: dict[str, str | None],
) -> None:
    message, file, details = load.message, load.file, load.details
    if file is None:
        result.add_issue(
            f"{message}: custom code fetched from {load.remote} at load",
            severity=IssueSeverity.WARNING,
            location=scanner.location(path),
            details=details,
            why="DiffusionPipeline.from_pretrained imports this code to build the pipeline; "
            "its authors run what they like on the loading machine.",
            rule=JSON_REMOTE_CODE,
        )
        return
    shown = os.path.relpath(file, os.path.dirname(path)).replace(os.sep, "/")
    does = read.get(file)  # None: not read (past the bound, or not whole)
    result.add_issue(
        f"{message}: Python shipped in the repository ({shown}) runs at load"
        + (f"; it {does}" if does else ""),
        severity=IssueSeverity.WARNING
        if does == "" and not load.shadows
        else IssueSeverity.CRITICAL,
        location=scanner.location(path),
        details={**details, "file": shown},
        why="DiffusionPipeline.from_pretrained imports this file and builds the class from it: "
        "its module-level code and the class's constructor run on the loading machine.",
        rule=JSON_REMOTE_CODE,
    )
