"""The environment an MLflow model asks for: `requirements.txt`, `constraints.txt`,
`python_env.yaml` and `conda.yaml`.

MLflow restores that environment before it loads the model when asked to
(`mlflow models serve` / `predict` with `--env-manager virtualenv|conda|uv`,
`mlflow.pyfunc.spark_udf(env_manager=...)`, `mlflow.pyfunc.load_model` after
`mlflow.pyfunc.get_model_dependencies` and `pip install -r`): pip or conda then installs every
requirement, and a package fetched from a URL, a VCS checkout, a local path or an index the
model's author chose runs its build and install code on that machine. Packages named for the
default index (the pinned lists MLflow writes) stay quiet.

In an MLflow model directory (an `MLmodel` beside the file, a `models:/` or `runs:/` URI, or a
file in MLflow's own shape: `python_env.yaml`, a conda environment named `mlflow-env`, a
`requirements.txt` whose first requirement pins MLflow) such a requirement is a WARNING; any
other such file is only installed by hand, so it is an INFO. The shape is what makes a remote
target (a Hub repository, a bucket, a URL) judged as its local copy is: its spooled files have
no `MLmodel` beside them.
"""

from __future__ import annotations

import os
from typing import Any, Final

from ...formats import Format
from ...formats.requirements import (
    MAX_SHOWN,
    SOURCE_WHERE,
    ExternalSource,
    external_sources,
    judge_line,
    location_kind,
    pins_mlflow_first,
)
from ...rules.text import MLFLOW_ENV_SOURCE
from ..base import BaseScanner, IssueSeverity, ScanResult
from .yaml_document import MAX_DOCUMENT_BYTES, vetted_document

MAX_TEXT_BYTES: Final = 4 * 1024 * 1024
_MLFLOW_URIS: Final = ("models:/", "runs:/", "mlflow-artifacts:")


class MlflowEnvironmentScanner(BaseScanner):
    name = "mlflow_env"
    description = "MLflow model environments: requirements that pip or conda fetch off the index"
    formats = (Format.MLFLOW_ENV,)

    def scan(self, path: str) -> ScanResult:
        base = os.path.basename(self.display_path or path).lower()
        if base.endswith((".yaml", ".yml")):
            result, doc = vetted_document(self, path)
            if doc is None and self.file_size(path) > MAX_DOCUMENT_BYTES:
                result.mark_inconclusive(
                    f"environment file larger than {MAX_DOCUMENT_BYTES} bytes not read"
                )
            sources = _yaml_sources(base, doc)
            mlflow_shaped = _mlflow_shaped(base, doc)
        else:
            result = self._create_result()
            size = self.file_size(path)
            with open(path, "rb") as f:
                data = f.read(MAX_TEXT_BYTES)
            result.bytes_scanned = len(data)
            if size > MAX_TEXT_BYTES:
                result.mark_inconclusive(f"requirements file larger than {MAX_TEXT_BYTES} bytes")
            text = data.decode("utf-8", "replace")
            sources = external_sources(text)
            mlflow_shaped = base == "requirements.txt" and pins_mlflow_first(text)
        in_model = mlflow_shaped or self._beside_mlmodel(path)
        for source in sources:
            self._report(result, path, source, in_model)
        result.metadata["mlflow_model_environment"] = in_model
        result.finish()
        return result

    def _beside_mlmodel(self, path: str) -> bool:
        shown = self.display_path or path
        if shown.startswith(_MLFLOW_URIS):
            return True
        return os.path.isfile(os.path.join(os.path.dirname(os.path.abspath(path)), "MLmodel"))

    def _report(
        self, result: ScanResult, path: str, source: ExternalSource, in_model: bool
    ) -> None:
        where = SOURCE_WHERE[source.kind]
        lead = (
            "MLflow environment restoration would install from"
            if in_model
            else "Installing these requirements fetches from"
        )
        message = f"{lead} {where}: '{source.text}'"
        result.add_issue(
            message,
            severity=IssueSeverity.WARNING if in_model else IssueSeverity.INFO,
            location=self.location(path),
            details={
                "requirement": source.text,
                "source": source.kind,
                "target": source.target[:MAX_SHOWN],
                "line": source.line,
                "mlflow_model": in_model,
            },
            why="pip and conda run a package's build and install code; a requirement taken "
            "from a URL, a checkout, a path or another index is whatever its author put there, "
            "not a release of the named package.",
            rule=MLFLOW_ENV_SOURCE,
        )


def _mlflow_shaped(base: str, doc: Any) -> bool:
    """`python_env.yaml` is MLflow's own format; MLflow names its conda environments
    `mlflow-env`."""
    if not isinstance(doc, dict):
        return False
    if base == "python_env.yaml":
        return "python" in doc and set(doc) <= {"python", "build_dependencies", "dependencies"}
    return doc.get("name") == "mlflow-env"


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _pip_lines(lines: list[str]) -> list[ExternalSource]:
    found = []
    for line in lines:
        source = judge_line(line.strip())
        if source is not None:
            found.append(source)
    return found


def _yaml_sources(base: str, doc: Any) -> list[ExternalSource]:
    if not isinstance(doc, dict):
        return []
    if base == "python_env.yaml":
        return _pip_lines(
            _strings(doc.get("build_dependencies")) + _strings(doc.get("dependencies"))
        )
    found = []
    for channel in _strings(doc.get("channels")):
        if _channel_off_site(channel.strip()):
            found.append(ExternalSource(0, channel[:MAX_SHOWN], "index", channel.strip()))
    deps = doc.get("dependencies")
    for dep in deps if isinstance(deps, list) else []:
        if isinstance(dep, dict):
            found += _pip_lines(_strings(dep.get("pip")))
        elif isinstance(dep, str):
            found += _conda_spec(dep.strip())
    return found


def _channel_off_site(channel: str) -> bool:
    """A channel given as a URL or a path; named channels (`conda-forge`,
    `conda-forge/label/dev`) live on the default channel host."""
    if location_kind(channel) in ("url", "vcs"):
        return True
    return channel.startswith((".", "/", "~", "\\")) or channel[1:3] in (":\\", ":/")


def _conda_spec(spec: str) -> list[ExternalSource]:
    """A conda dependency: `numpy=2.4`, `conda-forge::numpy`, an explicit package URL or path,
    or `CHANNEL_URL::name`."""
    if not spec:
        return []
    head = spec.split()[0]
    channel, sep, _ = head.rpartition("::")
    if sep and _channel_off_site(channel):
        return [ExternalSource(0, spec[:MAX_SHOWN], "index", channel)]
    kind = location_kind(head)
    return [ExternalSource(0, spec[:MAX_SHOWN], kind, head)] if kind else []
