"""Every hostile archive through every entry point: typed errors, nothing runs.

The corpus runs in a few capped child processes (``_corpus_child.py``), in parallel;
each test then checks one case's results: its outcome class, that no payload ran,
that no entry point took longer than :data:`MAX_SECONDS` or added more than
:data:`MAX_PEAK_MIB` of resident memory, and that nothing was written beside the
archive.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hermetic.scanner import Severity
from security.corpus import CASES, Case, Outcome

#: Bounds for any single entry point on any case.
MAX_SECONDS = 5.0
MAX_PEAK_MIB = 512
CHILD = Path(__file__).with_name("_corpus_child.py")
#: Entry points that read the pickle as a plain (not safe) loader would.
PLAIN_LOADS = ("import_module", "load_pickle")


def _run_batches(root: Path) -> dict[str, dict]:
    workers = max(2, min(4, os.cpu_count() or 2))
    batches = [CASES[i::workers] for i in range(workers)]
    env = {
        **os.environ,
        "HOME": str(root / "home"),
        "TMPDIR": str(root / "tmp"),
        "HERMETIC_BYTECODE_CACHE": str(root / "cache"),
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    (root / "home").mkdir()
    (root / "tmp").mkdir()
    children = []
    for index, batch in enumerate(batches):
        work = root / f"work{index}"
        work.mkdir()
        out = root / f"results{index}.json"
        command = [sys.executable, str(CHILD), str(out), str(work)]
        command += [item.name for item in batch]
        children.append(
            (subprocess.Popen(command, env=env, stderr=subprocess.PIPE), out)
        )
    results: dict[str, dict] = {}
    failures = []
    for child, out in children:
        _, stderr = child.communicate(timeout=240)
        if child.returncode != 0:
            failures.append(stderr.decode(errors="replace")[-3000:])
            continue
        results.update(json.loads(out.read_text()))
    if failures:
        pytest.fail("a corpus child process failed:\n" + "\n".join(failures))
    return results


@pytest.fixture(scope="module")
def corpus_results(tmp_path_factory):
    """Run the whole corpus once; returns results by case name."""
    root = tmp_path_factory.mktemp("corpus")
    before = sorted(p.name for p in root.parent.iterdir())
    results = _run_batches(root)
    results["__outside__"] = {
        "parent_before": before,
        "parent_after": sorted(p.name for p in root.parent.iterdir()),
        "home": sorted(p.name for p in (root / "home").iterdir()),
        "tmp": sorted(p.name for p in (root / "tmp").iterdir()),
    }
    return results


def test_corpus_is_large_and_varied():
    """The corpus holds at least 60 named cases across every family."""
    assert len(CASES) >= 60
    assert len({c.name for c in CASES}) == len(CASES)
    families = {c.family for c in CASES}
    assert families >= {"zip", "path", "storage", "malformed", "payload", "bypass"}


def test_nothing_is_written_outside(corpus_results):
    """No case writes to HOME, TMPDIR or beside its own folder."""
    outside = corpus_results["__outside__"]
    assert outside["parent_after"] == outside["parent_before"]
    assert outside["home"] == []
    assert outside["tmp"] == []


def _severity(name: str | None) -> Severity:
    return Severity[name.upper()] if name else Severity.INFO


def _check_bounds(case: Case, entry: str, result: dict) -> None:
    assert result["status"] != "timeout", f"{entry} ran past the child's deadline"
    assert result["seconds"] <= MAX_SECONDS, f"{entry} took {result['seconds']} s"
    assert result["peak_growth_mib"] <= MAX_PEAK_MIB, (
        f"{entry} added {result['peak_growth_mib']} MiB"
    )
    hazard = case.memory_hazard[0] if case.memory_hazard else ()
    if result.get("memory") and entry not in hazard:
        pytest.fail(f"{entry} hit the memory cap: {result['message']}")


def _check_typed(entry: str, result: dict) -> None:
    if result["status"] == "error":
        assert result["hermetic"], (
            f"{entry} raised {result['type']}, not a HermeticError: {result['message']}"
        )


def _check_scan(case: Case, results: dict, least: Severity) -> None:
    for entry in ("scan", "scan_buffer"):
        result = results[entry]
        _check_typed(entry, result)
        if result["status"] != "ok":
            continue
        report = result["value"]
        assert _severity(report["max_severity"]) >= least, (entry, report)
        if case.finding and case.outcome is not Outcome.REFUSED:
            assert case.finding in report["codes"], (entry, report)
        if case.outcome is Outcome.BENIGN:
            assert report["safe"], (entry, report)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: Case, corpus_results):
    """The case gets its outcome through every entry point; its payload never runs."""
    results = corpus_results[case.name]
    assert not results["marker"], "the payload ran"
    assert results["files"] == ["case.pt"], results["files"]
    entries = {k: v for k, v in results.items() if isinstance(v, dict)}
    for entry, result in entries.items():
        _check_bounds(case, entry, result)
    least = _severity(case.severity)
    outcome = case.outcome
    if outcome is Outcome.REFUSED:
        opened = entries["open"]
        assert opened["status"] == "error", opened
        assert opened["hermetic"], opened
        for entry in ("scan", "scan_buffer"):
            result = entries[entry]
            _check_typed(entry, result)
            if result["status"] == "ok":
                assert _severity(result["value"]["max_severity"]) >= max(
                    least, Severity.HIGH
                ), (entry, result)
        return
    assert entries["open"]["status"] == "ok", entries["open"]
    if outcome is Outcome.MALFORMED:
        _check_scan(case, entries, max(least, Severity.HIGH))
        load = entries.get("load_pickle")
        assert load is not None, entries
        assert load["status"] == "error", load
        assert load["hermetic"], load
    elif outcome is Outcome.FLAGGED:
        _check_scan(case, entries, least)
    else:
        _check_scan(case, entries, least)
        for entry in PLAIN_LOADS:
            if entry in entries:
                _check_typed(entry, entries[entry])
    for entry in ("load_text", "safe_load", "safe_import", "verify"):
        if entry in entries:
            _check_typed(entry, entries[entry])
    if outcome is Outcome.BENIGN and all(map(importlib.util.find_spec, case.needs)):
        for entry in ("load_pickle", "safe_load"):
            if entry in entries:
                assert entries[entry]["status"] == "ok", entries[entry]
