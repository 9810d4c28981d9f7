"""Parquet and Arrow IPC (Feather v2, `.arrow` files and streams, HF `datasets` caches): the
schema only, for pickled Python extension types (CVE-2023-47248).

pyarrow before 14.0.1 registers `arrow.py_extension_type` and `pickle.loads` the
`ARROW:extension:metadata` of any field declaring it, while it builds the schema of a file it
opens: a data set shipped beside a model runs code when `datasets`, pandas or pyarrow reads it.
The schema is all that matters, so only it is read (`formats/arrow_schema.py`: an IPC file's
first message and footer, a stream's first message, a Parquet footer's `ARROW:schema`); rows
never are. Each such metadata value is judged as the pickle it is.
"""

from __future__ import annotations

from typing import Final

from ...findings import FileStatus
from ...formats import Format
from ...formats.arrow_schema import ArrowField, ArrowSchemaError, read_schemas
from ...formats.parquet_footer import ParquetError
from ...formats.view import BufferView, FileView
from ...rules.data import ARROW_PICKLED_EXTENSION
from ..base import BaseScanner, IssueSeverity, ScanResult
from ..nested_bytes import scan_nested_bytes

_LOUD: Final = (IssueSeverity.WARNING, IssueSeverity.CRITICAL)
EXTENSION_NAME: Final = b"ARROW:extension:name"
EXTENSION_METADATA: Final = b"ARROW:extension:metadata"
PICKLED_EXTENSION: Final = b"arrow.py_extension_type"


class ArrowScanner(BaseScanner):
    name = "arrow"
    description = "Reads Parquet and Arrow IPC schemas only; pickled extension types"
    supported_extensions = [".parquet", ".arrow", ".arrows", ".feather"]
    formats = (Format.PARQUET, Format.ARROW_IPC)

    def scan(self, path: str) -> ScanResult:
        result = self._create_result()
        data = self.whole_file(path)
        try:
            if data is not None:
                schemas = read_schemas(BufferView(data))
            else:
                with open(path, "rb") as f:
                    schemas = read_schemas(FileView(f, self.file_size(path)))
        except (ArrowSchemaError, ParquetError) as exc:
            self.mark_malformed(result, path, "Arrow schema", exc)
            result.finish()
            return result
        seen: set[tuple[str, bytes]] = set()
        fields = 0
        for where, schema in schemas:
            fields += len(schema.fields)
            for field in schema.fields:
                self._field(where, field, seen, path, result)
        result.metadata["format_details"] = {"schemas": len(schemas), "fields": fields}
        result.finish()
        return result

    def _field(
        self,
        where: str,
        field: ArrowField,
        seen: set[tuple[str, bytes]],
        path: str,
        result: ScanResult,
    ) -> None:
        # every name and every metadata value: which of repeated keys a reader takes is its own
        if not any(k == EXTENSION_NAME and v == PICKLED_EXTENSION for k, v in field.metadata):
            return
        values = [v for k, v in field.metadata if k == EXTENSION_METADATA] or [b""]
        for value in values:
            if (field.path, value) in seen:
                continue  # an IPC file's footer repeats its stream's schema
            seen.add((field.path, value))
            member = f"{where}/{field.path}"
            judged = None
            if value:
                shown = self.location(path, f"{member}@ARROW:extension:metadata")
                judged = scan_nested_bytes(self.ctx, value, shown, fmt=Format.PICKLE)
            # (`datasets` before 2.15 wrote its Array2D-5D features so: a pickle that only
            # rebuilds classes the pickle policy knows is what that reading runs, and says so)
            harmless = (
                judged is not None
                and judged.status is FileStatus.COMPLETE
                and not any(i.severity in _LOUD for i in judged.issues)
            )
            result.add_issue(
                f"Field '{field.path}' is an arrow.py_extension_type: pyarrow before 14.0.1 "
                f"unpickles its {len(value)}-byte ARROW:extension:metadata on read"
                + (", a pickle that rebuilds only known classes" if harmless else ""),
                severity=IssueSeverity.INFO if harmless else IssueSeverity.WARNING,
                location=self.location(path, member),
                details={"field": field.path, "schema": where, "metadata_bytes": len(value)},
                why="Opening the file with pyarrow < 14.0.1 (datasets, pandas.read_parquet, "
                "read_feather) runs whatever the pickle imports (CVE-2023-47248).",
                rule=ARROW_PICKLED_EXTENSION,
            )
            if judged is not None:
                result.merge(judged)
