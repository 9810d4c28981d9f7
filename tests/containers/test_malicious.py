"""Payload pickles hidden in every container a loader would still open: each must be CRITICAL.

Samples are built from opcode bytes or `pickle.dumps` of objects with a custom `__reduce__`
and packed with the real archive libraries or byte by byte; none is ever loaded.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import pickle
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from modelaudit.rules import containers as crules
from tests.containers._container_corpus import (
    JOBLIB_COMPRESSORS,
    Evil,
    Member,
    criticals,
    eval_pickle,
    legacy_tar,
    npy_bytes,
    payload,
    raw_zip,
    rules_of,
    scan,
    split_pickles,
    tar_bytes,
    two_directory_zip,
    zip64_split_end,
    zip_members,
)

Builder = Callable[[Path, dict[str, Path]], bytes]
SAMPLES: dict[str, tuple[str, Builder]] = {}


def sample(name: str, filename: str) -> Callable[[Builder], Builder]:
    def register(fn: Builder) -> Builder:
        SAMPLES[name] = (filename, fn)
        return fn

    return register


def _torch_members(legit: dict[str, Path]) -> list[Member]:
    return zip_members(str(legit["state_dict.pt"]))


def _replace(members: list[Member], suffix: str, data: bytes, **kw: object) -> list[Member]:
    out = []
    for m in members:
        if m.name.endswith(suffix):
            m = Member(m.name, data, **kw)  # type: ignore[arg-type]
        out.append(m)
    return out


def _evil_torch_zip(legit: dict[str, Path]) -> bytes:
    return raw_zip(_replace(_torch_members(legit), "/data.pkl", payload(2)))


# -- PyTorch zips


@sample("torch_data_pkl", "model.pt")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    return _evil_torch_zip(legit)


@sample("torch_extra_pkl_member", "model.pth")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    return raw_zip([*_torch_members(legit), Member("state_dict/extra/hooks.pkl", payload(4))])


@sample("torch_renamed_folder", "weights.bin")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    members = [
        Member("totally_not_a_model/" + m.name.split("/", 1)[1], m.data)
        for m in _torch_members(legit)
    ]
    return raw_zip(_replace(members, "/data.pkl", payload(3)))


@sample("torch_duplicate_evil_last", "dup_last.pt")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    return raw_zip([*_torch_members(legit), Member("state_dict/data.pkl", payload(2))])


@sample("torch_duplicate_evil_first", "dup_first.pt")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    return raw_zip([Member("state_dict/data.pkl", payload(2)), *_torch_members(legit)])


@sample("torch_bad_crc", "bad_crc.pt")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    return raw_zip(_replace(_torch_members(legit), "/data.pkl", payload(2), crc=0xDEADBEEF))


@sample("torch_name_mismatch", "mismatch.pt")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    return raw_zip(
        _replace(_torch_members(legit), "/data.pkl", payload(2), local_name="state_dict/readme.txt")
    )


@sample("torch_odd_flags", "flags.pt")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    return raw_zip(_replace(_torch_members(legit), "/data.pkl", payload(2), flags=0x0806))


@sample("torch_protocol0_data_pkl", "proto0.pt")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    return raw_zip(_replace(_torch_members(legit), "/data.pkl", payload(0)))


@sample("torch_protocol0_unnamed_member", "proto0_member.pt")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    return raw_zip([*_torch_members(legit), Member("state_dict/extra_state", payload(0))])


@sample("torch_large_protocol0_member", "proto0_large.pt")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    big = pickle.dumps(["x" * 6000, Evil()], protocol=0)
    assert big[:1] == b"(" and len(big) > 4096
    return raw_zip([*_torch_members(legit), Member("state_dict/extra_state_big", big)])


@sample("torch_second_central_directory", "shifted.pt")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    benign = pickle.dumps({"w": 1}, protocol=2)
    return two_directory_zip("archive/data.pkl", payload(2), benign)


@sample("torch_deflated_data_pkl", "deflated.pt")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    return raw_zip(_replace(_torch_members(legit), "/data.pkl", payload(2), method=8))


@sample("torch_uppercase_name", "upper.pt")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    members = [Member(m.name.upper(), m.data) for m in _torch_members(legit)]
    return raw_zip(_replace(members, "/DATA.PKL", payload(2)))


# -- legacy torch.save (stacked pickles) and legacy tar


def _legacy_with(legit: dict[str, Path], index: int, evil: bytes) -> bytes:
    parts, rest = split_pickles(legit["legacy.pt"].read_bytes(), 5)
    parts[index] = evil
    return b"".join(parts) + rest


for _i, _label in enumerate(["magic", "protocol", "sys_info", "main", "storage_keys"]):

    @sample(f"legacy_stacked_{_label}", f"legacy_{_label}.pt")
    def _(root: Path, legit: dict[str, Path], _i: int = _i) -> bytes:
        return _legacy_with(legit, _i, payload(2))


@sample("legacy_magic_computed_by_reduce", "legacy_reduce.pt")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    return _legacy_with(legit, 0, eval_pickle("0x1950a86a20f9469cfc6c"))


@sample("legacy_tar_pickle", "legacy_tar.pt")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    return legacy_tar(pickle_member=payload(2))


@sample("legacy_tar_sys_info", "legacy_tar_info.pt")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    return legacy_tar(sys_info=payload(2))


@sample("legacy_tar_storages", "legacy_tar_storages.pt")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    return legacy_tar(storages_count=payload(2))


@sample("legacy_tar_tensor_record", "legacy_tar_tensors.pt")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    return legacy_tar(tensor_args=payload(2))


# -- joblib and single-stream compression


def _joblib(comp: str) -> Builder:
    def build(root: Path, legit: dict[str, Path]) -> bytes:
        import joblib

        out = root / f"evil_{comp}.joblib"
        joblib.dump({"model": Evil()}, out, compress=(comp, 3))
        return out.read_bytes()

    return build


for _comp in JOBLIB_COMPRESSORS:
    sample(f"joblib_{_comp}", f"evil.{_comp}.joblib")(_joblib(_comp))


@sample("pkl_gz", "model.pkl.gz")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    return gzip.compress(payload(2))


@sample("pkl_bz2", "model.pkl.bz2")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    return bz2.compress(payload(4))


@sample("pkl_xz", "model.pkl.xz")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    return lzma.compress(payload(2))


@sample("pkl_zlib", "model.pkl.z")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    return zlib.compress(payload(2))


@sample("gzip_two_members", "model.bin")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    return gzip.compress(pickle.dumps({"ok": 1}, protocol=2)) + gzip.compress(payload(2))


@sample("joblib_lz4_after_skippable_frame", "model.joblib")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    """LZ4FrameFile (joblib's reader) goes on past a skippable frame to the next frame."""
    import lz4.frame

    skippable = struct.pack("<II", 0x184D2A50, 4) + b"skip"
    return lz4.frame.compress(b"") + skippable + lz4.frame.compress(payload(2))


@sample("joblib_old_zfile", "old.joblib")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    data = payload(2)
    return b"ZF" + hex(len(data)).encode().ljust(len(hex(2**64))) + zlib.compress(data)


# -- NumPy


@sample("npy_object_array", "weights.npy")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    return npy_bytes("|O", (1,), payload(2))


@sample("npy_renamed", "embeddings.dat")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    return npy_bytes("|O", (2,), payload(3))


@sample("npz_object_member", "arrays.npz")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    return raw_zip(
        [
            Member("a.npy", legit["array.npy"].read_bytes()),
            Member("b.npy", npy_bytes("|O", (1,), payload(2)), method=8),
        ]
    )


@sample("npz_pickle_member", "arrays2.npz")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    return raw_zip(
        [Member("a.npy", legit["array.npy"].read_bytes()), Member("extra.pkl", payload(2))]
    )


@sample("npz_zip64_end_zipfile_reads", "split_end.npz")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    array = legit["array.npy"].read_bytes()
    evil = npy_bytes("|O", (1,), payload(2))
    return zip64_split_end([Member("a.npy", array)], [Member("a.npy", evil)])


# -- archives


def _zip_bytes(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


@sample("zip_member", "bundle.zip")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    return _zip_bytes([("README.md", b"hi"), ("model/evil.pkl", payload(2))])


@sample("zip_in_zip", "outer.zip")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    inner = _zip_bytes([("evil.pkl", payload(2))])
    return _zip_bytes([("inner/inner.zip", inner)])


@sample("zip_with_torch_zip", "checkpoints.zip")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    return _zip_bytes([("ckpt/model.pt", _evil_torch_zip(legit))])


@sample("tar_gz", "model.tar.gz")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    return tar_bytes([("model/config.json", b"{}"), ("model/model.pkl", payload(2))], "w:gz")


@sample("tgz_torch", "model.tgz")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    return tar_bytes([("model.pt", _evil_torch_zip(legit))], "w:gz")


@sample("tar_bz2", "model.tar.bz2")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    return tar_bytes([("model.pkl", payload(2))], "w:bz2")


@sample("tar_plain", "model.tar")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    return tar_bytes([("weights/model.bin", payload(4))])


@sample("seven_zip", "model.7z")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    import py7zr

    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as archive:
        archive.writestr(b"# model card", "README.md")
        archive.writestr(payload(2), "model.pkl")
    return buf.getvalue()


@sample("torchserve_mar", "model.mar")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    manifest = b'{"model": {"modelName": "m", "serializedFile": "model.pt"}}'
    return _zip_bytes([("MAR-INF/MANIFEST.json", manifest), ("model.pt", _evil_torch_zip(legit))])


@sample("nemo_tar_gz", "model.nemo")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    return tar_bytes(
        [
            ("./model_config.yaml", b"name: asr\n"),
            ("./model_weights.ckpt", _evil_torch_zip(legit)),
        ],
        "w:gz",
    )


@sample("gz_of_tar_of_zip", "deep.tar.gz")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    inner = _zip_bytes([("m/evil.pkl", payload(2))])
    return tar_bytes([("bundle.zip", inner)], "w:gz")


@sample("polyglot_pickle_then_zip", "poly.pkl")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    benign = pickle.dumps({"weights": [1, 2, 3]}, protocol=2)
    return benign + _zip_bytes([("evil.pkl", payload(2))])


@sample("polyglot_npy_then_torch_zip", "poly.npy")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    return legit["array.npy"].read_bytes() + _evil_torch_zip(legit)


@sample("torch_zip_after_junk_prefix", "weights")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    return b"\x00JUNKHEADER" * 20 + _evil_torch_zip(legit)


@sample("zip_traversal_with_payload", "traversal.zip")
def _(root: Path, legit: dict[str, Path]) -> bytes:
    return raw_zip([Member("../../evil.pkl", payload(2))])


@pytest.fixture(scope="session")
def malicious(tmp_path_factory: pytest.TempPathFactory, legit: dict[str, Path]) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("malicious")
    work = tmp_path_factory.mktemp("work")
    out: dict[str, Path] = {}
    for name, (filename, build) in SAMPLES.items():
        folder = root / name
        folder.mkdir()
        out[name] = folder / filename
        out[name].write_bytes(build(work, legit))
    return out


def test_corpus_is_large_enough() -> None:
    assert len(SAMPLES) >= 35


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_payload_is_critical(malicious: dict[str, Path], name: str) -> None:
    result = scan(malicious[name])
    assert criticals(result), [i.to_dict() for i in result.issues]


@pytest.mark.parametrize(
    "name",
    [
        "torch_duplicate_evil_last",
        "torch_duplicate_evil_first",
        "torch_bad_crc",
        "torch_name_mismatch",
        "npz_zip64_end_zipfile_reads",
    ],
)
def test_zip_disagreements_are_reported(malicious: dict[str, Path], name: str) -> None:
    assert crules.ZIP_ANOMALY in rules_of(scan(malicious[name]))


def test_finding_names_archive_member(malicious: dict[str, Path]) -> None:
    result = scan(malicious["zip_in_zip"])
    locations = [i.location or "" for i in criticals_issues(result)]
    assert any("outer.zip:inner/inner.zip:evil.pkl" in loc for loc in locations), locations


def test_polyglot_is_reported(malicious: dict[str, Path]) -> None:
    assert crules.POLYGLOT in rules_of(scan(malicious["polyglot_pickle_then_zip"]))


def test_legacy_tar_is_recognised(malicious: dict[str, Path]) -> None:
    assert crules.LEGACY_TORCH_TAR in rules_of(scan(malicious["legacy_tar_pickle"]))


def criticals_issues(result):  # type: ignore[no-untyped-def]
    from modelaudit.findings import IssueSeverity

    return [i for i in result.issues if i.severity is IssueSeverity.CRITICAL]


def test_tarfile_samples_are_real_tars(malicious: dict[str, Path]) -> None:
    with tarfile.open(malicious["nemo_tar_gz"]) as tf:
        assert "./model_weights.ckpt" in tf.getnames()


def test_whole_corpus_through_the_public_api(malicious: dict[str, Path]) -> None:
    """End to end: directory walk, worker processes, JSON report; every sample is flagged."""
    from modelaudit.core import scan_model_directory_or_file

    root = next(iter(malicious.values())).parent.parent
    report = scan_model_directory_or_file(str(root), timeout=300)
    flagged = {
        Path(str(issue["location"]).split(":", 1)[0].split(" (pos")[0]).parent.name
        for issue in report["issues"]
        if issue["severity"] == "critical"
    }
    assert set(SAMPLES) <= flagged, sorted(set(SAMPLES) - flagged)
    assert report["files_scanned"] >= len(SAMPLES)
