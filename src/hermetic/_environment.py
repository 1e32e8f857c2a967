"""The recorded environment: what an archive's externs and Python were when it was made.

``.data/hermetic/environment.json`` holds one JSON object in canonical form (keys
sorted, no spaces, ASCII only, one final newline, no timestamps)::

    {"externs":{"json":{"stdlib":true},
                "numpy":{"distributions":{"numpy":"2.1.0"}},
                "mystery":null},
     "format":"hermetic-environment/1",
     "platform":{"machine":"x86_64","system":"linux"},
     "python":{"implementation":"cpython","version":"3.11.7"}}

``externs`` has one entry per extern *top-level* module: ``{"stdlib": true}`` for the
standard library, the distributions providing it with their versions, or null when no
installed distribution claims it. An importer compares the distribution versions, the
Python minor version and implementation; the platform is recorded only.

Writing calls :func:`importlib.metadata.packages_distributions` once per process (it
scans every installed distribution); comparing reads the ``Version`` header of only
the distributions the archive names.
"""

from __future__ import annotations

import functools
import json
import platform
import sys
import warnings
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Literal

from ._archive_reader import ArchiveReader
from ._format import ENVIRONMENT_RECORD
from ._stdlib import is_stdlib_module
from .errors import (
    ArchiveFormatError,
    EnvironmentMismatchError,
    EnvironmentMismatchWarning,
)

if TYPE_CHECKING:
    import importlib.metadata

__all__ = [
    "ENVIRONMENT_FORMAT",
    "EnvironmentPolicy",
    "check_environment",
    "encode_environment",
    "find_mismatches",
]

ENVIRONMENT_FORMAT = "hermetic-environment/1"
#: A record longer than this is refused unread.
MAX_ENVIRONMENT_SIZE = 4 << 20

EnvironmentPolicy = Literal["warn", "error", "ignore"]
_POLICIES = ("warn", "error", "ignore")


@functools.cache
def _distributions_of() -> Mapping[str, list[str]]:
    """Map top-level module names to the distributions providing them (cached)."""
    import importlib.metadata  # not at import time: loading need not pay for it

    return importlib.metadata.packages_distributions()


def _installed_version(distribution: str) -> str | None:
    import importlib.metadata

    try:
        dist = importlib.metadata.distribution(distribution)
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return None
    return _version_header(dist) or dist.version


def _version_header(dist: importlib.metadata.Distribution) -> str | None:
    """Return the metadata's ``Version`` header, reading the headers only.

    ``Distribution.version`` parses the whole file (long description included) as an
    e-mail message: a millisecond or more per distribution on every load.
    """
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    for line in text.splitlines():
        if not line.strip():
            break  # the headers end at the first blank line
        name, colon, value = line.partition(":")
        if colon and name.strip().lower() == "version":
            return value.strip() or None
    return None


def _named_after(top: str) -> str | None:
    """Return the distribution called *top* if it provides module *top*, else None.

    Most distributions are named after their module (numpy, torch, networkx); asking
    for one by name reads one metadata folder, where mapping every module to its
    distributions reads all of them (half a second with torch installed).
    """
    import importlib.metadata

    try:
        dist = importlib.metadata.distribution(top)
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return None
    top_level = dist.read_text("top_level.txt")
    if top_level is not None:
        return dist.metadata["Name"] if top in top_level.split() else None
    files = dist.files or ()
    provides = any(f.parts and f.parts[0] in (top, f"{top}.py") for f in files)
    return dist.metadata["Name"] if provides else None


def _is_installed(top: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


def _describe_extern(top: str) -> dict[str, object] | None:
    if is_stdlib_module(top):
        return {"stdlib": True}
    direct = _named_after(top)
    if direct is None and not _is_installed(top):
        return None  # nothing provides it here: no need to map every distribution
    providers = [direct] if direct else _distributions_of().get(top, ())
    names = sorted(set(providers))
    versions = {name: _installed_version(name) for name in names}
    return {"distributions": versions} if versions else None


def encode_environment(externs: Iterable[str]) -> bytes:
    """Return the environment record for an archive whose externs are *externs*."""
    tops = sorted({name.partition(".")[0] for name in externs if name})
    record = {
        "externs": {top: _describe_extern(top) for top in tops},
        "format": ENVIRONMENT_FORMAT,
        "platform": {"machine": platform.machine(), "system": sys.platform},
        "python": {
            "implementation": sys.implementation.name,
            "version": platform.python_version(),
        },
    }
    text = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return (text + "\n").encode("ascii")


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


Mismatch = tuple[str, str, str | None]


def find_mismatches(record: Mapping[str, object]) -> list[Mismatch]:
    """Return ``(name, recorded, installed)`` for each difference from this host.

    *installed* is None for a distribution that is not installed here.
    """
    return _python_mismatches(record.get("python")) + _distribution_mismatches(
        record.get("externs")
    )


def _python_mismatches(python: object) -> list[Mismatch]:
    if not isinstance(python, dict):
        return []
    found: list[Mismatch] = []
    here = platform.python_version()
    recorded = str(python.get("version", ""))
    if _minor(recorded) != _minor(here):
        found.append(("Python", recorded, here))
    implementation = python.get("implementation")
    if isinstance(implementation, str) and implementation != sys.implementation.name:
        found.append(("Python implementation", implementation, sys.implementation.name))
    return found


def _distribution_mismatches(externs: object) -> list[Mismatch]:
    recorded: dict[str, str] = {}
    for entry in externs.values() if isinstance(externs, dict) else ():
        distributions = entry.get("distributions") if isinstance(entry, dict) else None
        if isinstance(distributions, dict):
            recorded.update(
                (name, version)
                for name, version in distributions.items()
                if isinstance(name, str) and isinstance(version, str)
            )
    found: list[Mismatch] = []
    for name, version in sorted(recorded.items()):
        installed = _installed_version(name)
        if installed != version:
            found.append((name, version, installed))
    return found


def _describe(mismatches: list[Mismatch]) -> str:
    return "; ".join(
        f"{name} {recorded} recorded, "
        + (f"{installed} installed" if installed is not None else "not installed")
        for name, recorded, installed in mismatches
    )


def check_environment(
    reader: ArchiveReader, archive: str, policy: str, *, stacklevel: int = 3
) -> None:
    """Compare the environment *reader*'s archive records with this host, per *policy*.

    Raises:
        EnvironmentMismatchError: with ``policy="error"``, naming every difference.
        ArchiveFormatError: the record is not valid JSON.
    """
    if policy not in _POLICIES:
        raise ValueError(f"environment must be one of {_POLICIES}, got {policy!r}")
    if policy == "ignore":
        return
    if not reader.has_record(ENVIRONMENT_RECORD):
        return  # written by torch.package, or before hermetic recorded it
    raw = reader.read(ENVIRONMENT_RECORD, max_size=MAX_ENVIRONMENT_SIZE)
    try:
        record = json.loads(raw)
    except ValueError as exc:
        raise ArchiveFormatError(
            f"not valid JSON: {exc}", archive=archive, record=ENVIRONMENT_RECORD
        ) from exc
    mismatches = find_mismatches(record) if isinstance(record, dict) else []
    if not mismatches:
        return
    message = f"{archive}: built in a different environment: {_describe(mismatches)}"
    if policy == "error":
        raise EnvironmentMismatchError(message, mismatches=mismatches)
    warnings.warn(message, EnvironmentMismatchWarning, stacklevel=stacklevel)
