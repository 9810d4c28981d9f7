"""Inputs the atheris harness (tests/fuzz) found crashing a scanner, kept as regressions."""

from __future__ import annotations

import base64

import pytest

from modelaudit.config import ScanConfig
from modelaudit.engine import dispatch
from modelaudit.findings import FileStatus

#: file name (its extension routes it) -> base64 of the input that crashed
FOUND = {
    "keras-269be7510b0e.keras": (
        "UEsDBBQAAAAAAC2aeV2gcGn8oQAAAKEAAAALAAAAY29uZmlnLmpzb257Im1vZHVsZSI6ICJrZXJhcyIsICJjbGFz"
        "c19uYW1lIjogIlNlcXVlbnRpYWwiLCAiY29uZmlnIjogeyJuYW1lIjogInNlcSIsICJsYXllcnMiOiBbeyJtb2R1"
        "bGUiOiAia2VyYXMubGF5ZXJzIiwgImNsYXNzX25hbWUiOiAiRGVuc2UiLCAiY29uZmlnIjogeyJ1bml0cyI6IDJ9"
        "fV19fVBLAwQUAAAAAAAtmnld1HlxcT8AAAA/AAAADQAAAG1ldGFkYXRhLmpzb257ImtlcmFzX3ZlcnNpb24iOiAi"
        "My4wLjAiLCAiZGF0ZV9zYXZlZCI6ICIyMDI0LTAxLTAxQDAwOjAwOjAwIn1QSwMEFAAAAAAALZp5XQAAAAAAAAAA"
        "AAAAABAAAABtb2RlbC53ZWlnaHRzLmg1UEsBAhQDFAABAQAALZp5XaBwafyhAAAAoQAAAAsAAAAAAAAAAAAAAIAB"
        "AAAAAGNvbmZpZy5qc29uUEsBAhQDFAAAAAAALZp5XdR5cXE/AAAAPwAAAA0AAAAAAAAAAAAAAIABygAAAG1ldGFk"
        "YXRhLmpzb25QSwECFAMUAAAAAAAtmnldAAAAAAAAAAAAAAAAEAAAAAAAAAAAAAAAgAE0AQAAbW9kZWwud2VpZ2h0"
        "cy5oNVBLBQYAAAAAAwADALIAAABiAQAAAAA="
    ),
    "keras-324dbf00b2e8.keras": (
        "UAIAAAAAAAAAAC2aeV2gcGn8oQAAAKEAAAALAAAAY29uZmlnLmpzb257Im1vZHVsZSI6ICIDBBQAAAAAAC2aeV3U"
        "eXFxPwAAAD8AAAANAAAAbWV0YWRhdGEuanNvbnsia2VyYXNfdmVyc2lvbiI6ICIzLjAuMCIsICJkYXRlX3NhdmVk"
        "IjogIjIwMjQtMDEtMDFAMDA6MDA6MDAifVBLAwQUAAAAAAAtmnldAAAAAAAAAAAAAAAAEABtb2RlbC53ZWlnaHRz"
        "Lmg1UEsBAhQDFABlbC53ZWlnaHRzLmg1UEsBAhQDFAAAAAAALZp5XaBwafyhAAAAoQAAAAsAAAAAAAAAAAAAAIAB"
        "AAAAAGNvbmZpZy5qc29uUEsBAhQDFAAAAAAALZp5XdR5AIABygAAAG1ldGFkYXRhLmpzb25QSwECFAMUAAAAAAAt"
        "mnldAAAAAAAAAAAAAAAAEAAAAAAAAAAAAAAAgAE0AQAAbW9kZWwud2VpZ2h0cy5oNVBLBQYAAAAAAwADALIAAABi"
        "AQAAAAA="
    ),
    "keras-339343aeb2cb.keras": (
        "UEsDBBQAAAAAAC2aeV2gcGn8oQAAAKEAAAALAAAAY29uZmlnLmpzb257Im1vZHVsZSI6ICJrZXJhcyIsICJjI2Fz"
        "c19uYW1lIjogIlNlcXVlbnRpYWwiLCAiY29uZmlnIjogeyJuYW1lIjogInNlcSIsICJsYXllcnMiOiBbeyJtb2R1"
        "bGUiOiAia2VyYXMubGF5ZXJzIiwgImNsYXNzX25hbWUiOiAiRGVuc2UiLCAiY29uZmlnIjogeyJ1bml0cyI6IDJ9"
        "fV19fVBLAwQUAAAAAAAtmnld1HlxcT8AAAA/AAAADQAAAG1ldGFkYXRhLmpzb257ImtlcmFzX3ZlcnNpb24iOiAi"
        "My4wLjAiLCAiZGF0ZV9zYXZlZCI6ICIyMDI0LTAxLTAxQDAwOjAwOjAwIn1QSwMEFAAAAAAALZp5XQAAAAAAAAAA"
        "AAAAABAAAABtb2RlbC53ZWlnaHRzLmg1UEsBAhQDFAD/////////CaBwafyhAAAAoQAAAAsAAAAAAAAAAAAAAIAB"
        "AAAAAGNvbmZpZy5qc29uUEsBAhQDFAAAAAAALZp5XdR5cXE/AAAAPwAAAA0AAAAAAAAAAAAAAIABygAAAG1ldGFk"
        "YXRhLmpzb25QSwECFAMUAAAAAAAtmnldAAAAAAAAAAAAAAAAAAAALZp5XaBwafyBAAAAoQAAAAsAAAAAAADSAAAA"
        "AAAAAFBLBQYAAAAAAwADALIAAABiAQAAAAA="
    ),
    "keras-45a516eac78e.keras": (
        "UAIAAAAAAAAAAC2aeV2gcGn8oQAAAKEAAAALAABlZCI6ICIyMDI0LTAxLzAwQDAwOjAwOjAwIn1QSwMEFAAAAAAA"
        "LZp5XQAAAAAAAAAAAACdAAAQAAAAbW9kZWwud2VpZ2h0cy5oNVBLAQIUA5mZmZkAAC2aeV2gcGn8oQAAAKEAAAAL"
        "AAAAAAAAAAAAAACAAQAAAABjb25maWcuanNvblBLAQIUAxQAAAAAAC2aeV3UeXFxPwAAAD8AAAANAAAAAAAAAAAA"
        "AACAAcoAAABtZXRhZGF0YS5qc29uUEsBAhQDFAAAAAAALZp5XQAAAAAAAAAAAAAAABAAAAAAAAAAAAAAAIABMwEA"
        "AG1vZGVsLndlaWdodHMuaDVQSwUGAAAAAAMAAwCyAAAAYgEAAAAA"
    ),
    "keras-7a8d0720b675.keras": (
        "UEsDBBQAAAAAAC2aeV2gcGn8oQAAAKEAAAALAAAAY29uZmlnLmpzb257Im1vZHVsZSI6ICJrZXJhcyIsICJjbGFz"
        "c19uYW1lIjogIlNlcXVlbnRpYWwiLCAiY29uZmlnIjogeyJuYW1lIjogInNlcSIsICJsYXllcnMiOiBbeyJtb2R1"
        "bGUiOiAia2VyYXMubGF5ZXJzIiwgImNsYXNzX25hbWUiOiAiRGVuc2UiLCAiY29uZmlnIjogeyJ1bml0cyI6IDJ9"
        "fV19fVBLAwQUAAAAAAAtmnld1HlxcT8AAAA/AAAADQAAAG1ldGFkYXRhLmpzb257ImtlcmFzX3ZlcnNpb24iOiAi"
        "My4wLjAiLCAiZGF0ZV9zYXZlZCI6ICIyMDI0LTAxLTAxQDAwOjAwOjAwIn1QSwMEFAAAAAAALZp5XQAAAAAAAAAA"
        "AAAAABAAAABtb2RlbC53ZWlnaHRzLmg1UEsBAhQDFAAAAAAALZp5XaBwafyhAAAAoQAAAAsAAAAAAAAAAAAAAIAB"
        "AAAAAGNvbmZpZy5qc29uUEsBAhQDFAAAAAAtmgB5XdR5cXE/AAAAPwAAAA0AAAAAAAAAAAAAAIABygAAAG1ldGFk"
        "YXRhLmpzb25QSwECFAMUAAAAAAAtmnldAAAAAAAAAAAAAAAAEAAAAAAAAAAAAAAAgAEzAQAAbW9kZWwud2UNgqRu"
        "YW0DNVBLBQYAAAAAAwADALIAAABiAQAAAAA="
    ),
    "zip-version-21.zip": (
        "UEsDBC0AAAAAAAAAIQD3RBLq//////////8FABQAYS5ucHkBABAAmAAAAAAAAACYAAAAAAAAAJNOVU1QWQEAdgB7"
        "J2Rlc2NyJzogJzxpNicsICdmb3J0cmFuX29yZGVyJzogRmFsc2UsICdzaGFwZSc6ICgzLCksIH0gICAgICAgICAg"
        "ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAKAAAACgAAAAAAAPA/AAAA"
        "AAAA8D8AAAAAAADwPwAAAAAAAPA/UEsBAi390v/2AAAAAAAhAPdAEuqYAAAAmAAAAAUABAAAAAAAAAAAAIABAAAA"
        "AGEubnB5UEsBAi0DLQAAAAAAAAAhAGbl+x6gAAAAoAAAAAUAAAAAAAAAAAAAAIABzwAAAGIubnB5UEsFBgAAAAAC"
        "AAIAZgAAAKYBAAAAAA=="
    ),
}


