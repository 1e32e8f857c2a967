"""Reproducible builds and the recorded environment (issue 9, points 2 and 3)."""

from __future__ import annotations

import collections
import hashlib
import io
import json
import os
import pickle
import platform
import subprocess
import sys
import textwrap
import warnings
import zipfile

import pytest

import hermetic
from hermetic import (
    EnvironmentMismatchError,
    EnvironmentMismatchWarning,
    PackageExporter,
    PackageImporter,
)
from hermetic._archive_reader import ArchiveReader
from hermetic._archive_writer import ArchiveWriter
from hermetic._format import ENVIRONMENT_RECORD, MANIFEST_RECORD
from hermetic._pickler import _sorted_items

BUILD = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[2])
    import numpy
    from hermetic import PackageExporter
    import reprpkg.model as model
    obj = {
        "tags": {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta"},
        "frozen": frozenset({"x", "y", "z", "w", "v"}),
        "config": {"b": 2, "a": [1.5, "x"]},
        "bytes": {b"k1", b"k2", b"k3"},
        "array": numpy.arange(12, dtype=numpy.float32),
        "model": model.Model({"q", "r", "s", "t"}),
    }
    with PackageExporter(sys.argv[1]) as exporter:
        exporter.intern("reprpkg.**")
        exporter.save_pickle("obj", "p3.pkl", obj)
        exporter.save_pickle("obj", "p4.pkl", obj, pickle_protocol=4)
    """
)


def _build(target, source_root, seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    subprocess.run(
        [sys.executable, "-c", BUILD, str(target), str(source_root)],
        check=True,
        env=env,
        capture_output=True,
    )
    return hashlib.sha256(target.read_bytes()).hexdigest()


@pytest.fixture
def source_root(tmp_path):
    root = tmp_path / "src"
    (root / "reprpkg").mkdir(parents=True)
    (root / "reprpkg" / "__init__.py").write_text("")
    (root / "reprpkg" / "model.py").write_text(
        "import json\n\nclass Model:\n    def __init__(self, names):\n"
        "        self.names = names\n"
    )
    return root


def test_sets_of_strings_give_identical_archives_across_hash_seeds(
    tmp_path, source_root
):
    """Two builds with sets, frozensets, a dict, an array and a packaged module agree.

    Each build runs in its own process with its own PYTHONHASHSEED, which changes
    the iteration order of the sets of strings.
    """
    pytest.importorskip("numpy", reason="the sample holds a NumPy array")
    digests = set()
    for seed in ("0", "1", "12345"):
        (tmp_path / seed).mkdir()
        digests.add(_build(tmp_path / seed / "model.pt", source_root, seed))
    assert len(digests) == 1
    sys.path.insert(0, str(source_root))
    try:
        importer = PackageImporter(tmp_path / "0" / "model.pt")
        for record in ("p3.pkl", "p4.pkl"):
            loaded = importer.load_pickle("obj", record)
            assert loaded["tags"] == {
                "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta"
            }  # fmt: skip
            assert loaded["frozen"] == frozenset("xyzwv")
            assert type(loaded["frozen"]) is frozenset
            assert loaded["model"].names == {"q", "r", "s", "t"}
            assert loaded["array"].tolist() == list(range(12))
    finally:
        sys.path.remove(str(source_root))


def test_shared_and_nested_sets_keep_their_identity():
    """A set referenced twice is one set after loading; nesting survives sorting."""
    shared = {"b", "a"}
    obj = [shared, shared, frozenset({frozenset({"y", "x"})}), {1, "mixed"}]
    buffer = io.BytesIO()
    with PackageExporter(buffer) as exporter:
        for protocol in (3, 4):
            exporter.save_pickle("p", f"o{protocol}.pkl", obj, pickle_protocol=protocol)
    importer = PackageImporter(io.BytesIO(buffer.getvalue()))
    for protocol in (3, 4):
        loaded = importer.load_pickle("p", f"o{protocol}.pkl")
        assert loaded == obj
        assert loaded[0] is loaded[1]


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ({"b", "a", "c"}, ["a", "b", "c"]),
        ({b"b", b"a"}, [b"a", b"b"]),
        ({3, 1, 2}, [1, 2, 3]),
        ({2.5, 0.5}, [0.5, 2.5]),
        ({1, "a"}, None),  # mixed types: sorting could fail
        ({1, 2.5}, None),  # mixed numbers: left alone too
        ({float("nan"), 1.0}, None),  # NaN has no place in an order
        ({("a",), ("b",)}, None),  # tuples: left in hash order
        (set(), None),
    ],
)
def test_only_sets_of_one_sortable_type_are_sorted(items, expected):
    """Sorting is used only where it cannot change meaning or fail."""
    assert _sorted_items(items) == expected


def test_archives_have_no_timestamps():
    """Every ZIP entry carries the zero DOS date and time, so no clock leaks in."""
    buffer = io.BytesIO()
    with PackageExporter(buffer) as exporter:
        exporter.save_pickle("p", "o.pkl", {"a": {"x", "y"}})
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        assert {info.date_time for info in archive.infolist()} == {
            (1980, 0, 0, 0, 0, 0)
        }


# -- the recorded environment ----------------------------------------------------------


def _numpy_archive() -> bytes:
    numpy = pytest.importorskip("numpy", reason="the sample holds a NumPy array")
    buffer = io.BytesIO()
    with PackageExporter(buffer) as exporter:
        exporter.save_pickle("p", "a.pkl", numpy.arange(3))
        exporter.save_pickle("p", "d.pkl", collections.OrderedDict(a=1))
        exporter.save_text("p", "note.txt", "hi")
    return buffer.getvalue()


def _record_of(data: bytes) -> dict:
    with ArchiveReader(io.BytesIO(data)) as reader:
        return json.loads(reader.read(ENVIRONMENT_RECORD))


def _with_record(data: bytes, change) -> bytes:
    """Copy an archive, editing its environment record; a fresh manifest is written."""
    out = io.BytesIO()
    with ArchiveReader(io.BytesIO(data)) as reader:
        writer = ArchiveWriter(out)
        writer.archive_name = reader.archive_name
        with writer:
            for name in reader.record_names():
                if name == MANIFEST_RECORD:
                    continue
                payload = reader.read(name)
                if name == ENVIRONMENT_RECORD:
                    record = json.loads(payload)
                    change(record)
                    payload = json.dumps(record).encode()
                writer.write_record(name, payload)
    return out.getvalue()


def test_environment_record_names_python_platform_and_extern_versions():
    """The record is canonical JSON of the Python, platform and extern versions."""
    numpy = pytest.importorskip("numpy", reason="the sample holds a NumPy array")

    data = _numpy_archive()
    with ArchiveReader(io.BytesIO(data)) as reader:
        raw = reader.read(ENVIRONMENT_RECORD)
    record = json.loads(raw)
    assert (
        raw
        == (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode()
    )
    assert record["format"] == "hermetic-environment/1"
    assert record["python"] == {
        "implementation": sys.implementation.name,
        "version": platform.python_version(),
    }
    assert record["platform"] == {"machine": platform.machine(), "system": sys.platform}
    externs = record["externs"]
    assert externs["numpy"] == {"distributions": {"numpy": numpy.__version__}}
    assert externs["collections"] == {"stdlib": True}


def test_unknown_extern_is_recorded_as_null(tmp_path, monkeypatch):
    """An extern no installed distribution provides is recorded, unversioned."""
    (tmp_path / "loose_module_xyz.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    buffer = io.BytesIO()
    with PackageExporter(buffer) as exporter:
        exporter.extern("loose_module_xyz")
        exporter.save_source_string("user", "import loose_module_xyz\n")
    externs = _record_of(buffer.getvalue())["externs"]
    assert externs == {"loose_module_xyz": None}
    PackageImporter(io.BytesIO(buffer.getvalue()), environment="error")


def _older_numpy(record):
    record["externs"]["numpy"]["distributions"]["numpy"] = "0.0.1"


def _changes(record):
    _older_numpy(record)
    record["externs"]["gone"] = {"distributions": {"gone-dist": "1.2"}}
    record["python"]["version"] = "2.7.18"


def test_matching_environment_loads_silently():
    """The same machine's archive raises nothing, even with policy "error"."""
    data = _numpy_archive()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        PackageImporter(io.BytesIO(data))
        PackageImporter(io.BytesIO(data), environment="error")


def test_mismatch_warns_by_default_naming_both_versions():
    """A differing extern version, missing distribution and Python minor all warn."""
    numpy = pytest.importorskip("numpy", reason="the sample holds a NumPy array")

    data = _with_record(_numpy_archive(), _changes)
    with pytest.warns(EnvironmentMismatchWarning) as caught:
        importer = PackageImporter(io.BytesIO(data))
    message = str(caught[0].message)
    assert f"numpy 0.0.1 recorded, {numpy.__version__} installed" in message
    assert "gone-dist 1.2 recorded, not installed" in message
    assert f"Python 2.7.18 recorded, {platform.python_version()} installed" in message
    assert caught[0].filename == __file__  # blamed on the caller
    assert importer.load_pickle("p", "a.pkl").tolist() == [0, 1, 2]


def test_mismatch_raises_with_policy_error():
    """With environment="error" the mismatches are raised, by name and version."""
    numpy = pytest.importorskip("numpy", reason="the sample holds a NumPy array")

    data = _with_record(_numpy_archive(), _older_numpy)
    with pytest.raises(
        EnvironmentMismatchError, match=r"numpy 0\.0\.1 recorded"
    ) as info:
        PackageImporter(io.BytesIO(data), environment="error")
    assert info.value.mismatches == [("numpy", "0.0.1", numpy.__version__)]
    assert isinstance(info.value, hermetic.HermeticError)
    copy = pickle.loads(pickle.dumps(info.value))
    assert copy.mismatches == info.value.mismatches


def test_mismatch_passes_with_policy_ignore():
    """With environment="ignore" the record is not even read."""
    data = _with_record(_numpy_archive(), _changes)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        importer = PackageImporter(io.BytesIO(data), environment="ignore")
    assert importer.load_text("p", "note.txt") == "hi"


class _FakeDistribution:
    """Just enough of importlib.metadata.Distribution for the version lookup."""

    def __init__(self, metadata: str) -> None:
        self._metadata = metadata
        self.version = "from-email-parser"

    def read_text(self, name: str) -> str | None:
        return self._metadata if name == "METADATA" else None


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ("Metadata-Version: 2.1\nName: demo\nVersion: 1.2.3\n\nVersion: 9\n", "1.2.3"),
        ("Name: demo\r\nversion :  4.5+local \r\n", "4.5+local"),
        ("Name: demo\n\nVersion: 9 (in the description)\n", "from-email-parser"),
        ("Name: demo\r\n\r\nVersion: 9\r\n", "from-email-parser"),
    ],
)
def test_installed_version_reads_the_header_only(metadata, expected):
    """The Version header counts; a "Version:" line in the description does not."""
    from hermetic._environment import _version_header

    dist = _FakeDistribution(metadata)
    assert (_version_header(dist) or dist.version) == expected  # type: ignore[arg-type]


