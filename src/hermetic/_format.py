"""The only place the archive's record names and format numbers are spelled.

A package is a ZIP archive whose records all live under one top-level folder (the
*archive name*); the names below are relative to that folder. This module does no I/O.
"""

from __future__ import annotations

import os
import re

__all__ = [
    "ALIGNMENT",
    "BUFFER_ARCHIVE_NAME",
    "BYTEORDER_RECORD",
    "DATA_DIR",
    "ENVIRONMENT_RECORD",
    "EXTERN_MODULES_RECORD",
    "FORMAT_VERSION",
    "LEGACY_VERSION_RECORD",
    "MANIFEST_RECORD",
    "MAX_EXTERN_MODULES_SIZE",
    "MAX_READ_VERSION",
    "MIN_READ_VERSION",
    "PYTHON_VERSION_RECORD",
    "SERIALIZATION_ID_RECORD",
    "SIGNATURE_RECORD",
    "SIGNATURE_SUFFIX",
    "VERSION_RECORD",
    "archive_name_for_path",
    "module_record",
    "resource_record",
    "storage_record",
]

#: The format version torch.package writes (and so do we) in ``.data/version``.
FORMAT_VERSION = 6
#: Versions a reader accepts, as torch's reader does.
MIN_READ_VERSION = 1
MAX_READ_VERSION = 10
#: Every record's data starts at a multiple of this many bytes (mmap-friendly).
ALIGNMENT = 64

DATA_DIR = ".data"
VERSION_RECORD = ".data/version"
LEGACY_VERSION_RECORD = "version"
EXTERN_MODULES_RECORD = ".data/extern_modules"
PYTHON_VERSION_RECORD = ".data/python_version"
SERIALIZATION_ID_RECORD = ".data/serialization_id"
BYTEORDER_RECORD = "byteorder"
#: The extern list is read whole when an archive is opened, so it is capped: 4 MiB
#: names some 100,000 modules, and a deflated "\n" * 2**30 cannot exhaust memory.
MAX_EXTERN_MODULES_SIZE = 4 << 20
#: SHA-256 of every other record (but the signature), written last by hermetic.
#: Under ``.data/<subfolder>/``, so torch.package's importer never sees it.
MANIFEST_RECORD = ".data/hermetic/manifest.json"
#: The Python, platform and extern distribution versions the archive was made with.
ENVIRONMENT_RECORD = ".data/hermetic/environment.json"
#: An embedded ed25519 signature of the manifest (``hermetic.sign``).
SIGNATURE_RECORD = ".data/hermetic/signature.json"
#: A detached signature of ``model.pt`` is ``model.pt.sig``.
SIGNATURE_SUFFIX = ".sig"
#: The top-level folder of an archive written to a file object instead of a path.
BUFFER_ARCHIVE_NAME = "archive"

_SEPARATORS = re.compile(r"[/\\]")


def storage_record(key: object) -> str:
    """Name the record that holds the bytes of storage *key*.

    >>> storage_record(0)
    '.data/0.storage'
    """
    return f"{DATA_DIR}/{key}.storage"


def archive_name_for_path(path: str | os.PathLike[str]) -> str:
    """Return the top-level folder name torch.package uses for an archive at *path*.

    The base name with its last extension removed; both separators count.

    >>> archive_name_for_path("models/my.model.v1.pt")
    'my.model.v1'
    >>> archive_name_for_path("win\\\\style.pt")
    'style'
    >>> archive_name_for_path("noext")
    'noext'
    """
    base = _SEPARATORS.split(os.fspath(path))[-1]
    stem, dot, _ = base.rpartition(".")
    return stem if dot else base


def module_record(module_name: str, *, is_package: bool) -> str:
    """Name the record holding a module's source.

    >>> module_record("a.b", is_package=True)
    'a/b/__init__.py'
    >>> module_record("a.b", is_package=False)
    'a/b.py'
    """
    path = module_name.replace(".", "/")
    return f"{path}/__init__.py" if is_package else f"{path}.py"


def resource_record(package: str, resource: str) -> str:
    """Name the record of *resource* inside *package* (no validation here).

    >>> resource_record("res.sub", "a.txt")
    'res/sub/a.txt'
    """
    return f"{package.replace('.', '/')}/{resource}"