#: config.json flagged encrypted in the central directory only, its bytes in the clear: read
#: (and the flag reported) as readers that ignore the flag read it.
READ_DESPITE_FLAG = {"keras-269be7510b0e.keras"}


@pytest.mark.parametrize("name", sorted(FOUND))
def test_fuzz_finding_gives_a_result(tmp_path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(base64.b64decode(FOUND[name]))
    result = dispatch.scan_path(str(path), ScanConfig().scanner_config(), explicit=True)
    if name in READ_DESPITE_FLAG:
        assert result.status is FileStatus.COMPLETE, result.status_reason
        assert any("flagged encrypted" in i.message for i in result.issues)
    else:
        assert result.status is FileStatus.INCONCLUSIVE, result.status_reason
    assert " scanner failed: " not in (result.status_reason or "")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (
            "requirements.txt",
            "mlflow==2.9.0\n; python_version > '3.8'\ngit+https://h.invalid/x.git\n",
        ),
        (
            "conda.yaml",
            "name: e\ndependencies:\n  - pip:\n    - ';x'\n    - git+https://h.invalid/x.git\n",
        ),
    ],
)
def test_a_requirement_that_is_only_a_marker(tmp_path, name: str, text: str) -> None:
    """Found by the harness: a line holding only an environment marker raised IndexError
    (the file ended 'mlflow_env scanner failed'); the lines after it are still judged."""
    path = tmp_path / name
    path.write_text(text)
    result = dispatch.scan_path(str(path), ScanConfig().scanner_config(), explicit=True)
    assert result.status is FileStatus.COMPLETE, result.status_reason
    assert any("h.invalid" in i.message for i in result.issues), result.issues
