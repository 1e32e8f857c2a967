"""Look inside a package before loading it: ``scan(path) -> Report``.

The archive is read through :class:`~hermetic._archive_reader.ArchiveReader` (which
refuses malformed containers with :class:`~hermetic.ArchiveError`) and every pickle
with the opcode-level scanner of :mod:`hermetic._pickle_scan`. Nothing is unpickled,
imported or executed: packaged source is only parsed to list its imports.

The report lists the archive's facts, its records, its packaged modules and what each
imports, its externs and mocks, its storages (type, size, and whether the record
holds exactly ``numel * itemsize`` bytes), every global each pickle references, and
findings with a severity (the table is in :mod:`hermetic._scan_rules` and
``docs/security-scan.md``). The report's types are defined in
:mod:`hermetic._scan_report` and re-exported here; :mod:`hermetic._record_kinds` tells
records apart by name and first bytes.

What scan cannot see: what a packaged class or function does when called, strings
computed while loading, the contents of archives nested in other formats (7z, zip),
bytes appended after the ZIP's end record, and tampering that keeps every pickle
well-formed and data-only (edited weights): only signatures catch that.
"""

from __future__ import annotations

import os
import stat
import sys
from collections import defaultdict
from typing import BinaryIO

from ._archive_reader import ArchiveReader
from ._find_imports import ImportScanError, find_imports
from ._format import (
    DATA_DIR,
    EXTERN_MODULES_RECORD,
    MAX_EXTERN_MODULES_SIZE,
    PYTHON_VERSION_RECORD,
    storage_record,
)
from ._mock import STUB_SOURCE
from ._pickle_scan import (
    DEFAULT_MAX_OPCODES,
    Finding,
    GlobalRef,
    PersistentRef,
    PickleScan,
    looks_like_pickle,
    scan_pickle,
)
from ._record_kinds import COMPRESSED, decompress, record_kind
from ._scan_report import ModuleInfo, RecordInfo, Report, StorageInfo
from ._scan_rules import STORAGE_TYPES, Severity, rate_global, rate_module
from .errors import HermeticError
from .progress import Progress, as_progress

__all__ = [
    "DEFAULT_MAX_RECORD_SIZE",
    "Finding",
    "GlobalRef",
    "ModuleInfo",
    "PickleScan",
    "RecordInfo",
    "Report",
    "Severity",
    "StorageInfo",
    "scan",
]

#: Records larger than this are not read (their size alone is reported).
DEFAULT_MAX_RECORD_SIZE = 64 << 20
#: Packaged sources larger than this are not parsed.
_MAX_SOURCE_SIZE = 8 << 20
#: Resources up to this size are read whole and tried as (protocol 0/1) pickles.
_MAX_PROBE_SIZE = 1 << 20
#: Bytes read from other records to recognise a pickle or compressed data.
_SNIFF_SIZE = 64
#: A deflated record this much smaller than its data is reported as a bomb risk.
_BOMB_RATIO = 200
_BOMB_MIN_SIZE = 16 << 20
#: Modules torch.package and hermetic let every package import (and torch.package
#: lists anyway): naming them grants nothing.
_IMPLICIT_EXTERNS = frozenset({"builtins", "numpy", "numpy.core"})


def scan(
    path_or_file: str | os.PathLike[str] | BinaryIO | ArchiveReader,
    *,
    max_record_size: int = DEFAULT_MAX_RECORD_SIZE,
    max_opcodes: int = DEFAULT_MAX_OPCODES,
    progress: Progress | bool | None = None,
) -> Report:
    """Read a package archive and report what loading it would do, running nothing.

    Args:
        path_or_file: an archive path, an unzipped package folder, a seekable binary
            file object, or an open ArchiveReader (left open).
        max_record_size: larger records are not read; a pickle that large is a
            finding (the scan cannot vouch for it).
        max_opcodes: opcodes read per pickle record, nested pickles included.
        progress: report the records scanned (``True`` for a bar on standard error
            when the scan outlasts a second, needs ``hermetic[rich]``).

    Raises:
        ArchiveError: the container itself is unreadable or malformed (overlapping
            or duplicate records, unsafe names, sizes that lie, not a ZIP).

    Example:
        >>> report = scan("model.pt")  # doctest: +SKIP
        >>> report.max_severity, report.is_safe_to_load_data_only  # doctest: +SKIP
        (<Severity.INFO: 0>, True)
    """
    bar = as_progress(progress)
    if isinstance(path_or_file, ArchiveReader):
        return _Scan(path_or_file, max_record_size, max_opcodes, bar).run()
    with ArchiveReader(path_or_file) as reader:
        return _Scan(reader, max_record_size, max_opcodes, bar).run()


