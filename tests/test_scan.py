"""scan(): the report on an archive, read without running anything."""

from __future__ import annotations

import gzip
import io
import json
import zipfile

import pytest

import hermetic
from hermetic import PackageExporter, Report, scan
from hermetic._archive_reader import ArchiveReader
from hermetic.errors import ArchiveError
from hermetic.scanner import Severity
from security.corpus import (
    Member,
    archive_with,
    call,
    glob,
    make_zip,
    package,
    pickled,
    tensor,
    text,
)

EVIL = pickled(call(glob("os", "system"), text("id")), version=2)


def write(tmp_path, data, name="model.pt"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.fixture
def exported(tmp_path, src_tree):
    """An archive made by PackageExporter: a package, an extern, a mock, text."""
    src_tree(
        {
            "shop/__init__.py": "import os\nfrom .items import Item\n",
            "shop/items.py": "import json\nimport missing_lib\nclass Item:\n    pass\n",
            "missing_lib.py": "X = 1\n",
        }
    )
    from shop import Item

    path = tmp_path / "shop.pt"
    with PackageExporter(path) as exporter:
        exporter.intern("shop.**")
        exporter.extern(["os", "json"])
        exporter.mock("missing_lib")
        exporter.save_pickle("res", "item.pkl", {"item": Item(), "n": {1, 2}})
        exporter.save_text("res", "notes.txt", "hello")
    return path


def test_report_lists_facts_records_modules_externs_and_mocks(exported):
    """The report names the archive, its records, modules, imports, externs, mocks."""
    report = scan(exported)
    assert isinstance(report, Report)
    assert (report.archive_name, report.format_version) == ("shop", 6)
    assert report.python_version
    assert report.python_version[0] == "3"
    records = {r.name: r for r in report.records}
    assert records["res/notes.txt"].size == 5
    assert records["res/notes.txt"].method == "stored"
    assert records["res/item.pkl"].kind == "pickle"
    modules = {m.name: m for m in report.modules}
    assert modules["shop"].is_package
    assert "os" in modules["shop"].imports
    assert modules["shop.items"].imports == ("json", "missing_lib")
    assert set(report.externs) >= {"os", "json"}
    assert report.mocks == ("missing_lib",)
    assert modules["missing_lib"].is_mock


def test_report_lists_every_global_with_its_severity(exported):
    """The pickle's globals are listed with record, call and severity."""
    report = scan(exported)
    found = {(g.qualified_name, g.record, g.called) for g in report.globals}
    assert ("shop.items.Item", "res/item.pkl", True) in found
    assert ("builtins.set", "res/item.pkl", True) in found
    item = next(g for g in report.globals if g.name == "Item")
    assert item.severity is Severity.MEDIUM


def test_source_imports_and_extern_grants_are_findings(exported):
    """Packaged source importing os, and an extern list naming os, are reported."""
    report = scan(exported)
    codes = {(f.code, f.scope) for f in report.findings}
    assert ("source-import", "source") in codes
    assert ("extern-grant", "extern") in codes
    assert report.max_severity is Severity.HIGH
    assert not report.is_safe_to_load_data_only  # it needs the packaged Item class


def test_benign_data_archive_is_safe_to_load_data_only(tmp_path):
    """A tensor over a storage of the right size is safe data."""
    data = archive_with(
        {".data/0.storage": bytes(16)},
        pickle=pickled(tensor("torch.FloatStorage", 0, 4), version=2),
        externs=b"collections\ntorch\n",
    )
    report = scan(write(tmp_path, data))
    assert report.is_safe_to_load_data_only
    assert report.max_severity is Severity.INFO
    (storage,) = report.storages
    assert (storage.key, storage.storage_type, storage.dtype) == (
        "0",
        "torch.FloatStorage",
        "float32",
    )
    assert (storage.numel, storage.itemsize, storage.size, storage.size_matches) == (
        4,
        4,
        16,
        True,
    )
    assert storage.referenced_by == ("res/data.pkl",)


def test_storage_size_mismatch_and_missing_record(tmp_path):
    """A record that is not numel x itemsize, or is missing, is a high finding."""
    body = (
        b"("
        + tensor("torch.LongStorage", 0, 3)
        + tensor("torch.FloatStorage", 1, 1)
        + b"l"
    )
    data = archive_with({".data/0.storage": bytes(16)}, pickle=pickled(body, version=2))
    report = scan(write(tmp_path, data))
    codes = {f.code: f for f in report.findings}
    assert codes["storage-size"].severity is Severity.HIGH
    assert "3 x 8 = 24" in codes["storage-size"].message
    assert codes["missing-storage"].record == ".data/1.storage"
    assert not report.is_safe_to_load_data_only


def test_to_dict_is_json(exported):
    """to_dict() gives plain data that json.dumps takes as is."""
    data = scan(exported).to_dict()
    text_form = json.dumps(data)
    assert json.loads(text_form)["max_severity"] == "high"
    assert data["pickles"][0]["globals"][0]["severity"] in ("info", "medium")
    assert data["findings"][0]["severity"] == "high"


def test_findings_are_ranked_worst_first(tmp_path):
    """Findings come sorted by severity, critical first."""
    report = scan(write(tmp_path, archive_with({"res/x.txt": b"hi"}, pickle=EVIL)))
    severities = [f.severity for f in report.findings]
    assert severities == sorted(severities, reverse=True)
    assert report.findings[0].severity is Severity.CRITICAL


@pytest.mark.parametrize("kind", ["path", "buffer", "reader", "directory"])
def test_scan_accepts_paths_buffers_readers_and_folders(tmp_path, kind):
    """A path, a file object, an open reader or an unzipped folder all scan."""
    data = archive_with(pickle=EVIL)
    path = write(tmp_path, data)
    if kind == "path":
        report = scan(str(path))
    elif kind == "buffer":
        report = scan(io.BytesIO(data))
    elif kind == "reader":
        with ArchiveReader(path) as reader:
            report = scan(reader)
            assert reader.has_record("res/data.pkl")  # left open
    else:
        with zipfile.ZipFile(path) as zf:
            zf.extractall(tmp_path / "out")
        report = scan(tmp_path / "out" / "archive")
    assert report.max_severity is Severity.CRITICAL


def test_malformed_containers_raise_archive_error(tmp_path):
    """What the reader refuses, scan refuses with the same typed error."""
    members = package()
    members.append(Member("archive/../evil.py", b"x"))
    with pytest.raises(ArchiveError, match=r"'\.\.' segment"):
        scan(write(tmp_path, make_zip(members)))
    with pytest.raises(ArchiveError):
        scan(io.BytesIO(b"not a zip"))


def test_unreadable_pickle_is_a_finding_not_an_error(tmp_path):
    """A record with a bad CRC is reported and the rest is still scanned."""
    members = package({"res/other.pkl": EVIL})
    members[2].crc = 1
    report = scan(write(tmp_path, make_zip(members)))
    unreadable = [f for f in report.findings if f.code == "unreadable"]
    assert unreadable[0].record == "res/data.pkl"
    assert "os.system" in {g.qualified_name for g in report.globals}


def test_oversized_pickles_are_not_read(tmp_path):
    """A pickle larger than max_record_size is a high finding, unread."""
    report = scan(write(tmp_path, archive_with(pickle=EVIL)), max_record_size=4)
    (finding,) = [f for f in report.findings if f.code == "not-scanned"]
    assert finding.severity is Severity.HIGH
    assert report.pickles == ()


def test_opcode_budget_is_passed_on(tmp_path):
    """max_opcodes bounds each pickle's scan."""
    data = archive_with(pickle=b"N" + b"2" * 100 + b".")
    report = scan(write(tmp_path, data), max_opcodes=10)
    assert "budget-exceeded" in {f.code for f in report.findings}


@pytest.mark.parametrize(
    ("name", "data", "how"),
    [
        pytest.param("res/config", EVIL, "", id="extensionless"),
        pytest.param(".data/3.storage", EVIL, "", id="storage"),
        pytest.param("res/model.bin", gzip.compress(EVIL), " (gzip)", id="gzip"),
        pytest.param("res/readme.txt", b"cos\nsystem\n(S'id'\ntR.", "", id="protocol0"),
    ],
)
def test_hidden_pickles_are_found(tmp_path, name, data, how):
    """Pickles under other names, in storages or gzip-compressed are scanned."""
    report = scan(write(tmp_path, archive_with({name: data})))
    hidden = [f for f in report.findings if f.code == "hidden-pickle"]
    assert hidden
    assert hidden[0].record == name
    assert how in hidden[0].message
    assert report.max_severity is Severity.CRITICAL


def test_plain_text_and_binary_resources_are_not_pickles(tmp_path):
    """Ordinary resources do not produce findings."""
    records = {"res/a.txt": b"hello world\n", "res/b.bin": bytes(range(256)) * 4}
    report = scan(write(tmp_path, archive_with(records)))
    assert report.findings == ()
    assert report.is_safe_to_load_data_only


def test_other_compressed_data_is_reported(tmp_path):
    """A nested ZIP is reported as content scan does not open."""
    inner = make_zip(package())
    report = scan(write(tmp_path, archive_with({"res/inner.bin": inner})))
    assert "compressed" in {f.code for f in report.findings}


def test_unparsable_source_is_a_finding(tmp_path):
    """Packaged source with a syntax error is reported, never executed."""
    report = scan(write(tmp_path, archive_with({"bad.py": b"def (:\n"})))
    (finding,) = [f for f in report.findings if f.code == "unparsable-source"]
    assert finding.record == "bad.py"
    assert finding.scope == "source"
    assert report.is_safe_to_load_data_only  # data-only loading runs no source


def test_packaged_stdlib_names_are_reported(tmp_path):
    """An archive packaging its own 'pickle' module shadows the host's for it."""
    report = scan(write(tmp_path, archive_with({"pickle.py": b"def loads(b): pass\n"})))
    assert "shadowed-module" in {f.code for f in report.findings}


def test_names_with_control_characters_and_case_collisions(tmp_path):
    """Escape sequences in names and names differing only by case are medium."""
    records = {"res/\x1b[31mred.txt": b"x", "res/A.txt": b"a", "res/a.txt": b"b"}
    report = scan(write(tmp_path, archive_with(records)))
    codes = {f.code for f in report.findings}
    assert {"bad-name", "case-collision"} <= codes


def test_missing_extern_list_is_high(tmp_path):
    """Without .data/extern_modules the archive is not a package."""
    members = package()
    del members[1]
    report = scan(write(tmp_path, make_zip(members)))
    assert {f.code for f in report.findings} == {"not-a-package"}
    assert report.max_severity is Severity.HIGH


def test_scan_runs_nothing(tmp_path, monkeypatch):
    """Scanning an archive whose pickle and source would create a file creates none."""
    marker = tmp_path / "marker"
    source = f"open({str(marker)!r}, 'w').close()\n".encode()
    body = call(glob("builtins", "exec"), text(source.decode()))
    data = archive_with({"evil.py": source}, pickle=pickled(body))
    monkeypatch.chdir(tmp_path)
    report = scan(write(tmp_path, data))
    assert report.max_severity is Severity.CRITICAL
    assert not marker.exists()
    assert "evil" not in str(list(__import__("sys").modules))


def test_scan_is_public():
    """hermetic.scan and hermetic.Report are the public names."""
    assert hermetic.scan is scan
    assert hermetic.Report is Report
