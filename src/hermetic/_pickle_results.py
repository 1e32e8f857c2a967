"""What a pickle scan returns, and the collector that gathers it.

:class:`Finding`, :class:`GlobalRef`, :class:`PersistentRef` and :class:`PickleScan`
are the public results (:mod:`hermetic._pickle_scan` re-exports them). ``Collector``
dedupes findings, counts global uses, caps what it keeps and freezes it all into a
:class:`PickleScan`; ``Budget`` is the opcode allowance a record's pickles share.

What it does not do: read pickle bytes. The machine in :mod:`hermetic._pickle_machine`
does that and reports here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._scan_rules import Severity, rate_global

__all__ = [
    "MAX_FINDINGS",
    "Budget",
    "Collector",
    "Finding",
    "GlobalRef",
    "PersistentRef",
    "PickleScan",
    "Use",
]

#: Distinct findings kept per pickle; the rest are counted in one last finding.
MAX_FINDINGS = 500


@dataclass(frozen=True)
class Finding:
    """One thing scan flags: how bad, a stable code, and where."""

    severity: Severity
    code: str
    message: str
    record: str | None = None
    offset: int | None = None
    opcode: str | None = None
    scope: str = "pickle"

    def to_dict(self) -> dict[str, object]:
        """Return the finding as JSON-ready data."""
        return {
            "severity": str(self.severity),
            "code": self.code,
            "message": self.message,
            "record": self.record,
            "offset": self.offset,
            "opcode": self.opcode,
            "scope": self.scope,
        }


@dataclass(frozen=True)
class GlobalRef:
    """A global a pickle names: loading imports *module* and looks up *name*."""

    module: str
    name: str
    record: str
    offset: int
    opcode: str
    called: bool
    count: int
    severity: Severity
    reason: str
    context: str = ""

    @property
    def qualified_name(self) -> str:
        """Return ``module.name``."""
        return f"{self.module}.{self.name}"

    def to_dict(self) -> dict[str, object]:
        """Return the reference as JSON-ready data."""
        return {
            "module": self.module,
            "name": self.name,
            "record": self.record,
            "offset": self.offset,
            "opcode": self.opcode,
            "called": self.called,
            "count": self.count,
            "severity": str(self.severity),
            "reason": self.reason,
            "context": self.context,
        }


@dataclass(frozen=True)
class PersistentRef:
    """A persistent id: a storage, a ``reduce_package`` call, or something unknown."""

    kind: str
    record: str
    offset: int
    context: str = ""
    storage_type: str | None = None
    key: str | None = None
    location: str | None = None
    numel: int | None = None
    loader: str | None = None

    def to_dict(self) -> dict[str, object]:
        """Return the id as JSON-ready data."""
        return {
            "kind": self.kind,
            "record": self.record,
            "offset": self.offset,
            "context": self.context,
            "storage_type": self.storage_type,
            "key": self.key,
            "location": self.location,
            "numel": self.numel,
            "loader": self.loader,
        }


@dataclass(frozen=True)
class PickleScan:
    """What one pickle record references, and what is wrong with it."""

    record: str
    size: int
    protocol: int | None
    opcodes: int
    complete: bool
    malformed: bool
    globals: tuple[GlobalRef, ...]
    persistent_ids: tuple[PersistentRef, ...]
    findings: tuple[Finding, ...]

    @property
    def max_severity(self) -> Severity:
        """Return the worst severity among the findings (INFO if none)."""
        return max((f.severity for f in self.findings), default=Severity.INFO)

    def to_dict(self) -> dict[str, object]:
        """Return the scan as JSON-ready data."""
        return {
            "record": self.record,
            "size": self.size,
            "protocol": self.protocol,
            "opcodes": self.opcodes,
            "complete": self.complete,
            "malformed": self.malformed,
            "globals": [g.to_dict() for g in self.globals],
            "persistent_ids": [p.to_dict() for p in self.persistent_ids],
            "findings": [f.to_dict() for f in self.findings],
        }


class Budget:
    """Opcodes left to read, shared by a record's pickle and its nested pickles."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit


@dataclass
class Use:
    """A global as it is being collected (frozen into a GlobalRef at the end)."""

    offset: int
    opcode: str
    severity: Severity
    reason: str
    called: bool = False
    count: int = 1


class Collector:
    """Gathers globals, persistent ids and findings for one record."""

    def __init__(self, record: str, budget: Budget) -> None:
        self.record = record
        self.budget = budget
        self.uses: dict[tuple[str, str, str], Use] = {}
        self.persistent: list[PersistentRef] = []
        self.findings: dict[tuple[str, str], Finding] = {}
        self.suppressed: list[Severity] = []
        self.malformed = False
        self.opcodes = 0

    def add(
        self,
        severity: Severity,
        code: str,
        message: str,
        offset: int | None,
        opcode: str | None = None,
    ) -> None:
        """Record a finding once per (code, message)."""
        key = (code, message)
        if key in self.findings:
            return
        if len(self.findings) >= MAX_FINDINGS:
            self.suppressed.append(severity)
            return
        self.findings[key] = Finding(
            severity, code, message, self.record, offset, opcode
        )

    def use(
        self, module: str, name: str, context: str, offset: int, opcode: str
    ) -> tuple[str, str, str]:
        """Count one reference to ``module.name`` and return its key."""
        key = (module, name, context)
        known = self.uses.get(key)
        if known is not None:
            known.count += 1
            return key
        severity, reason = rate_global(module, name)
        self.uses[key] = Use(offset, opcode, severity, reason)
        if severity > Severity.INFO:
            where = f" ({context})" if context else ""
            self.add(
                severity,
                "global",
                f"{opcode} {module}.{name}{where}: {reason}",
                offset,
                opcode,
            )
        return key

    def merge(self, other: Collector, *, keep_malformation: bool) -> None:
        """Take over what *other* (a nested or trailing pickle) collected."""
        for key, use in other.uses.items():
            mine = self.uses.get(key)
            if mine is None:
                self.uses[key] = use
            else:
                mine.count += use.count
                mine.called = mine.called or use.called
        self.persistent.extend(other.persistent)
        for finding in other.findings.values():
            if finding.code == "malformed" and not keep_malformation:
                continue
            self.add(
                finding.severity,
                finding.code,
                finding.message,
                finding.offset,
                finding.opcode,
            )
        self.suppressed.extend(other.suppressed)
        self.opcodes += other.opcodes
        self.malformed = self.malformed or (other.malformed and keep_malformation)

    def result(self, size: int, protocol: int | None, complete: bool) -> PickleScan:
        """Freeze what was collected."""
        refs = tuple(
            GlobalRef(
                module, name, self.record, use.offset, use.opcode, use.called,
                use.count, use.severity, use.reason, context,
            )
            for (module, name, context), use in self.uses.items()
        )  # fmt: skip
        findings = list(self.findings.values())
        if self.suppressed:
            findings.append(
                Finding(
                    max(self.suppressed),
                    "findings-suppressed",
                    f"{len(self.suppressed)} more findings were not listed",
                    self.record,
                )
            )
        return PickleScan(
            record=self.record,
            size=size,
            protocol=protocol,
            opcodes=self.opcodes,
            complete=complete,
            malformed=self.malformed,
            globals=tuple(sorted(refs, key=lambda ref: (ref.context, ref.offset))),
            persistent_ids=tuple(self.persistent),
            findings=tuple(findings),
        )
