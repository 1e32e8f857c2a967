"""Run one measurement per fresh interpreter and collect its numbers as JSON.

The parent calls :func:`measure`, which starts ``python bench/_harness.py MODULE
FUNCTION PARAMS`` once per run. The child imports ``scenarios.MODULE``, calls
``FUNCTION(**PARAMS)`` and prints the returned dict (plus its peak RSS) as one JSON
line. A fresh process per run keeps peak RSS and private memory per measurement and
stops one loader's caches from helping another.

The helpers below (:func:`stopwatch`, :func:`private_bytes`, :func:`drop_page_cache`,
...) run inside the child. They read Linux ``/proc`` files and return ``None``
elsewhere; this module does not try to measure anything on other systems.
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import importlib.util
import json
import math
import mmap
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Samples",
    "Variant",
    "anonymous_bytes",
    "drop_page_cache",
    "has_module",
    "measure",
    "peak_rss_bytes",
    "private_bytes",
    "reset_peak_rss",
    "resident_fraction",
    "rss_bytes",
    "run_once",
    "stopwatch",
]

BENCH_DIR = Path(__file__).resolve().parent
_MARKER = "@@bench-result@@ "
_TIMEOUT = 1800


# -- parent side ---------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """One thing to measure: a worker function of a scenario module, with arguments.

    *requires* names top-level modules the worker needs; when one is missing the
    variant is not run and its row says "not installed". A *context* variant only
    appears in rows without a target, and may be run fewer times.
    """

    key: str
    function: str
    params: Mapping[str, Any] = field(default_factory=dict)
    requires: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    context: bool = False


@dataclass
class Samples:
    """The results of every run of one variant."""

    key: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    missing: str | None = None
    error: str | None = None
    failures: int = 0

    def median(self, metric: str) -> float | None:
        """Return the median of *metric* over the runs that reported it."""
        values = [run[metric] for run in self.runs if run.get(metric) is not None]
        return statistics.median(values) if values else None

    def count(self, metric: str) -> int:
        """Return how many runs reported *metric*."""
        return sum(run.get(metric) is not None for run in self.runs)


def has_module(name: str) -> bool:
    """Tell whether *name* can be imported by the workers (same interpreter)."""
    return importlib.util.find_spec(name) is not None


def run_once(
    module: str,
    function: str,
    params: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Run ``scenarios.<module>.<function>(**params)`` in a fresh interpreter.

    Raises:
        RuntimeError: the child failed; the message ends with its stderr.
    """
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        module,
        function,
        json.dumps(dict(params or {})),
    ]
    child_env = {**os.environ, **(env or {})}
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=child_env,
        timeout=_TIMEOUT,
        check=False,
    )
    for line in reversed(result.stdout.splitlines()):
        if line.startswith(_MARKER) and result.returncode == 0:
            parsed: dict[str, Any] = json.loads(line[len(_MARKER) :])
            return parsed
    tail = "\n".join(result.stderr.strip().splitlines()[-15:])
    raise RuntimeError(f"{module}.{function} exited {result.returncode}:\n{tail}")


def measure(
    module: str,
    variants: Sequence[Variant],
    *,
    repeats: int,
    context_repeats: int | None = None,
    warmup: int = 0,
    log: Any = None,
) -> dict[str, Samples]:
    """Run every variant *repeats* times, interleaved, after *warmup* unrecorded runs.

    Context variants run *context_repeats* times (default: *repeats*). Interleaving
    spreads slow phases of a busy machine over all variants instead of penalising
    whichever ran during them, and each round starts one variant later (A B C, B C A,
    C A B, ...) so that no variant always runs right after the same one: on a VM,
    the run after one that freed a GiB of memory is often the one that stalls.
    """
    context_repeats = repeats if context_repeats is None else context_repeats
    samples = {variant.key: Samples(variant.key) for variant in variants}
    runnable = []
    for variant in variants:
        absent = [name for name in variant.requires if not has_module(name)]
        if absent:
            samples[variant.key].missing = ", ".join(absent)
        else:
            runnable.append(variant)
    for round_ in range(warmup + repeats):
        turn = round_ % len(runnable) if runnable else 0
        for variant in runnable[turn:] + runnable[:turn]:
            entry = samples[variant.key]
            wanted = context_repeats if variant.context else repeats
            if round_ >= warmup + wanted:
                continue
            try:
                result = run_once(module, variant.function, variant.params, variant.env)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                # Keep going: the row reports how many runs succeeded.
                entry.error = str(exc)
                entry.failures += 1
                if log:
                    log(f"  {variant.key}: FAILED\n{exc}")
                continue
            if round_ >= warmup:
                entry.runs.append(result)
            if log:
                shown = {k: v for k, v in result.items() if isinstance(v, float)}
                label = "warm-up" if round_ < warmup else f"run {round_ - warmup + 1}"
                log(f"  {variant.key} {label}: {_brief(shown)}")
    return samples


