"""The scanner bypass classes of peers.md section 3.2, one test each: scan catches them.

Each test scans archives from the corpus (or built here) in this process; the corpus
tests run the same archives through every entry point in capped child processes.
"""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap

import pytest

from hermetic import scan
from hermetic._scan_rules import rate_global
from hermetic.errors import ArchiveError
from hermetic.scanner import Severity
from security.corpus import (
    CASES,
    archive_with,
    by_name,
    call,
    glob,
    pickled,
    tensor,
    text,
)


def scanned(name: str, tmp_path):
    """Scan corpus case *name*; return the report."""
    path = tmp_path / f"{name}.pt"
    path.write_bytes(by_name(name).archive(str(tmp_path / "marker")))
    return scan(path)


def codes(report):
    return {f.code for f in report.findings}


@pytest.mark.parametrize(
    "name", [c.name for c in CASES if c.family == "bypass" and c.severity == "critical"]
)
def test_1_denylist_gaps_are_not_gaps(name, tmp_path):
    """Alternative primitives (importlib, marshal, codeop, ctypes ...) are critical."""
    assert scanned(name, tmp_path).max_severity is Severity.CRITICAL


def test_1_unknown_globals_are_never_clean(tmp_path):
    """A global in no table is medium, not clean: the table is allowlist-first."""
    data = archive_with(pickle=pickled(call(glob("some.gadget", "run"), text("x"))))
    path = tmp_path / "m.pt"
    path.write_bytes(data)
    report = scan(path)
    assert report.max_severity is Severity.MEDIUM
    assert not report.is_safe_to_load_data_only


@pytest.mark.parametrize(
    "name",
    [
        "memo-confusion-binput-memoize",
        "memo-overwrite-put",
        "stack-global-computed-rot13",
        "stack-global-computed-str",
        "stack-global-from-global",
        "escaped-string-operands",
        "binstring-operands",
        "exception-oriented",
    ],
)
def test_2_parser_differentials_resolve_as_the_loader_does(name, tmp_path):
    """Memo tricks, computed names and escapes resolve to what the loader imports."""
    assert scanned(name, tmp_path).max_severity is Severity.CRITICAL


@pytest.mark.parametrize(
    "name", ["stack-global-at-offset-0", "memo-poison-none", "memo-get-unset"]
)
def test_2_scanner_errors_are_never_reported_clean(name, tmp_path):
    """A pickle that breaks the scanner's model is a high finding, not 'clean'."""
    report = scanned(name, tmp_path)
    assert "malformed" in codes(report)
    assert not report.is_safe_to_load_data_only


@pytest.mark.parametrize(
    "name",
    [
        "hidden-pickle-extensionless",
        "hidden-pickle-in-storage",
        "gzip-compressed-pickle",
        "protocol0-text-resource",
    ],
)
def test_3_container_tricks_hide_nothing(name, tmp_path):
    """Pickles in extensionless, storage or gzip records are scanned."""
    report = scanned(name, tmp_path)
    assert "hidden-pickle" in codes(report)
    assert report.max_severity is Severity.CRITICAL


@pytest.mark.parametrize(
    "name", ["seven-zip-container", "crc-mismatch", "prepended-pickle-polyglot"]
)
def test_3_odd_containers_fail_closed(name, tmp_path):
    """7z, polyglot files and CRC mismatches raise or are high, never skipped."""
    try:
        report = scanned(name, tmp_path)
    except ArchiveError:
        return
    assert report.max_severity >= Severity.HIGH


def test_4_attribute_path_globals_are_critical(tmp_path):
    """GLOBAL 'builtins print.__class__.__base__.__subclasses__' is critical."""
    report = scanned("attribute-walk-subclasses", tmp_path)
    assert report.max_severity is Severity.CRITICAL
    assert "walks attributes" in report.findings[0].message


@pytest.mark.parametrize(
    ("name", "severity"),
    [
        ("build-on-global", Severity.CRITICAL),
        ("setitems-on-list", Severity.HIGH),
        ("appends-on-dict", Severity.HIGH),
        ("setitem-os-environ", Severity.CRITICAL),
    ],
)
def test_5_state_mutation_is_flagged(name, severity, tmp_path):
    """BUILD on classes and SETITEM(S)/APPENDS on the wrong containers are flagged."""
    report = scanned(name, tmp_path)
    assert "state-mutation" in codes(report)
    assert report.max_severity is severity


@pytest.mark.parametrize(
    "name",
    [
        "nested-pickle-loads",
        "nested-underscore-pickle",
        "nested-embedded-bytes",
        "nested-torch-load",
        "nested-numpy-load",
        "nested-dill-loads",
    ],
)
def test_6_nested_deserialisation_is_followed(name, tmp_path):
    """pickle.loads, _pickle.loads, torch.load, numpy.load, dill.loads are critical."""
    assert scanned(name, tmp_path).max_severity is Severity.CRITICAL


