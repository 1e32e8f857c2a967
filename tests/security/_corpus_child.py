"""Run corpus cases through every entry point, in a capped process, and report JSON.

``test_corpus.py`` starts this file as a script::

    python _corpus_child.py RESULTS.json WORK_DIR CASE [CASE ...]

The process blocks ``import torch`` (the suite is torch-free and torch is slow to
import), caps its address space at what it uses after start-up plus
:data:`CAP_BYTES`, and runs each entry point under a deadline. Each case gets its own
folder under WORK_DIR holding only its archive; the marker a payload would create
lives there too. Results record, per entry point, the outcome, the exception type,
whether it is a HermeticError, whether a MemoryError caused it, the seconds taken and
the peak resident memory it added.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import inspect
import io
import json
import os
import resource
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

#: Hard cap on memory above the start-up footprint (the test's bound is lower).
CAP_BYTES = 1 << 30
#: An entry point still running after this many seconds is interrupted.
DEADLINE_SECONDS = 20.0


class _BlockTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name.partition(".")[0] == "torch":
            raise ModuleNotFoundError(f"blocked in the corpus run: {name}", name=name)


class _Deadline(BaseException):
    """Raised by the alarm when an entry point runs past its deadline."""


def _on_alarm(signum: int, frame: object) -> None:
    raise _Deadline


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    """Reset the peak resident size (Linux 4.0+); False if this kernel cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def _cap_memory() -> None:
    used = _status_kib("VmSize") * 1024
    limit = used + CAP_BYTES
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _caused_by_memory(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, MemoryError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def attempt(call: Callable[[], object], hermetic_error: type) -> dict[str, object]:
    """Run *call* under the deadline; describe what happened."""
    resettable = _reset_peak()
    before = (
        _status_kib("VmHWM")
        if resettable
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    )
    base = _status_kib("VmRSS") if resettable else before
    start = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, DEADLINE_SECONDS)
    outcome: dict[str, object]
    try:
        value = call()
        outcome = {"status": "ok", "value": value if isinstance(value, dict) else None}
    except _Deadline:
        outcome = {"status": "timeout"}
    except BaseException as exc:
        outcome = {
            "status": "error",
            "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
            "hermetic": isinstance(exc, hermetic_error),
            "memory": _caused_by_memory(exc),
            "message": str(exc)[:400],
        }
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    seconds = time.monotonic() - start
    peak = (
        _status_kib("VmHWM")
        if resettable
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    )
    outcome["seconds"] = round(seconds, 3)
    outcome["peak_growth_mib"] = round(max(0, peak - base) / 1024, 1)
    return outcome


def entry_points(
    case: object, path: str, data: bytes
) -> Iterator[tuple[str, Callable[[], object]]]:
    """Yield (name, call) for every entry point that applies to *case*."""
    import hermetic

    importer: list[object] = []

    def open_archive() -> None:
        importer.append(hermetic.PackageImporter(path))

    def summarise(report: hermetic.Report) -> dict[str, object]:
        return {
            "max_severity": str(report.max_severity),
            "codes": sorted({f.code for f in report.findings}),
            "safe": report.is_safe_to_load_data_only,
        }

    yield "open", open_archive
    opened = importer[0] if importer else None
    if opened is not None:
        if case.module and not case.runs_on_load:  # type: ignore[attr-defined]
            yield "import_module", lambda: opened.import_module(case.module)  # type: ignore[attr-defined]
        if case.pickle and not case.runs_on_load:  # type: ignore[attr-defined]
            yield "load_pickle", lambda: _drop(opened.load_pickle(*case.pickle))  # type: ignore[attr-defined]
        if case.pickle:  # type: ignore[attr-defined]
            yield "load_text", lambda: _drop(opened.load_text(*case.pickle))  # type: ignore[attr-defined]
        opened.close()  # type: ignore[attr-defined]
    yield "scan", lambda: summarise(hermetic.scan(path))
    yield "scan_buffer", lambda: summarise(hermetic.scan(io.BytesIO(data)))
    parameters = inspect.signature(hermetic.PackageImporter).parameters
    if "safe" in parameters:
        if case.pickle:  # type: ignore[attr-defined]
            yield (
                "safe_load",
                lambda: _drop(
                    _safe(hermetic, path).load_pickle(*case.pickle)  # type: ignore[attr-defined]
                ),
            )
        if case.module:  # type: ignore[attr-defined]
            yield (
                "safe_import",
                lambda: _safe(hermetic, path).import_module(case.module),
            )  # type: ignore[attr-defined]
    verify = getattr(hermetic, "verify_archive", None)
    if callable(verify):
        yield "verify", lambda: _drop(verify(path))


def _safe(hermetic: object, path: str) -> object:
    return hermetic.PackageImporter(path, safe=True)  # type: ignore[attr-defined]


def _drop(value: object) -> None:
    """Forget a loaded value (a deep structure is freed here, inside the deadline)."""
    del value


def run_case(name: str, work: Path) -> dict[str, object]:
    import hermetic
    from security.corpus import by_name

    case = by_name(name)
    folder = work / name
    folder.mkdir()
    os.chdir(folder)
    marker = str(folder / "MARKER")
    data = case.archive(marker)
    path = folder / "case.pt"
    path.write_bytes(data)
    results: dict[str, object] = {}
    for entry, call in entry_points(case, str(path), data):
        results[entry] = attempt(call, hermetic.HermeticError)
    results["marker"] = os.path.exists(marker)
    results["files"] = sorted(p.name for p in folder.iterdir())
    os.chdir(work)
    return results


def main(argv: list[str]) -> int:
    out, work, *names = argv
    sys.meta_path.insert(0, _BlockTorch())
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    signal.signal(signal.SIGALRM, _on_alarm)
    with contextlib.suppress(ImportError):
        import numpy  # noqa: F401 (imported before the cap: it maps big arenas)
    import hermetic  # noqa: F401
    from security import corpus  # noqa: F401

    _cap_memory()
    results = {name: run_case(name, Path(work)) for name in names}
    Path(out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