def _brief(values: Mapping[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in sorted(values.items()))


# -- child side ----------------------------------------------------------------------


class Lap:
    """Elapsed seconds of one :func:`stopwatch` region."""

    seconds: float = math.nan


@contextmanager
def stopwatch() -> Iterator[Lap]:
    """Time the block with the garbage collector off (the same for every variant).

    A collection runs first so that garbage left by setting up is not collected
    inside the timed region.
    """
    lap = Lap()
    gc.collect()
    gc.disable()
    start = time.perf_counter()
    try:
        yield lap
    finally:
        lap.seconds = time.perf_counter() - start
        gc.enable()


def _smaps_rollup() -> dict[str, int] | None:
    try:
        with open("/proc/self/smaps_rollup") as file:
            lines = file.read().splitlines()
    except OSError:
        return None
    fields = {}
    for line in lines[1:]:
        name, _, rest = line.partition(":")
        parts = rest.split()
        if len(parts) == 2 and parts[1] == "kB":
            fields[name] = int(parts[0]) * 1024
    return fields


def private_bytes() -> int | None:
    """Return Private_Clean + Private_Dirty of this process, from smaps_rollup."""
    rollup = _smaps_rollup()
    return None if rollup is None else rollup["Private_Clean"] + rollup["Private_Dirty"]


def anonymous_bytes() -> int | None:
    """Return this process's anonymous memory (heap, copies, written mapped pages)."""
    rollup = _smaps_rollup()
    return None if rollup is None else rollup["Anonymous"]


def rss_bytes() -> int | None:
    """Return this process's current resident set size."""
    rollup = _smaps_rollup()
    return None if rollup is None else rollup["Rss"]


def peak_rss_bytes() -> int:
    """Return the peak resident set size of this process so far (ru_maxrss)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS to its current RSS (Linux ``clear_refs`` 5).

    Afterwards :func:`peak_rss_bytes` reports the peak since the reset. Returns False
    where the kernel does not support it.
    """
    try:
        with open("/proc/self/clear_refs", "w") as file:
            file.write("5")
    except OSError:
        return False
    return True


def drop_page_cache(path: str | os.PathLike[str]) -> bool:
    """Ask the kernel to evict *path* from the page cache (no root needed).

    Dirty pages are written first, since POSIX_FADV_DONTNEED skips them. Returns
    False where the call does not exist.
    """
    if not hasattr(os, "posix_fadvise"):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return True


def resident_fraction(path: str | os.PathLike[str]) -> float | None:
    """Return the fraction of *path*'s pages in the page cache (mincore), or None."""
    size = os.path.getsize(path)
    if size == 0 or not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    pages = -(-size // mmap.PAGESIZE)
    vector = (ctypes.c_ubyte * pages)()
    with (
        open(path, "rb") as file,
        mmap.mmap(file.fileno(), size, access=mmap.ACCESS_COPY) as mapped,
    ):
        anchor = ctypes.c_char.from_buffer(mapped)
        try:
            failed = libc.mincore(
                ctypes.c_void_p(ctypes.addressof(anchor)), ctypes.c_size_t(size), vector
            )
        finally:
            del anchor
    if failed:
        return None
    return sum(byte & 1 for byte in bytes(vector)) / pages


def _worker(argv: list[str]) -> int:
    module_name, function_name, params = argv
    sys.path.insert(0, str(BENCH_DIR))
    module = importlib.import_module(f"scenarios.{module_name}")
    result = getattr(module, function_name)(**json.loads(params))
    result = {**result, "peak_rss": peak_rss_bytes()}
    sys.stdout.write(_MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1:]))
