"""Read a pickle opcode by opcode and report what loading it would import and call.

Nothing is unpickled, imported or called. A small stack machine follows the values a
loader would build, far enough to name every global (through the memo, through
computed ``STACK_GLOBAL`` operands, for ``GLOBAL``/``INST``/``OBJ``/``REDUCE``/
``NEWOBJ``/``BUILD``), every persistent id and every nested pickle. The memo follows
the loaders' own rules (``MEMOIZE`` stores at the memo's current length), so mixing
``BINPUT`` and ``MEMOIZE`` cannot make it see a different program than they run.

It is bounded for hostile input: work is linear in the record's size and capped by an
opcode budget, every length is checked against the bytes left before anything is
sliced, strings are decoded only while short, and findings are capped per pickle. A
malformed pickle is a finding, never an exception.

What it does not do: run the program. It cannot know what a packaged class does when
called, what a computed string evaluates to, or what a copyreg extension code names in
the loading process; each of those is reported as a finding instead.
"""

from __future__ import annotations

import _codecs  # escape_decode: how loaders read protocol 0 STRING arguments
import pickletools
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from ._scan_rules import NESTED_LOADERS, STORAGE_TYPES, Severity, rate_global

__all__ = [
    "DEFAULT_MAX_OPCODES",
    "Finding",
    "GlobalRef",
    "PersistentRef",
    "PickleScan",
    "looks_like_pickle",
    "scan_pickle",
]

#: Opcodes read before a scan gives up (a few seconds of work); shared with nested
#: pickles, so they cannot multiply it.
DEFAULT_MAX_OPCODES = 5_000_000
#: Distinct findings kept per pickle; the rest are counted in one last finding.
MAX_FINDINGS = 500
#: Nested pickles inside nested pickles are followed this deep.
MAX_NESTING = 3
#: Strings longer than this are not decoded (no module name is that long).
_MAX_DECODED = 1 << 16
#: Decimal text longer than this is not converted (CPython refuses it too).
_MAX_DIGITS = 4300
_HIGHEST_PROTOCOL = 5
#: Torch's own reduce_package loaders (TorchScript and FX); they still run packaged
#: code, but are not an attacker's callable.
_KNOWN_PACKAGE_LOADERS = frozenset(
    {
        "torch.jit._script.unpackage_script_module",
        "torch.fx.graph_module.reduce_package_graph_module",
        "torch.fx.graph_module.reduce_deploy_graph_module",
    }
)
_OPNAMES = {ord(op.code): op.name for op in pickletools.opcodes}


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


def looks_like_pickle(data: bytes | memoryview) -> bool:
    """Tell whether *data* starts as a protocol 2+ pickle does.

    >>> looks_like_pickle(b"\\x80\\x04N."), looks_like_pickle(b"PK\\x03\\x04")
    (True, False)
    """
    return len(data) >= 3 and data[0] == 0x80 and 2 <= data[1] <= _HIGHEST_PROTOCOL


def scan_pickle(
    data: bytes,
    record: str = "",
    *,
    max_opcodes: int = DEFAULT_MAX_OPCODES,
) -> PickleScan:
    """Report every global, persistent id and problem in the pickle *data*.

    Bytes after ``STOP`` are scanned too (loaders ignore them, but they may hide a
    second pickle). Never raises for any input.

    Example:
        >>> result = scan_pickle(b"cos\\nsystem\\n(S'id'\\ntR.", "evil.pkl")
        >>> [(g.qualified_name, g.called, str(g.severity)) for g in result.globals]
        [('os.system', True, 'critical')]
    """
    collector = _Collector(record, _Budget(max_opcodes))
    machine = _Machine(data, 0, collector, context="", depth=0)
    complete = machine.run()
    protocol = machine.protocol
    start = machine.pos
    while complete and start < len(data) and collector.budget.left > 0:
        collector.add(
            Severity.MEDIUM,
            "trailing-data",
            f"{len(data) - start} bytes follow STOP; loaders ignore them, but they "
            "may hide another pickle (scanned below)",
            start,
        )
        trailing = _Collector(record, collector.budget)
        after = _Machine(data, start, trailing, f"after STOP at byte {start}", 0)
        if not after.run():
            collector.merge(trailing, keep_malformation=False)
            break
        collector.merge(trailing, keep_malformation=True)
        start = after.pos
    return collector.result(len(data), protocol, complete)


# -- the machine --------------------------------------------------------------------