def test_6_nested_globals_are_listed_with_their_context(tmp_path):
    """The inner pickle's os.system is listed, with where it was nested."""
    report = scanned("nested-pickle-loads", tmp_path)
    inner = [g for g in report.globals if g.context]
    assert [g.qualified_name for g in inner] == ["os.system"]


def test_7_self_declared_trust_grants_nothing(tmp_path):
    """An extern list naming os is flagged; the data verdict ignores that policy."""
    report = scanned("extern-self-grant", tmp_path)
    grants = [f for f in report.findings if f.code == "extern-grant"]
    assert grants
    assert all(f.scope == "extern" for f in grants)
    assert report.max_severity is Severity.CRITICAL
    benign = archive_with(externs=b"os\nsubprocess\n")
    path = tmp_path / "benign.pt"
    path.write_bytes(benign)
    report = scan(path)
    assert report.max_severity is Severity.HIGH
    assert report.is_safe_to_load_data_only  # the data needs nothing from the host


@pytest.mark.parametrize(
    "name",
    ["builtins.eval", "builtins.exec", "pickle.loads", "subprocess.Popen", "os.system"],
)
def test_8_no_archive_can_erode_the_table(name):
    """The table is fixed code: dangerous names stay critical whatever asks."""
    module, _, attr = name.rpartition(".")
    assert rate_global(module, attr)[0] is Severity.CRITICAL


def test_9_scanner_tampering_and_shared_state(tmp_path):
    """Imports of scanners are flagged, and one scan cannot change the next."""
    for name in (
        "scanner-tamper-hermetic",
        "scanner-tamper-fickling",
        "scanner-tamper-picklescan",
    ):
        assert scanned(name, tmp_path).max_severity >= Severity.HIGH
    benign = scanned("benign-dict", tmp_path)
    evil = scanned("builtins-exec", tmp_path)
    assert scanned("benign-dict", tmp_path).to_dict() == benign.to_dict()
    assert scanned("builtins-exec", tmp_path).to_dict() == evil.to_dict()


@pytest.mark.parametrize(
    "name",
    ["memo-bomb-long-binput", "zip-bomb-pickle", "huge-binunicode8", "dup-bomb"],
)
def test_10_resource_exhaustion_is_bounded_and_reported(name, tmp_path):
    """Memo and zip bombs, huge lengths and long opcode runs scan quickly."""
    case = by_name(name)
    report = scanned(name, tmp_path)
    if case.finding:
        assert case.finding in codes(report)


@pytest.mark.parametrize(
    "name",
    ["overlap-quoted", "overlap-same-offset", "deflate-ratio-lie", "stored-size-lie"],
)
def test_10_zip_bombs_are_refused(name, tmp_path):
    """Overlapping records and impossible sizes are refused before any read."""
    with pytest.raises(ArchiveError):
        scanned(name, tmp_path)


@pytest.mark.parametrize(
    "name",
    [c.name for c in CASES if c.family == "path" and c.outcome.value == "refused"],
)
def test_11_path_tricks_are_refused(name, tmp_path):
    """'..', absolute paths, backslashes, NULs are refused by the reader scan uses."""
    with pytest.raises(ArchiveError):
        scanned(name, tmp_path)


def test_12_sleepy_pickle_weight_edits_are_invisible_to_scan(tmp_path):
    """Edited weights in a well-formed archive scan clean: only signatures catch it."""
    body = pickled(tensor("torch.FloatStorage", 0, 4), version=2)
    report = []
    for weights in (bytes(16), b"\xff" * 16):
        data = archive_with(
            {".data/0.storage": weights}, pickle=body, externs=b"torch\n"
        )
        report.append(scan(io.BytesIO(data)).to_dict())
    assert report[0] == report[1]


@pytest.mark.torch
def test_a_pickle_that_runs_code_under_torch_package_is_critical(tmp_path):
    """torch.package runs builtins.exec from a pickle; scan reports it critical."""
    pytest.importorskip("torch", reason="compares with torch.package")
    marker = tmp_path / "ran"
    case = by_name("builtins-exec")
    path = tmp_path / "evil.pt"
    path.write_bytes(case.archive(str(marker)))
    assert scan(path).max_severity is Severity.CRITICAL
    assert not marker.exists()
    code = textwrap.dedent(
        f"""
        from torch.package import PackageImporter
        PackageImporter({str(path)!r}).load_pickle("res", "data.pkl")
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)
    assert marker.exists()  # torch.package ran it: scan was right to flag it


def test_reduce_with_non_tuple_arguments_is_followed_like_a_python_loader():
    """REDUCE with a dict as arguments: pure-Python loaders call it; scan goes on.

    Found by the 30-minute fuzz campaign (differential property): the scanner
    stopped there, while torch.package's pure-Python unpickler continues and may
    reach later globals.
    """
    from hermetic._pickle_scan import scan_pickle

    data = b"\x80\x02ccollections\nOrderedDict\n(dRcos\nsystem\n."
    result = scan_pickle(data)
    assert result.complete
    assert "odd-arguments" in [finding.code for finding in result.findings]
    assert ("os", "system") in [(g.module, g.name) for g in result.globals]