def test_unknown_policy_is_refused():
    """A policy other than warn, error or ignore is a ValueError."""
    with pytest.raises(ValueError, match="environment must be one of"):
        PackageImporter(io.BytesIO(_numpy_archive()), environment="strict")  # type: ignore[arg-type]


def test_archive_without_record_has_nothing_to_compare():
    """An archive with no environment record (as torch writes) loads quietly."""
    data = _numpy_archive()
    out = io.BytesIO()
    with ArchiveReader(io.BytesIO(data)) as reader:
        writer = ArchiveWriter(out)
        writer.archive_name = reader.archive_name
        with writer:
            for name in reader.record_names():
                if name not in (MANIFEST_RECORD, ENVIRONMENT_RECORD):
                    writer.write_record(name, reader.read(name))
    PackageImporter(io.BytesIO(out.getvalue()), environment="error")


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore:TypedStorage is deprecated:UserWarning")
def test_archive_with_environment_record_and_sets_loads_in_torch_package():
    """torch.package ignores the record under .data/hermetic/ and reads sorted sets."""
    torch = pytest.importorskip("torch", reason="compares with torch.package 2.13")
    obj = {
        "names": {"b", "a", "c"},
        "frozen": frozenset({"y", "x"}),
        "t": torch.ones(2),
    }
    buffer = io.BytesIO()
    with PackageExporter(buffer) as exporter:
        exporter.save_pickle("p", "o3.pkl", obj)
        exporter.save_pickle("p", "o4.pkl", obj, pickle_protocol=4)
    assert ENVIRONMENT_RECORD in _record_names(buffer.getvalue())
    assert "torch" in _record_of(buffer.getvalue())["externs"]
    importer = torch.package.PackageImporter(io.BytesIO(buffer.getvalue()))
    for record in ("o3.pkl", "o4.pkl"):
        loaded = importer.load_pickle("p", record)
        assert loaded["names"] == {"a", "b", "c"}
        assert loaded["frozen"] == frozenset({"x", "y"})
        assert torch.equal(loaded["t"], torch.ones(2))


def _record_names(data: bytes) -> list[str]:
    with ArchiveReader(io.BytesIO(data)) as reader:
        return reader.record_names()