class _Budget:
    """Opcodes left to read, shared by a record's pickle and its nested pickles."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit


@dataclass
class _Use:
    """A global as it is being collected (frozen into a GlobalRef at the end)."""

    offset: int
    opcode: str
    severity: Severity
    reason: str
    called: bool = False
    count: int = 1


class _Collector:
    """Gathers globals, persistent ids and findings for one record."""

    def __init__(self, record: str, budget: _Budget) -> None:
        self.record = record
        self.budget = budget
        self.uses: dict[tuple[str, str, str], _Use] = {}
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
        self.uses[key] = _Use(offset, opcode, severity, reason)
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

    def merge(self, other: _Collector, *, keep_malformation: bool) -> None:
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


class _Malformed(Exception):
    """Stops the machine: the loaders would fail here too."""


class _Value:
    """What the stack holds: a kind, its data, and where it was made.

    Kinds: ``str`` (data: the text, or None when too long to decode), ``bytes``
    (a memoryview), ``num``, ``none``, ``global`` (a key of the collector), ``call``
    (callee, arguments, opcode), ``tuple`` (its items), ``list``/``dict``/``set``/
    ``frozenset``, ``persistent``, ``ext`` (a copyreg code), ``buffer``.
    """

    __slots__ = ("data", "kind", "offset")

    def __init__(self, kind: str, data: object, offset: int) -> None:
        self.kind = kind
        self.data = data
        self.offset = offset


#: Values a loader computes while loading: a string made from them is unknowable.
_COMPUTED = frozenset({"call", "global", "persistent", "ext", "buffer"})
_STOP = object()
#: Values REDUCE cannot take as its argument tuple (loaders raise TypeError).
# REDUCE arguments no loader can call with (not iterable). Other non-tuples (a list,
# a dict, a string) stop the C unpickler but not pure-Python ones, such as
# torch.package's, which call ``func(*args)`` with whatever iterable is there.
_NOT_ARGUMENTS = frozenset({"num", "none"})
_ODD_ARGUMENTS = frozenset({"list", "dict", "set", "frozenset", "str", "bytes"})


class _Machine:
    """Follows one pickle from *start* to its STOP (or to its first malformation)."""

    def __init__(
        self, data: bytes, start: int, collector: _Collector, context: str, depth: int
    ) -> None:
        self.data = data
        self.view = memoryview(data)
        self.pos = start
        self.collector = collector
        self.context = context
        self.depth = depth
        self.stack: list[_Value] = []
        self.metastack: list[list[_Value]] = []
        self.memo: dict[int, _Value] = {}
        self.protocol: int | None = None
        self.op_offset = start
        self.op_name = ""
        self.memo_bomb_reported = False
        #: Nested pickles scanned, by offset: True once passed to a loader.
        self.nested_seen: dict[int, bool] = {}
        #: Well-formed pickles in bytes values, reported at the end unless a loader
        #: takes them first (then they are reported with that context).
        self.pending: dict[int, tuple[_Collector, int, str]] = {}
        self.handlers = self._handler_table()

    # -- driving ---------------------------------------------------------------------

    def run(self) -> bool:
        """Run to STOP; False if the pickle is malformed or the budget ran out."""
        try:
            return self._run()
        finally:
            self._flush_nested()

    def _run(self) -> bool:
        data, end, handlers = self.data, len(self.data), self.handlers
        budget, collector = self.collector.budget, self.collector
        try:
            while True:
                if self.pos >= end:
                    raise _Malformed("the pickle ends without STOP (truncated)")
                if budget.left <= 0:
                    collector.add(
                        Severity.HIGH,
                        "budget-exceeded",
                        f"stopped after {budget.limit} opcodes; the rest of the "
                        "record was not scanned",
                        self.pos,
                    )
                    return False
                budget.left -= 1
                collector.opcodes += 1
                code = data[self.pos]
                self.op_offset = self.pos
                self.pos += 1
                handler = handlers.get(code)
                if handler is None:
                    raise _Malformed(f"unknown opcode byte 0x{code:02x}")
                self.op_name = _OPNAMES[code]
                if handler() is _STOP:
                    return True
        except _Malformed as exc:
            collector.malformed = True
            where = f" ({self.context})" if self.context else ""
            collector.add(
                Severity.HIGH,
                "malformed",
                f"malformed pickle at byte {self.op_offset}{where}: {exc}; loaders "
                "stop here, after running everything before it",
                self.op_offset,
                self.op_name or None,
            )
            return False

    def _handler_table(self) -> dict[int, Callable[[], object]]:
        table: dict[str, Callable[[], object]] = {
            "MARK": self._mark, "STOP": self._stop, "POP": self._pop_op,
            "POP_MARK": self._pop_mark, "DUP": self._dup, "FLOAT": self._float_text,
            "INT": self._int_text, "LONG": self._long_text,
            "BININT": lambda: self._int_fixed(4, signed=True),
            "BININT1": lambda: self._int_fixed(1, signed=False),
            "BININT2": lambda: self._int_fixed(2, signed=False),
            "LONG1": lambda: self._long_binary(self._uint(1)),
            "LONG4": lambda: self._long_binary(self._length(4, signed=True)),
            "NONE": lambda: self._push("none", None),
            "NEWTRUE": lambda: self._push("num", True),
            "NEWFALSE": lambda: self._push("num", False),
            "BINFLOAT": self._binfloat, "PERSID": self._persid,
            "BINPERSID": lambda: self._persistent(self._pop()),
            "REDUCE": self._reduce, "STRING": self._string_text,
            "BINSTRING": lambda: self._binstring(self._length(4, signed=True)),
            "SHORT_BINSTRING": lambda: self._binstring(self._uint(1)),
            "UNICODE": self._unicode_text,
            "BINUNICODE": lambda: self._unicode(self._length(4, signed=False)),
            "SHORT_BINUNICODE": lambda: self._unicode(self._uint(1)),
            "BINUNICODE8": lambda: self._unicode(self._length(8, signed=False)),
            "BINBYTES": lambda: self._bytes(self._length(4, signed=False)),
            "SHORT_BINBYTES": lambda: self._bytes(self._uint(1)),
            "BINBYTES8": lambda: self._bytes(self._length(8, signed=False)),
            "BYTEARRAY8": lambda: self._bytes(self._length(8, signed=False)),
            "APPEND": self._append, "APPENDS": self._appends, "BUILD": self._build,
            "DICT": self._dict, "LIST": lambda: self._from_mark("list"),
            "EMPTY_DICT": lambda: self._push("dict", None),
            "EMPTY_LIST": lambda: self._push("list", None),
            "EMPTY_TUPLE": lambda: self._push("tuple", ()),
            "EMPTY_SET": lambda: self._push("set", None),
            "SETITEM": self._setitem, "SETITEMS": self._setitems,
            "GET": lambda: self._memo_get(self._int_line("GET")),
            "BINGET": lambda: self._memo_get(self._uint(1)),
            "LONG_BINGET": lambda: self._memo_get(self._uint(4)),
            "PUT": lambda: self._memo_put(self._int_line("PUT")),
            "BINPUT": lambda: self._memo_put(self._uint(1)),
            "LONG_BINPUT": lambda: self._memo_put(self._uint(4)),
            "MEMOIZE": lambda: self._memo_put(len(self.memo)),
            "GLOBAL": self._global_text, "INST": self._inst, "OBJ": self._obj,
            "NEWOBJ": self._newobj, "NEWOBJ_EX": self._newobj_ex,
            "EXT1": lambda: self._ext(self._uint(1)),
            "EXT2": lambda: self._ext(self._uint(2)),
            "EXT4": lambda: self._ext(self._int_fixed_value(4)),
            "TUPLE": lambda: self._push("tuple", tuple(self._marked())),
            "TUPLE1": lambda: self._tuple_n(1), "TUPLE2": lambda: self._tuple_n(2),
            "TUPLE3": lambda: self._tuple_n(3), "PROTO": self._proto,
            "FRAME": self._frame, "ADDITEMS": self._additems,
            "FROZENSET": lambda: self._from_mark("frozenset"),
            "STACK_GLOBAL": self._stack_global, "NEXT_BUFFER": self._next_buffer,
            "READONLY_BUFFER": self._top,
        }  # fmt: skip
        codes = {name: code for code, name in _OPNAMES.items()}
        return {codes[name]: handler for name, handler in table.items()}

    # -- reading arguments -------------------------------------------------------------

    def _take(self, size: int) -> memoryview:
        """Return the next *size* bytes, refusing lengths past the end of the data."""
        left = len(self.data) - self.pos
        if size > left:
            raise _Malformed(
                f"{self.op_name} needs {size} bytes but only {left} remain "
                "(truncated, or a length that lies)"
            )
        chunk = self.view[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def _uint(self, size: int) -> int:
        return int.from_bytes(self._take(size), "little")

    def _int_fixed_value(self, size: int) -> int:
        return int.from_bytes(self._take(size), "little", signed=True)

    def _length(self, size: int, *, signed: bool) -> int:
        value = int.from_bytes(self._take(size), "little", signed=signed)
        if value < 0:
            raise _Malformed(f"{self.op_name} has a negative length {value}")
        return value

    def _line(self) -> bytes:
        """Return the bytes up to the next newline (which is consumed)."""
        end = self.data.find(b"\n", self.pos)
        if end < 0:
            raise _Malformed(f"{self.op_name} argument has no newline (truncated)")
        line = self.data[self.pos : end]
        self.pos = end + 1
        return line

    def _int_line(self, what: str) -> int:
        text = self._line()
        if len(text) > 20:
            raise _Malformed(f"{what} index {text[:20]!r}... is too long")
        try:
            value = int(text)
        except ValueError:
            raise _Malformed(f"{what} index {text!r} is not a number") from None
        if value < 0:
            raise _Malformed(f"negative {what} index {value}")
        return value

    # -- the stack ---------------------------------------------------------------------

    def _push(self, kind: str, data: object) -> None:
        self.stack.append(_Value(kind, data, self.op_offset))

    def _from_mark(self, kind: str) -> None:
        self._marked()
        self._push(kind, None)

    def _pop(self) -> _Value:
        if not self.stack:
            raise _Malformed(f"{self.op_name} pops from an empty stack")
        return self.stack.pop()

    def _top(self) -> _Value:
        if not self.stack:
            raise _Malformed(f"{self.op_name} needs a value but the stack is empty")
        return self.stack[-1]

    def _mark(self) -> None:
        self.metastack.append(self.stack)
        self.stack = []

    def _stop(self) -> object:
        self._pop()  # loaders return the top of the stack: there must be one
        return _STOP

    def _marked(self) -> list[_Value]:
        """Pop everything above the last MARK, and the MARK."""
        if not self.metastack:
            raise _Malformed(f"{self.op_name} needs a MARK but there is none")
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    def _pop_op(self) -> None:
        # As the loaders do: POP with nothing above the last MARK pops the MARK.
        if self.stack:
            self.stack.pop()
        else:
            self._marked()

    def _pop_mark(self) -> None:
        self._marked()

    def _dup(self) -> None:
        self.stack.append(self._top())

    def _tuple_n(self, count: int) -> None:
        if len(self.stack) < count:
            raise _Malformed(f"{self.op_name} needs {count} values on the stack")
        items = tuple(self.stack[-count:])
        del self.stack[-count:]
        self._push("tuple", items)

    # -- constants ---------------------------------------------------------------------

    def _int_fixed(self, size: int, *, signed: bool) -> None:
        value = int.from_bytes(self._take(size), "little", signed=signed)
        self._push("num", value)

    def _int_text(self) -> None:
        text = self._line()
        if text in (b"00", b"01"):
            self._push("num", text == b"01")
            return
        self._push("num", self._parse_int(text))

    def _long_text(self) -> None:
        text = self._line()
        self._push("num", self._parse_int(text[:-1] if text.endswith(b"L") else text))

    def _parse_int(self, text: bytes) -> int:
        if len(text) > _MAX_DIGITS:
            raise _Malformed(f"{self.op_name} has {len(text)} digits; loaders refuse")
        try:
            return int(text, 0)
        except ValueError:
            raise _Malformed(f"{self.op_name} argument is not an integer") from None

    def _long_binary(self, size: int) -> None:
        raw = self._take(size)
        value = int.from_bytes(raw, "little", signed=True) if size <= 64 else None
        self._push("num", value)

    def _float_text(self) -> None:
        text = self._line()
        try:
            value = float(text) if len(text) <= 64 else None
        except ValueError:
            raise _Malformed("FLOAT argument is not a number") from None
        self._push("num", value)

    def _binfloat(self) -> None:
        self._push("num", struct.unpack(">d", self._take(8))[0])

    def _text(self, raw: memoryview | bytes, encoding: str, errors: str) -> str | None:
        if len(raw) > _MAX_DECODED:
            return None
        try:
            return bytes(raw).decode(encoding, errors)
        except UnicodeDecodeError:
            raise _Malformed(f"{self.op_name} text is not valid {encoding}") from None

    def _unicode(self, size: int) -> None:
        self._push("str", self._text(self._take(size), "utf-8", "surrogatepass"))

    def _unicode_text(self) -> None:
        self._push("str", self._text(self._line(), "raw-unicode-escape", "strict"))

    def _binstring(self, size: int) -> None:
        # Loaders decode protocol 0-2 strings as ASCII (their default encoding).
        self._push("str", self._text(self._take(size), "ascii", "strict"))

    def _string_text(self) -> None:
        raw = self._line()
        if len(raw) < 2 or raw[0] != raw[-1] or raw[:1] not in (b"'", b'"'):
            raise _Malformed("STRING argument is not quoted")
        if len(raw) > _MAX_DECODED:
            self._push("str", None)
            return
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # invalid escapes only warn
                unescaped = _codecs.escape_decode(raw[1:-1])[0]
        except ValueError:
            raise _Malformed("STRING argument has a bad escape") from None
        self._push("str", self._text(unescaped, "ascii", "strict"))

    def _bytes(self, size: int) -> None:
        chunk = self._take(size)
        self._push("bytes", chunk)
        if looks_like_pickle(chunk):
            self._nested(chunk, self.op_offset, via=None)

    # -- the memo ----------------------------------------------------------------------

    def _memo_put(self, index: int) -> None:
        if index > len(self.data) and not self.memo_bomb_reported:
            self.memo_bomb_reported = True
            self.collector.add(
                Severity.HIGH,
                "memo-bomb",
                f"{self.op_name} stores memo slot {index}, more than the pickle has "
                f"bytes: CPython's C unpickler allocates {16 * index:,} bytes for it",
                self.op_offset,
                self.op_name,
            )
        self.memo[index] = self._top()

    def _memo_get(self, index: int) -> None:
        value = self.memo.get(index)
        if value is None:
            raise _Malformed(f"{self.op_name} reads memo slot {index}, never stored")
        self.stack.append(value)

    # -- globals -----------------------------------------------------------------------

    def _global(self, module: str, name: str, opcode: str) -> _Value:
        key = self.collector.use(module, name, self.context, self.op_offset, opcode)
        return _Value("global", key, self.op_offset)

    def _global_text(self) -> None:
        module, name = self._name_lines()
        self.stack.append(self._global(module, name, "GLOBAL"))

    def _name_lines(self) -> tuple[str, str]:
        module = self._text(self._line(), "utf-8", "strict")
        name = self._text(self._line(), "utf-8", "strict")
        if module is None or name is None:
            raise _Malformed(f"{self.op_name} names are too long to be importable")
        return module, name

    def _stack_global(self) -> None:
        name = self._pop()
        module = self._pop()
        if module.kind == "str" and name.kind == "str":
            if not isinstance(module.data, str) or not isinstance(name.data, str):
                raise _Malformed("STACK_GLOBAL names are too long to be importable")
            self.stack.append(self._global(module.data, name.data, "STACK_GLOBAL"))
            return
        if module.kind not in _COMPUTED and name.kind not in _COMPUTED:
            kinds = f"{module.kind} and {name.kind}"
            raise _Malformed(f"STACK_GLOBAL needs two str operands, got {kinds}")
        shown_module, shown_name = _describe(module), _describe(name)
        self.collector.add(
            Severity.CRITICAL,
            "computed-global",
            f"STACK_GLOBAL imports a name computed while loading: module "
            f"{shown_module}, name {shown_name}; it can reach any module and attribute",
            self.op_offset,
            "STACK_GLOBAL",
        )
        key = (f"<computed: {shown_module}>", shown_name, self.context)
        uses = self.collector.uses
        if key not in uses:
            uses[key] = _Use(
                self.op_offset, "STACK_GLOBAL", Severity.CRITICAL, "computed name"
            )
        self.stack.append(_Value("global", key, self.op_offset))

    def _ext(self, code: int) -> None:
        if code <= 0:
            raise _Malformed(f"{self.op_name} code {code} is not positive")
        self.collector.add(
            Severity.HIGH,
            "ext-code",
            f"{self.op_name} {code} names a global through copyreg's extension "
            "registry, which the loading process fills: scan cannot know which",
            self.op_offset,
            self.op_name,
        )
        key = ("<copyreg extension>", str(code), self.context)
        if key not in self.collector.uses:
            self.collector.uses[key] = _Use(
                self.op_offset, self.op_name, Severity.HIGH, "copyreg extension code"
            )
        self.stack.append(_Value("global", key, self.op_offset))

    # -- calls -------------------------------------------------------------------------

    def _reduce(self) -> None:
        args = self._pop()
        func = self._pop()
        if args.kind in _NOT_ARGUMENTS:
            raise _Malformed(f"REDUCE arguments are a {args.kind}, not a tuple")
        if args.kind in _ODD_ARGUMENTS:
            self.collector.add(
                Severity.MEDIUM,
                "odd-arguments",
                f"REDUCE arguments are a {args.kind}, not a tuple: the C unpickler "
                "refuses them, pure-Python unpicklers (torch.package's) call with "
                "their items",
                self.op_offset,
                "REDUCE",
            )
        self._call(func, args, "REDUCE")

    def _newobj(self) -> None:
        args = self._pop()
        cls = self._pop()
        self._call(cls, args, "NEWOBJ")

    def _newobj_ex(self) -> None:
        self._pop()  # keyword arguments
        args = self._pop()
        cls = self._pop()
        self._call(cls, args, "NEWOBJ_EX")

    def _inst(self) -> None:
        module, name = self._name_lines()
        args = self._marked()
        cls = self._global(module, name, "INST")
        self._call(cls, _Value("tuple", tuple(args), self.op_offset), "INST")

    def _obj(self) -> None:
        items = self._marked()
        if not items:
            raise _Malformed("OBJ has no class above its MARK")
        args = _Value("tuple", tuple(items[1:]), self.op_offset)
        self._call(items[0], args, "OBJ")

    def _call(self, func: _Value, args: _Value, opcode: str) -> None:
        if func.kind == "global" and isinstance(func.data, tuple):
            self.collector.uses[func.data].called = True
            qualified = f"{func.data[0]}.{func.data[1]}"
            if qualified in NESTED_LOADERS:
                self._nested_call(qualified, args)
        elif func.kind in ("call", "persistent", "ext", "buffer"):
            self.collector.add(
                Severity.HIGH,
                "indirect-call",
                f"{opcode} calls an object made while loading: {_describe(func)}",
                self.op_offset,
                opcode,
            )
        else:
            raise _Malformed(f"{opcode} calls a {func.kind}, which is not callable")
        self.stack.append(_Value("call", (func, args, opcode), self.op_offset))

    def _nested_call(self, loader: str, args: _Value) -> None:
        items = args.data if isinstance(args.data, tuple) else ()
        first = items[0] if items and args.kind == "tuple" else None
        if isinstance(first, _Value) and isinstance(first.data, memoryview):
            self._nested(first.data, first.offset, via=loader)

    def _nested(self, chunk: memoryview, offset: int, *, via: str | None) -> None:
        """Scan *chunk* as a pickle; report it if passed to a loader or well-formed."""
        how = f"passed to {via}" if via else "embedded bytes"
        if self.depth >= MAX_NESTING:
            if via is not None:
                self.collector.add(
                    Severity.HIGH,
                    "nested-pickle",
                    f"pickles nested more than {MAX_NESTING} deep are not scanned "
                    f"(byte {offset}, {how})",
                    offset,
                )
            return
        if via is None:
            if offset not in self.nested_seen:
                self.nested_seen[offset] = False
                inner, complete = self._scan_nested(chunk, offset, how)
                if complete and inner.uses:
                    self.pending[offset] = (inner, len(chunk), how)
                else:
                    self.collector.opcodes += inner.opcodes
            return
        if self.nested_seen.get(offset):
            return
        self.nested_seen[offset] = True
        self.pending.pop(offset, None)
        inner, _ = self._scan_nested(chunk, offset, how)
        self._report_nested(len(chunk), offset, how, Severity.HIGH)
        self.collector.merge(inner, keep_malformation=True)

    def _scan_nested(
        self, chunk: memoryview, offset: int, how: str
    ) -> tuple[_Collector, bool]:
        context = f"nested pickle at byte {offset} ({how})"
        if self.context:
            context = f"{self.context} > {context}"
        inner = _Collector(self.collector.record, self.collector.budget)
        machine = _Machine(bytes(chunk), 0, inner, context, self.depth + 1)
        return inner, machine.run()

    def _flush_nested(self) -> None:
        """Report well-formed pickles found in bytes values that no loader took."""
        for offset, (inner, size, how) in self.pending.items():
            self._report_nested(size, offset, how, Severity.MEDIUM)
            self.collector.merge(inner, keep_malformation=False)
        self.pending.clear()

    def _report_nested(
        self, size: int, offset: int, how: str, severity: Severity
    ) -> None:
        self.collector.add(
            severity,
            "nested-pickle",
            f"{size} bytes at byte {offset} hold a pickle ({how}); its globals are "
            "listed with that context",
            offset,
        )

    # -- persistent ids ----------------------------------------------------------------

    def _persid(self) -> None:
        text = self._text(self._line(), "ascii", "strict")
        self._persistent(_Value("str", text, self.op_offset))

    def _persistent(self, pid: _Value) -> None:
        items = pid.data if pid.kind == "tuple" and isinstance(pid.data, tuple) else ()
        tag = _string_of(items[0]) if items else None
        if tag == "storage" and len(items) == 5:
            self._storage_id(items)
        elif tag == "reduce_package" and len(items) in (3, 4):
            self._reduce_package_id(items)
        else:
            self._record_persistent(
                PersistentRef(
                    "unknown", self.collector.record, self.op_offset, self.context
                )
            )
            self.collector.add(
                Severity.MEDIUM,
                "persistent-id",
                f"persistent id {_describe(pid)} is neither a storage nor a "
                "reduce_package id; loaders refuse it or return None",
                self.op_offset,
                self.op_name,
            )
        self.stack.append(_Value("persistent", None, self.op_offset))

    def _record_persistent(self, ref: PersistentRef) -> None:
        if len(self.collector.persistent) < 1_000_000:
            self.collector.persistent.append(ref)

    def _storage_id(self, items: tuple[_Value, ...]) -> None:
        kind, key, location, numel = items[1:]
        storage_type = _qualified(kind)
        key_text = _string_of(key) if key.kind == "str" else None
        if key.kind == "num" and isinstance(key.data, int):
            key_text = str(key.data)
        count = numel.data if numel.kind == "num" and type(numel.data) is int else None
        self._record_persistent(
            PersistentRef(
                "storage", self.collector.record, self.op_offset, self.context,
                storage_type, key_text, _string_of(location), count,
            )
        )  # fmt: skip
        problems = []
        if storage_type is None:
            problems.append(f"its type is {_describe(kind)}, not a global")
        elif storage_type not in STORAGE_TYPES:
            problems.append(f"{storage_type} is not a storage type")
        if key_text is None or not (key_text.isascii() and key_text.isdigit()):
            problems.append(
                f"its key {_describe(key)} is not a plain number (record name "
                "injection?)"
            )
        if count is None or count < 0:
            problems.append(f"its size {_describe(numel)} is not a non-negative int")
        for problem in problems:
            self.collector.add(
                Severity.HIGH,
                "bad-storage-id",
                f"storage id at byte {self.op_offset}: {problem}",
                self.op_offset,
                self.op_name,
            )

    def _reduce_package_id(self, items: tuple[_Value, ...]) -> None:
        loader = items[2] if len(items) == 4 else items[1]
        qualified = _qualified(loader)
        self._record_persistent(
            PersistentRef(
                "reduce_package", self.collector.record, self.op_offset,
                self.context, loader=qualified or _describe(loader),
            )
        )  # fmt: skip
        if qualified is None:
            severity = Severity.CRITICAL
            why = f"its loader {_describe(loader)} is made while loading"
        else:
            use = self.collector.uses[loader.data]  # type: ignore[index]
            use.called = True
            severity = use.severity
            if qualified in _KNOWN_PACKAGE_LOADERS:
                severity = max(severity, Severity.MEDIUM)
                why = f"{qualified} rebuilds TorchScript/FX code from the package"
            else:
                severity = max(severity, Severity.HIGH)
                why = f"{qualified} is called with the importer and chosen arguments"
        self.collector.add(
            severity,
            "reduce-package",
            f"reduce_package id at byte {self.op_offset}: {why}",
            self.op_offset,
            self.op_name,
        )

    # -- mutation ----------------------------------------------------------------------

    def _append(self) -> None:
        self._pop()
        self._check_target(self._top(), ("list",), "APPEND")

    def _appends(self) -> None:
        self._marked()
        self._check_target(self._top(), ("list",), "APPENDS")

    def _additems(self) -> None:
        self._marked()
        self._check_target(self._top(), ("set",), "ADDITEMS")

    def _setitem(self) -> None:
        self._pop()
        self._pop()
        self._check_target(self._top(), ("dict",), "SETITEM")

    def _setitems(self) -> None:
        if len(self._marked()) % 2:
            raise _Malformed("SETITEMS has an odd number of items")
        self._check_target(self._top(), ("dict",), "SETITEMS")

    def _dict(self) -> None:
        if len(self._marked()) % 2:
            raise _Malformed("DICT has an odd number of items")
        self._push("dict", None)

    def _check_target(self, target: _Value, kinds: tuple[str, ...], op: str) -> None:
        """Flag containers operations on things that are not such containers."""
        if target.kind in kinds or target.kind == "call":
            return
        if target.kind == "persistent":
            severity, why = Severity.MEDIUM, "changes a storage's data in place"
        elif target.kind == "global":
            severity, why = Severity.HIGH, "calls a method of an imported object"
        else:
            severity, why = Severity.HIGH, "loaders reject or misread this"
        self.collector.add(
            severity,
            "state-mutation",
            f"{op} on {_describe(target)} ({target.kind}): {why}",
            self.op_offset,
            op,
        )

    def _build(self) -> None:
        self._pop()
        target = self._top()
        if target.kind == "global":
            self.collector.add(
                Severity.CRITICAL,
                "state-mutation",
                f"BUILD sets attributes on {_describe(target)} itself, changing "
                "that object for the whole process",
                self.op_offset,
                "BUILD",
            )
        elif target.kind not in ("call", "persistent"):
            self._check_target(target, (), "BUILD")

    # -- framing and protocol ----------------------------------------------------------

    def _proto(self) -> None:
        version = self._uint(1)
        if version > _HIGHEST_PROTOCOL:
            self.collector.add(
                Severity.HIGH,
                "protocol",
                f"pickle protocol {version} is newer than any loader reads",
                self.op_offset,
                "PROTO",
            )
        if self.protocol is None:
            self.protocol = version

    def _frame(self) -> None:
        size = self._uint(8)
        left = len(self.data) - self.pos
        if size > left:
            self.collector.add(
                Severity.MEDIUM,
                "frame-mismatch",
                f"FRAME says {size} bytes follow but only {left} do; loaders "
                "disagree on such pickles",
                self.op_offset,
                "FRAME",
            )

    def _next_buffer(self) -> None:
        self.collector.add(
            Severity.HIGH,
            "out-of-band-buffer",
            "NEXT_BUFFER needs out-of-band buffers, which package loading never "
            "passes: the load fails here",
            self.op_offset,
            "NEXT_BUFFER",
        )
        self._push("buffer", None)


def _string_of(value: _Value) -> str | None:
    """Return the text of a str (or ASCII bytes) value, else None."""
    if value.kind == "str" and isinstance(value.data, str):
        return value.data
    if value.kind == "bytes" and isinstance(value.data, memoryview):
        raw = value.data
        if len(raw) <= 64:
            try:
                return bytes(raw).decode("ascii")
            except UnicodeDecodeError:
                return None
    return None


def _qualified(value: _Value) -> str | None:
    """Return ``module.name`` of a global value, else None."""
    if value.kind != "global" or not isinstance(value.data, tuple):
        return None
    module, name = value.data[0], value.data[1]
    return f"{module}.{name}"


def _describe(value: _Value, depth: int = 0) -> str:
    """Return a short, bounded description of *value* for messages."""
    kind, data = value.kind, value.data
    if kind == "str":
        if not isinstance(data, str):
            return "<long str>"
        return repr(data[:40]) + ("..." if len(data) > 40 else "")
    if kind == "bytes" and isinstance(data, memoryview):
        return f"<{len(data)} bytes>"
    if kind == "num":
        return repr(data)[:40]
    if kind == "none":
        return "None"
    if kind == "global":
        name = _qualified(value)
        return name[:120] if name else "<global>"
    if depth >= 2:
        return f"<{kind}>"
    if kind == "call" and isinstance(data, tuple):
        func, args = data[0], data[1]
        inner = _describe(args, depth + 1)
        return f"{_describe(func, depth + 1)}{inner if inner.startswith('(') else ''}"
    if kind == "tuple" and isinstance(data, tuple):
        shown = ", ".join(_describe(item, depth + 1) for item in data[:3])
        more = ", ..." if len(data) > 3 else ""
        return f"({shown}{more})"
    return f"<{kind}>"
