"""Sort an archive's records into modules, pickles, storages, resources and metadata.

Everything here reads record names and bytes through :class:`ArchiveReader`; no
packaged code is imported and no pickle is loaded.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from .._archive_reader import ArchiveReader
from .._format import (
    BYTEORDER_RECORD,
    DATA_DIR,
    EXTERN_MODULES_RECORD,
    LEGACY_VERSION_RECORD,
    PYTHON_VERSION_RECORD,
)

__all__ = ["Contents", "ModuleEntry", "load_contents", "record_digest"]

_STORAGE = re.compile(rf"{re.escape(DATA_DIR)}/([^/]+)\.storage")
_MOCK_STUB_PREFIX = b"from _mock import"
_PICKLE_SUFFIXES = (".pkl", ".pickle")
#: Records this large are not read just to see whether they hold a pickle.
_MAX_SNIFF_READ = 64 << 20


@dataclass
class ModuleEntry:
    """One module whose source (or mock stub) the archive stores."""

    name: str
    record: str
    is_package: bool
    size: int
    mocked: bool


@dataclass
class Contents:
    """Every record of one archive, by kind."""

    reader: ArchiveReader
    sizes: dict[str, int]
    modules: dict[str, ModuleEntry] = field(default_factory=dict)
    externs: list[str] = field(default_factory=list)
    pickles: list[str] = field(default_factory=list)
    storages: dict[str, str] = field(default_factory=dict)  # key -> record
    resources: list[str] = field(default_factory=list)
    metadata: list[str] = field(default_factory=list)

    @property
    def python_version(self) -> str | None:
        """The Python version the archive says it was made with."""
        return self.text(PYTHON_VERSION_RECORD)

    @property
    def byteorder(self) -> str | None:
        """The byte order of the storages, if recorded."""
        return self.text(BYTEORDER_RECORD)

    def text(self, record: str) -> str | None:
        """Return a small metadata record as stripped text, or None if absent."""
        if record not in self.sizes:
            return None
        return self.reader.read(record).decode("utf-8", "replace").strip()

    def size_of(self, records: list[str] | dict[str, str]) -> int:
        """Total size of *records* (for a dict, of its values)."""
        names = records.values() if isinstance(records, dict) else records
        return sum(self.sizes[name] for name in names)


def load_contents(reader: ArchiveReader) -> Contents:
    """Classify every record of *reader*'s archive."""
    names = reader.record_names()
    contents = Contents(reader, {name: reader.record_size(name) for name in names})
    externs = contents.text(EXTERN_MODULES_RECORD) or ""
    contents.externs = [line for line in externs.splitlines() if line.strip()]
    for name in names:
        _classify(contents, name)
    if not any(module.mocked for module in contents.modules.values()):
        return contents
    support = contents.modules.pop("_mock", None)
    if support is not None:
        contents.metadata.append(support.record)
    return contents


def _classify(contents: Contents, name: str) -> None:
    storage = _STORAGE.fullmatch(name)
    if storage is not None:
        contents.storages[storage.group(1)] = name
    elif name.startswith(f"{DATA_DIR}/") or name in (
        BYTEORDER_RECORD,
        LEGACY_VERSION_RECORD,
    ):
        contents.metadata.append(name)
    elif name.endswith(".py"):
        entry = _module_entry(contents, name)
        contents.modules[entry.name] = entry
    elif _is_pickle(contents, name):
        contents.pickles.append(name)
    else:
        contents.resources.append(name)


def _module_entry(contents: Contents, record: str) -> ModuleEntry:
    path = record[: -len(".py")]
    is_package = path == "__init__" or path.endswith("/__init__")
    if is_package:
        path = path[: -len("__init__")].rstrip("/")
    size = contents.sizes[record]
    mocked = size < 1024 and contents.reader.read(record).startswith(_MOCK_STUB_PREFIX)
    return ModuleEntry(path.replace("/", "."), record, is_package, size, mocked)


def _is_pickle(contents: Contents, name: str) -> bool:
    """Tell a pickle by its name or by its protocol 2-5 header."""
    if name.endswith(_PICKLE_SUFFIXES):
        return True
    head = _peek(contents, name)
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def _peek(contents: Contents, name: str) -> bytes:
    reader = contents.reader
    mapping = reader.mapping()
    span = reader.record_span(name) if mapping is not None else None
    if mapping is not None and span is not None:
        start, size = span
        return bytes(mapping[start : start + min(size, 2)])
    if contents.sizes[name] > _MAX_SNIFF_READ:
        return b""
    return reader.read(name)[:2]


def record_digest(reader: ArchiveReader, name: str) -> str:
    """Return the SHA-256 of record *name* as hex."""
    return hashlib.sha256(reader.read(name)).hexdigest()