class _Scan:
    """One scan of one archive."""

    def __init__(
        self,
        reader: ArchiveReader,
        max_size: int,
        max_opcodes: int,
        progress: Progress | None = None,
    ) -> None:
        self.reader = reader
        self.progress = progress
        self.max_size = max_size
        self.max_opcodes = max_opcodes
        self.findings: list[Finding] = []
        self.pickles: list[PickleScan] = []

    def run(self) -> Report:
        reader = self.reader
        names = reader.record_names()
        externs = self._externs()
        records = [self._record(name) for name in names]
        self._check_names(names)
        modules = self._modules(names)
        if self.progress is not None:
            self.progress.start(f"scanning {reader.name}", len(records))
        try:
            for record in records:
                self._scan_content(record)
                if self.progress is not None:
                    self.progress.advance(1)
        finally:
            if self.progress is not None:
                self.progress.stop()
        storages = self._storages(names)
        findings = [*self.findings]
        for pickle in self.pickles:
            findings.extend(pickle.findings)
        findings.sort(key=lambda f: (-f.severity, f.record or "", f.offset or 0))
        return Report(
            archive=reader.name,
            archive_name=reader.archive_name,
            format_version=reader.version,
            python_version=self._python_version(),
            records=tuple(records),
            modules=tuple(modules),
            externs=tuple(externs),
            mocks=tuple(m.name for m in modules if m.is_mock),
            storages=tuple(storages),
            pickles=tuple(self.pickles),
            findings=tuple(findings),
        )

    def _add(
        self,
        severity: Severity,
        code: str,
        message: str,
        record: str | None = None,
        scope: str = "record",
    ) -> None:
        self.findings.append(Finding(severity, code, message, record, scope=scope))

    def _read(
        self, name: str, limit: int, scope: str, severity: Severity = Severity.MEDIUM
    ) -> bytes | None:
        """Return record *name*, or None after a finding if it cannot be read.

        A record over *limit* is reported with *severity* (HIGH where loaders would
        read it anyway, so scan cannot vouch for it).
        """
        size = self.reader.record_size(name)
        if size > limit:
            self._add(
                severity,
                "not-scanned",
                f"{size} bytes, more than the {limit} scan reads; not scanned",
                name,
                scope,
            )
            return None
        try:
            return self.reader.read(name)
        except HermeticError as exc:
            self._add(Severity.HIGH, "unreadable", str(exc), name, scope)
            return None

    # -- facts -------------------------------------------------------------------------

    def _python_version(self) -> str | None:
        if not self.reader.has_record(PYTHON_VERSION_RECORD):
            return None
        raw = self._read(PYTHON_VERSION_RECORD, 256, "archive")
        if raw is None:
            return None
        text = raw.decode("utf-8", "replace").strip()
        if not text.isprintable():
            self._add(
                Severity.MEDIUM,
                "bad-metadata",
                "the Python version holds control characters",
                PYTHON_VERSION_RECORD,
            )
            return text.encode("unicode_escape").decode("ascii")
        return text

    def _externs(self) -> list[str]:
        if not self.reader.has_record(EXTERN_MODULES_RECORD):
            self._add(
                Severity.HIGH,
                "not-a-package",
                "no record lists the extern modules, so loaders refuse the archive",
                EXTERN_MODULES_RECORD,
                "archive",
            )
            return []
        raw = self._read(
            EXTERN_MODULES_RECORD, MAX_EXTERN_MODULES_SIZE, "archive", Severity.HIGH
        )
        if raw is None:
            return []
        try:
            names = [name for name in raw.decode("utf-8").splitlines() if name]
        except UnicodeDecodeError:
            self._add(
                Severity.HIGH,
                "bad-metadata",
                "the extern list is not UTF-8",
                EXTERN_MODULES_RECORD,
                "archive",
            )
            return []
        for name in names:
            self._check_extern(name)
        return names

    def _check_extern(self, name: str) -> None:
        if name in _IMPLICIT_EXTERNS:
            return  # loaders allow these whatever the list says
        row = rate_module(name)
        if row is not None and row[0] >= Severity.HIGH:
            self._add(
                Severity.HIGH,
                "extern-grant",
                f"the archive asks to use the host's {name!r} ({row[1]}); an "
                "extern list is a request, the loader decides",
                EXTERN_MODULES_RECORD,
                "extern",
            )
        elif any(not part.isidentifier() for part in name.split(".")):
            self._add(
                Severity.MEDIUM,
                "extern-grant",
                f"extern {name!r} is not a module name",
                EXTERN_MODULES_RECORD,
                "extern",
            )

    # -- records -----------------------------------------------------------------------

    def _record(self, name: str) -> RecordInfo:
        info = self.reader.record_info(name)
        size = self.reader.record_size(name)
        if info is None:
            return RecordInfo(name, size, None, "file", record_kind(name))
        method = {0: "stored", 8: "deflated"}.get(info.compress_type, "other")
        record = RecordInfo(name, size, info.compress_size, method, record_kind(name))
        ratio = size / max(info.compress_size, 1)
        if method == "deflated" and size >= _BOMB_MIN_SIZE and ratio > _BOMB_RATIO:
            self._add(
                Severity.MEDIUM,
                "compression-bomb",
                f"{info.compress_size} compressed bytes expand to {size} "
                f"({ratio:.0f}:1); reading it costs that much memory",
                name,
            )
        if stat.S_ISLNK(info.external_attr >> 16):
            self._add(
                Severity.MEDIUM,
                "link-member",
                "the entry is marked as a symbolic link (never followed here, but "
                "extracting tools may)",
                name,
            )
        return record

    def _check_names(self, names: list[str]) -> None:
        seen: dict[str, str] = {}
        for name in names:
            if not name.isprintable():
                shown = name.encode("unicode_escape").decode("ascii")
                self._add(
                    Severity.MEDIUM,
                    "bad-name",
                    f"record name {shown} holds control characters (terminal escapes?)",
                    None,
                )
            folded = name.casefold()
            if folded in seen:
                self._add(
                    Severity.MEDIUM,
                    "case-collision",
                    f"records {seen[folded]!r} and {name!r} differ only by case; "
                    "extracted on a case-insensitive file system, one hides the other",
                    name,
                )
            seen.setdefault(folded, name)

    # -- packaged source ---------------------------------------------------------------

    def _modules(self, names: list[str]) -> list[ModuleInfo]:
        modules: list[ModuleInfo] = []
        importers: dict[str, list[str]] = defaultdict(list)
        for name in names:
            if not name.endswith(".py") or name.startswith(f"{DATA_DIR}/"):
                continue
            module = self._module(name)
            if module is None:
                continue
            modules.append(module)
            for imported in module.imports:
                importers[imported].append(module.name)
        for imported, by in importers.items():
            target, _, attribute = imported.partition(":")
            rated = rate_global(target, attribute) if attribute else rate_module(target)
            if rated is None or rated[0] < Severity.HIGH:
                continue
            shown = ", ".join(by[:5]) + (
                f" and {len(by) - 5} more" if len(by) > 5 else ""
            )
            spelled = f"{target}.{attribute}" if attribute else target
            self._add(
                Severity.MEDIUM,
                "source-import",
                f"packaged source imports {spelled} ({rated[1]}): {shown}; it runs "
                "when such a module is imported",
                None,
                "source",
            )
        self._check_shadowing(modules)
        return modules

    def _module(self, record: str) -> ModuleInfo | None:
        parts = record[: -len(".py")].split("/")
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        if not parts:
            return None
        name = ".".join(parts)
        source = self._read(record, _MAX_SOURCE_SIZE, "source")
        if source is None:
            return ModuleInfo(name, record, is_package, (), is_mock=False)
        is_mock = source == STUB_SOURCE.encode("utf-8")
        return ModuleInfo(
            name, record, is_package, self._imports(source, name, record, is_package),
            is_mock,
        )  # fmt: skip

    def _imports(
        self, source: bytes, name: str, record: str, is_package: bool
    ) -> tuple[str, ...]:
        try:
            pairs = find_imports(source, name, is_package=is_package)
        except (ImportScanError, ValueError, MemoryError, RecursionError) as exc:
            self._add(
                Severity.MEDIUM,
                "unparsable-source",
                f"the source cannot be parsed ({exc}); its imports are unknown",
                record,
                "source",
            )
            return ()
        found = dict.fromkeys(
            f"{module}:{attribute}" if attribute else module
            for module, attribute in pairs
        )
        return tuple(found)

    def _check_shadowing(self, modules: list[ModuleInfo]) -> None:
        stdlib: frozenset[str] = getattr(sys, "stdlib_module_names", frozenset())
        for module in modules:
            top = module.name.partition(".")[0]
            if top in stdlib and "." not in module.name:
                self._add(
                    Severity.MEDIUM,
                    "shadowed-module",
                    f"the archive packages its own {top!r}, which its code and "
                    "pickles get instead of the standard library's",
                    module.record,
                    "source",
                )

    # -- pickles -----------------------------------------------------------------------

    def _scan_content(self, record: RecordInfo) -> None:
        if record.kind == "pickle":
            data = self._read(record.name, self.max_size, "pickle", Severity.HIGH)
            if data is not None:
                self.pickles.append(self._scan_pickle(data, record.name))
        elif record.kind in ("storage", "resource"):
            self._probe(record)

    def _scan_pickle(self, data: bytes, name: str) -> PickleScan:
        return scan_pickle(data, name, max_opcodes=self.max_opcodes)

    def _probe(self, record: RecordInfo) -> None:
        """Look for pickles and compressed data hidden under other names."""
        try:
            head = self.reader.read_prefix(record.name, _SNIFF_SIZE)
        except HermeticError as exc:
            self._add(Severity.HIGH, "unreadable", str(exc), record.name)
            return
        method = next((m for magic, m in COMPRESSED if head.startswith(magic)), None)
        if looks_like_pickle(head):
            data = self._read(record.name, self.max_size, "pickle", Severity.HIGH)
            if data is not None:
                self._hidden(self._scan_pickle(data, record.name), record.name, "")
        elif method is not None:
            self._compressed(record, method)
        elif record.kind == "resource" and record.size <= _MAX_PROBE_SIZE:
            data = self._read(record.name, _MAX_PROBE_SIZE, "record")
            if data is not None:
                result = self._scan_pickle(data, record.name)
                if result.complete and not result.malformed and result.globals:
                    self._hidden(result, record.name, "")

    def _hidden(self, result: PickleScan, name: str, how: str) -> None:
        self.pickles.append(result)
        self._add(
            Severity.MEDIUM,
            "hidden-pickle",
            f"the record holds a pickle{how} under a name that does not say so",
            name,
            "pickle",
        )

    def _compressed(self, record: RecordInfo, method: str) -> None:
        data = None
        if method in ("gzip", "zlib", "bzip2", "xz"):
            raw = self._read(record.name, self.max_size, "record")
            data = None if raw is None else decompress(raw, method, self.max_size)
        if data is not None and looks_like_pickle(data):
            self._hidden(
                self._scan_pickle(data, record.name), record.name, f" ({method})"
            )
            return
        if data is None:
            self._add(
                Severity.MEDIUM,
                "compressed",
                f"the record holds {method} data, which scan does not look inside",
                record.name,
            )

    # -- storages ----------------------------------------------------------------------

    def _storages(self, names: list[str]) -> list[StorageInfo]:
        by_key: dict[str, list[PersistentRef]] = defaultdict(list)
        for pickle in self.pickles:
            for ref in pickle.persistent_ids:
                if ref.kind == "storage" and ref.key is not None:
                    by_key[ref.key].append(ref)
        storages = [self._storage(key, refs) for key, refs in by_key.items()]
        referenced = {s.record for s in storages}
        unused = [
            n for n in names if record_kind(n) == "storage" and n not in referenced
        ]
        if unused:
            self._add(
                Severity.INFO,
                "unused-storage",
                f"{len(unused)} storage records are not referenced by any pickle "
                f"(first: {unused[0]!r})",
                None,
                "storage",
            )
        return storages

    def _storage(self, key: str, refs: list[PersistentRef]) -> StorageInfo:
        first = refs[0]
        record = storage_record(key)
        dtype, itemsize = STORAGE_TYPES.get(first.storage_type or "", (None, None))
        size = self.reader.record_size(record) if self._has(record) else None
        expected = (
            first.numel * itemsize
            if first.numel is not None and itemsize is not None
            else None
        )
        matches = size is not None and expected is not None and size == expected
        variants = {(r.storage_type, r.numel) for r in refs}
        if len(variants) > 1:
            self._add(
                Severity.MEDIUM,
                "storage-aliasing",
                f"storage {key} is named with {len(variants)} different types or "
                "sizes; loaders keep the first and reinterpret the bytes",
                record,
                "storage",
            )
        if size is None and key.isascii() and key.isdigit():
            self._add(
                Severity.HIGH,
                "missing-storage",
                f"a pickle refers to storage {key}, whose record does not exist",
                record,
                "storage",
            )
        elif size is not None and not matches and expected is not None:
            self._add(
                Severity.HIGH,
                "storage-size",
                f"storage {key} should hold {first.numel} x {itemsize} = {expected} "
                f"bytes of {dtype}, but its record holds {size}",
                record,
                "storage",
            )
        return StorageInfo(
            key, record, first.storage_type, dtype, itemsize, first.numel,
            first.location, size, matches, tuple(dict.fromkeys(r.record for r in refs)),
        )  # fmt: skip

    def _has(self, record: str) -> bool:
        try:
            return self.reader.has_record(record)
        except HermeticError:
            return False
