"""The syntax half of the pickle machine: bytes to values, with no meaning attached.

``StackMachine`` reads opcode arguments (refusing lengths past the end of the data),
keeps the stack, its MARKs and the memo, builds constants, and handles framing and
the protocol header. ``Value`` is what the stack holds; ``string_of``,
``qualified_name`` and ``describe`` read values back for messages.

What it does not do: know what loading does with a value (import a global, call it,
load a persistent id, mutate it). :class:`hermetic._pickle_machine._Machine` adds that
and drives the opcode loop.
"""

from __future__ import annotations

import _codecs  # escape_decode: how loaders read protocol 0 STRING arguments
import struct
import warnings

from ._pickle_results import Collector
from ._scan_rules import Severity

__all__ = [
    "STOP",
    "Malformed",
    "StackMachine",
    "Value",
    "describe",
    "looks_like_pickle",
    "qualified_name",
    "string_of",
]

#: Strings longer than this are not decoded (no module name is that long).
_MAX_DECODED = 1 << 16
#: Decimal text longer than this is not converted (CPython refuses it too).
_MAX_DIGITS = 4300
_HIGHEST_PROTOCOL = 5
#: Returned by the STOP handler to end the run loop.
STOP = object()


def looks_like_pickle(data: bytes | memoryview) -> bool:
    """Tell whether *data* starts as a protocol 2+ pickle does.

    >>> looks_like_pickle(b"\\x80\\x04N."), looks_like_pickle(b"PK\\x03\\x04")
    (True, False)
    """
    return len(data) >= 3 and data[0] == 0x80 and 2 <= data[1] <= _HIGHEST_PROTOCOL


class Malformed(Exception):
    """Stops the machine: the loaders would fail here too."""


class Value:
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


class StackMachine:
    """Reads one pickle's opcode arguments into values on a stack, MARKs and memo."""

    def __init__(self, data: bytes, start: int, collector: Collector) -> None:
        self.data = data
        self.view = memoryview(data)
        self.pos = start
        self.collector = collector
        self.stack: list[Value] = []
        self.metastack: list[list[Value]] = []
        self.memo: dict[int, Value] = {}
        self.protocol: int | None = None
        self.op_offset = start
        self.op_name = ""
        self.memo_bomb_reported = False

    # -- reading arguments -------------------------------------------------------------

    def _take(self, size: int) -> memoryview:
        """Return the next *size* bytes, refusing lengths past the end of the data."""
        left = len(self.data) - self.pos
        if size > left:
            raise Malformed(
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
            raise Malformed(f"{self.op_name} has a negative length {value}")
        return value

    def _line(self) -> bytes:
        """Return the bytes up to the next newline (which is consumed)."""
        end = self.data.find(b"\n", self.pos)
        if end < 0:
            raise Malformed(f"{self.op_name} argument has no newline (truncated)")
        line = self.data[self.pos : end]
        self.pos = end + 1
        return line

    def _int_line(self, what: str) -> int:
        text = self._line()
        if len(text) > 20:
            raise Malformed(f"{what} index {text[:20]!r}... is too long")
        try:
            value = int(text)
        except ValueError:
            raise Malformed(f"{what} index {text!r} is not a number") from None
        if value < 0:
            raise Malformed(f"negative {what} index {value}")
        return value

    # -- the stack ---------------------------------------------------------------------

    def _push(self, kind: str, data: object) -> None:
        self.stack.append(Value(kind, data, self.op_offset))

    def _from_mark(self, kind: str) -> None:
        self._marked()
        self._push(kind, None)

    def _pop(self) -> Value:
        if not self.stack:
            raise Malformed(f"{self.op_name} pops from an empty stack")
        return self.stack.pop()

    def _top(self) -> Value:
        if not self.stack:
            raise Malformed(f"{self.op_name} needs a value but the stack is empty")
        return self.stack[-1]

    def _mark(self) -> None:
        self.metastack.append(self.stack)
        self.stack = []

    def _stop(self) -> object:
        self._pop()  # loaders return the top of the stack: there must be one
        return STOP

    def _marked(self) -> list[Value]:
        """Pop everything above the last MARK, and the MARK."""
        if not self.metastack:
            raise Malformed(f"{self.op_name} needs a MARK but there is none")
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
            raise Malformed(f"{self.op_name} needs {count} values on the stack")
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
            raise Malformed(f"{self.op_name} has {len(text)} digits; loaders refuse")
        try:
            return int(text, 0)
        except ValueError:
            raise Malformed(f"{self.op_name} argument is not an integer") from None

    def _long_binary(self, size: int) -> None:
        raw = self._take(size)
        value = int.from_bytes(raw, "little", signed=True) if size <= 64 else None
        self._push("num", value)

    def _float_text(self) -> None:
        text = self._line()
        try:
            value = float(text) if len(text) <= 64 else None
        except ValueError:
            raise Malformed("FLOAT argument is not a number") from None
        self._push("num", value)

    def _binfloat(self) -> None:
        self._push("num", struct.unpack(">d", self._take(8))[0])

    def _text(self, raw: memoryview | bytes, encoding: str, errors: str) -> str | None:
        if len(raw) > _MAX_DECODED:
            return None
        try:
            return bytes(raw).decode(encoding, errors)
        except UnicodeDecodeError:
            raise Malformed(f"{self.op_name} text is not valid {encoding}") from None

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
            raise Malformed("STRING argument is not quoted")
        if len(raw) > _MAX_DECODED:
            self._push("str", None)
            return
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # invalid escapes only warn
                unescaped = _codecs.escape_decode(raw[1:-1])[0]
        except ValueError:
            raise Malformed("STRING argument has a bad escape") from None
        self._push("str", self._text(unescaped, "ascii", "strict"))

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
            raise Malformed(f"{self.op_name} reads memo slot {index}, never stored")
        self.stack.append(value)

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


def string_of(value: Value) -> str | None:
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


def qualified_name(value: Value) -> str | None:
    """Return ``module.name`` of a global value, else None."""
    if value.kind != "global" or not isinstance(value.data, tuple):
        return None
    module, name = value.data[0], value.data[1]
    return f"{module}.{name}"


def describe(value: Value, depth: int = 0) -> str:
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
        name = qualified_name(value)
        return name[:120] if name else "<global>"
    if depth >= 2:
        return f"<{kind}>"
    if kind == "call" and isinstance(data, tuple):
        func, args = data[0], data[1]
        inner = describe(args, depth + 1)
        return f"{describe(func, depth + 1)}{inner if inner.startswith('(') else ''}"
    if kind == "tuple" and isinstance(data, tuple):
        shown = ", ".join(describe(item, depth + 1) for item in data[:3])
        more = ", ..." if len(data) > 3 else ""
        return f"({shown}{more})"
    return f"<{kind}>"
