"""What :func:`~hermetic.scanner.scan` returns: a :class:`Report` and its parts.

:class:`RecordInfo`, :class:`ModuleInfo`, :class:`StorageInfo` and :class:`Report` are
frozen data with a ``to_dict`` for JSON. :mod:`hermetic.scanner` re-exports them, and
that is where users import them from.

What it does not do: read an archive or rate what it names. :mod:`hermetic.scanner`
reads the records and :mod:`hermetic._scan_rules` holds the severity table; this module
only holds the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._pickle_results import Finding, GlobalRef, PickleScan
from ._scan_rules import Severity

__all__ = ["ModuleInfo", "RecordInfo", "Report", "StorageInfo"]

#: Scopes whose findings do not matter to a data-only load: it runs no source and
#: takes its extern policy from the caller, not from the archive.
_CODE_SCOPES = frozenset({"source", "extern"})


@dataclass(frozen=True)
class RecordInfo:
    """One record: its size, how it is stored, and what scan took it for."""

    name: str
    size: int
    compressed_size: int | None
    method: str
    kind: str

    def to_dict(self) -> dict[str, object]:
        """Return the record as JSON-ready data."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class ModuleInfo:
    """A packaged module: importing it runs its source."""

    name: str
    record: str
    is_package: bool
    imports: tuple[str, ...]
    is_mock: bool

    def to_dict(self) -> dict[str, object]:
        """Return the module as JSON-ready data."""
        return {**self.__dict__, "imports": list(self.imports)}


@dataclass(frozen=True)
class StorageInfo:
    """A storage as the pickles describe it, and whether its record agrees."""

    key: str
    record: str
    storage_type: str | None
    dtype: str | None
    itemsize: int | None
    numel: int | None
    location: str | None
    size: int | None
    size_matches: bool
    referenced_by: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        """Return the storage as JSON-ready data."""
        return {**self.__dict__, "referenced_by": list(self.referenced_by)}


@dataclass(frozen=True)
class Report:
    """Everything :func:`scan` found, with findings ranked by severity."""

    archive: str
    archive_name: str
    format_version: int
    python_version: str | None
    records: tuple[RecordInfo, ...]
    modules: tuple[ModuleInfo, ...]
    externs: tuple[str, ...]
    mocks: tuple[str, ...]
    storages: tuple[StorageInfo, ...]
    pickles: tuple[PickleScan, ...]
    findings: tuple[Finding, ...]

    @property
    def globals(self) -> tuple[GlobalRef, ...]:
        """Return every global every pickle references."""
        return tuple(ref for pickle in self.pickles for ref in pickle.globals)

    @property
    def max_severity(self) -> Severity:
        """Return the worst severity among the findings (INFO when there are none)."""
        return max((f.severity for f in self.findings), default=Severity.INFO)

    @property
    def is_safe_to_load_data_only(self) -> bool:
        """Tell whether a data-only load should find nothing but plain data.

        True when every pickle is well-formed, names only ``info`` globals, hides no
        nested pickle, and the records and storages are consistent. Findings about
        packaged source and externs do not count: a data-only load runs no source.
        """
        return all(
            f.severity == Severity.INFO
            for f in self.findings
            if f.scope not in _CODE_SCOPES
        )

    def to_dict(self) -> dict[str, object]:
        """Return the report as JSON-ready data (``json.dumps`` takes it as is)."""
        return {
            "archive": self.archive,
            "archive_name": self.archive_name,
            "format_version": self.format_version,
            "python_version": self.python_version,
            "max_severity": str(self.max_severity),
            "is_safe_to_load_data_only": self.is_safe_to_load_data_only,
            "records": [r.to_dict() for r in self.records],
            "modules": [m.to_dict() for m in self.modules],
            "externs": list(self.externs),
            "mocks": list(self.mocks),
            "storages": [s.to_dict() for s in self.storages],
            "pickles": [p.to_dict() for p in self.pickles],
            "findings": [f.to_dict() for f in self.findings],
        }
