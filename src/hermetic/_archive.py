"""Shared pieces of the package ZIP container: the error boundary and record names.

:mod:`._archive_writer` writes archives byte for byte as torch.package does and
:mod:`._archive_reader` reads them; both turn stdlib errors into ArchiveError and check
record names here.

This module reads and writes no archive itself, and knows nothing about pickles,
modules or storages.
"""

from __future__ import annotations

import contextlib
import os
import struct
import zipfile
import zlib
from collections.abc import Iterator

from .errors import ArchiveError, ArchiveFormatError, HermeticError

__all__ = [
    "BINARY_NAME",
    "FOREIGN_ERRORS",
    "as_str_path",
    "check_record_name",
    "translated_errors",
]

BINARY_NAME = "<binary>"

#: Everything the stdlib may raise on a malformed archive or a failing disk.
FOREIGN_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    struct.error,
    OSError,
    EOFError,
    UnicodeError,
    KeyError,
    IndexError,
    zlib.error,
    ValueError,
    OverflowError,
    NotImplementedError,
)


@contextlib.contextmanager
def translated_errors(
    archive: str, action: str, record: str | None = None
) -> Iterator[None]:
    """Re-raise any stdlib error from the block as an ArchiveError naming *archive*."""
    try:
        yield
    except HermeticError:
        raise
    except FOREIGN_ERRORS as exc:
        detail = str(exc) or type(exc).__name__
        raise ArchiveError(
            f"{action}: {detail}", archive=archive, record=record
        ) from exc


def _record_name_problem(name: str) -> str | None:
    """Say why *name* cannot be a record name relative to the archive folder, or None.

    >>> _record_name_problem("res/a.txt") is None
    True
    >>> _record_name_problem("a//b")
    'it has an empty path segment'
    >>> _record_name_problem("../evil")
    "it has a '.' or '..' segment"
    """
    if not name:
        return "it is empty"
    if name.startswith("/"):
        return "it is absolute"
    if "\\" in name:
        return "it contains a backslash"
    if "\0" in name:
        return "it contains a NUL character"
    segments = name.split("/")
    if "" in segments:
        return "it has an empty path segment"
    if "." in segments or ".." in segments:
        return "it has a '.' or '..' segment"
    return None


def check_record_name(name: str, archive: str) -> None:
    """Raise ArchiveFormatError unless *name* is a safe, addressable record name."""
    problem = _record_name_problem(name)
    if problem is not None:
        raise ArchiveFormatError(
            f"invalid record name: {problem}", archive=archive, record=name
        )


def as_str_path(path: str | os.PathLike[str], owner: str) -> str:
    """Return *path* as a str, refusing bytes paths with a TypeError."""
    name = os.fspath(path)
    if not isinstance(name, str):
        raise TypeError(f"{owner} expected a str path, got {type(name).__name__}")
    return name
