"""What a record of a package is, told from its name or its first bytes.

:func:`record_kind` sorts records by name (metadata, source, storage, pickle, resource),
``COMPRESSED`` lists the magic numbers of compressed formats, and :func:`decompress`
inflates at most a given number of bytes. :mod:`hermetic.scanner` uses them to decide
what to read and how.

What it does not do: read an archive, or trust a name. A record is only classified
here; scan still looks inside resources and storages for pickles under other names.
"""

from __future__ import annotations

import bz2
import lzma
import zlib

from ._format import (
    BYTEORDER_RECORD,
    DATA_DIR,
    EXTERN_MODULES_RECORD,
    LEGACY_VERSION_RECORD,
    PYTHON_VERSION_RECORD,
    SERIALIZATION_ID_RECORD,
    VERSION_RECORD,
)

__all__ = ["COMPRESSED", "decompress", "record_kind"]

_METADATA = frozenset(
    {
        VERSION_RECORD,
        LEGACY_VERSION_RECORD,
        EXTERN_MODULES_RECORD,
        PYTHON_VERSION_RECORD,
        SERIALIZATION_ID_RECORD,
        BYTEORDER_RECORD,
    }
)
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".pt", ".pth", ".p", ".pk", ".ckpt", ".dill")
COMPRESSED = (
    (b"\x1f\x8b", "gzip"),
    (b"\x78\x01", "zlib"),
    (b"\x78\x5e", "zlib"),
    (b"\x78\x9c", "zlib"),
    (b"\x78\xda", "zlib"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"PK\x03\x04", "zip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)


def record_kind(name: str) -> str:
    """Say what a record is by its name alone.

    >>> names = ("a/b.py", ".data/0.storage", "m/x.pkl", ".data/version")
    >>> [record_kind(n) for n in names]
    ['source', 'storage', 'pickle', 'metadata']
    """
    if name in _METADATA:
        return "metadata"
    if name.endswith(".py"):
        return "source"
    if name.startswith(f"{DATA_DIR}/") and name.endswith(".storage"):
        return "storage"
    if name.endswith(_PICKLE_SUFFIXES):
        return "pickle"
    return "resource"


def decompress(raw: bytes, method: str, limit: int) -> bytes | None:
    """Return at most *limit* decompressed bytes of *raw*, or None if it fails."""
    try:
        if method in ("gzip", "zlib"):
            wbits = 31 if method == "gzip" else 15
            return zlib.decompressobj(wbits).decompress(raw, limit)
        if method == "bzip2":
            return bz2.BZ2Decompressor().decompress(raw, limit)
        return lzma.LZMADecompressor().decompress(raw, limit)
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError):
        return None
