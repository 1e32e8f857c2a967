"""The semantic half of the pickle machine: what loading would do with each value.

``Machine`` drives the opcode loop over the syntax in
:mod:`hermetic._pickle_stack` and follows the values a loader would build far enough
to name every global (through the memo and computed ``STACK_GLOBAL`` operands), every
call, every persistent id, every nested pickle and every in-place mutation, reporting
them to a ``Collector``.

What it does not do: run anything. Nothing is unpickled, imported or called; what a
packaged class does when called, what a computed string evaluates to, or what a
copyreg extension code names is reported as a finding instead.
"""

from __future__ import annotations

import pickletools
from collections.abc import Callable

from ._pickle_results import Collector, PersistentRef, Use
from ._pickle_stack import (
    STOP,
    Malformed,
    StackMachine,
    Value,
    describe,
    looks_like_pickle,
    qualified_name,
    string_of,
)
from ._scan_rules import NESTED_LOADERS, STORAGE_TYPES, Severity

__all__ = ["MAX_NESTING", "Machine"]

#: Nested pickles inside nested pickles are followed this deep.
MAX_NESTING = 3
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
#: Values a loader computes while loading: a string made from them is unknowable.
_COMPUTED = frozenset({"call", "global", "persistent", "ext", "buffer"})
#: Values REDUCE cannot take as its argument tuple (loaders raise TypeError).
# REDUCE arguments no loader can call with (not iterable). Other non-tuples (a list,
# a dict, a string) stop the C unpickler but not pure-Python ones, such as
# torch.package's, which call ``func(*args)`` with whatever iterable is there.
_NOT_ARGUMENTS = frozenset({"num", "none"})
_ODD_ARGUMENTS = frozenset({"list", "dict", "set", "frozenset", "str", "bytes"})


class Machine(StackMachine):
    """Follows one pickle from *start* to its STOP (or to its first malformation)."""

    def __init__(
        self, data: bytes, start: int, collector: Collector, context: str, depth: int
    ) -> None:
        super().__init__(data, start, collector)
        self.context = context
        self.depth = depth
        #: Nested pickles scanned, by offset: True once passed to a loader.
        self.nested_seen: dict[int, bool] = {}
        #: Well-formed pickles in bytes values, reported at the end unless a loader
        #: takes them first (then they are reported with that context).
        self.pending: dict[int, tuple[Collector, int, str]] = {}
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
                    raise Malformed("the pickle ends without STOP (truncated)")
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
                    raise Malformed(f"unknown opcode byte 0x{code:02x}")
                self.op_name = _OPNAMES[code]
                if handler() is STOP:
                    return True
        except Malformed as exc:
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

    # -- globals -----------------------------------------------------------------------

    def _global(self, module: str, name: str, opcode: str) -> Value:
        key = self.collector.use(module, name, self.context, self.op_offset, opcode)
        return Value("global", key, self.op_offset)

    def _global_text(self) -> None:
        module, name = self._name_lines()
        self.stack.append(self._global(module, name, "GLOBAL"))

    def _name_lines(self) -> tuple[str, str]:
        module = self._text(self._line(), "utf-8", "strict")
        name = self._text(self._line(), "utf-8", "strict")
        if module is None or name is None:
            raise Malformed(f"{self.op_name} names are too long to be importable")
        return module, name

    def _stack_global(self) -> None:
        name = self._pop()
        module = self._pop()
        if module.kind == "str" and name.kind == "str":
            if not isinstance(module.data, str) or not isinstance(name.data, str):
                raise Malformed("STACK_GLOBAL names are too long to be importable")
            self.stack.append(self._global(module.data, name.data, "STACK_GLOBAL"))
            return
        if module.kind not in _COMPUTED and name.kind not in _COMPUTED:
            kinds = f"{module.kind} and {name.kind}"
            raise Malformed(f"STACK_GLOBAL needs two str operands, got {kinds}")
        shown_module, shown_name = describe(module), describe(name)
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
            uses[key] = Use(
                self.op_offset, "STACK_GLOBAL", Severity.CRITICAL, "computed name"
            )
        self.stack.append(Value("global", key, self.op_offset))

    def _ext(self, code: int) -> None:
        if code <= 0:
            raise Malformed(f"{self.op_name} code {code} is not positive")
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
            self.collector.uses[key] = Use(
                self.op_offset, self.op_name, Severity.HIGH, "copyreg extension code"
            )
        self.stack.append(Value("global", key, self.op_offset))

    # -- calls -------------------------------------------------------------------------

    def _reduce(self) -> None:
        args = self._pop()
        func = self._pop()
        if args.kind in _NOT_ARGUMENTS:
            raise Malformed(f"REDUCE arguments are a {args.kind}, not a tuple")
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
        self._call(cls, Value("tuple", tuple(args), self.op_offset), "INST")

    def _obj(self) -> None:
        items = self._marked()
        if not items:
            raise Malformed("OBJ has no class above its MARK")
        args = Value("tuple", tuple(items[1:]), self.op_offset)
        self._call(items[0], args, "OBJ")

    def _call(self, func: Value, args: Value, opcode: str) -> None:
        if func.kind == "global" and isinstance(func.data, tuple):
            self.collector.uses[func.data].called = True
            qualified = f"{func.data[0]}.{func.data[1]}"
            if qualified in NESTED_LOADERS:
                self._nested_call(qualified, args)
        elif func.kind in ("call", "persistent", "ext", "buffer"):
            self.collector.add(
                Severity.HIGH,
                "indirect-call",
                f"{opcode} calls an object made while loading: {describe(func)}",
                self.op_offset,
                opcode,
            )
        else:
            raise Malformed(f"{opcode} calls a {func.kind}, which is not callable")
        self.stack.append(Value("call", (func, args, opcode), self.op_offset))

    # -- nested pickles ----------------------------------------------------------------

    def _bytes(self, size: int) -> None:
        chunk = self._take(size)
        self._push("bytes", chunk)
        if looks_like_pickle(chunk):
            self._nested(chunk, self.op_offset, via=None)

    def _nested_call(self, loader: str, args: Value) -> None:
        items = args.data if isinstance(args.data, tuple) else ()
        first = items[0] if items and args.kind == "tuple" else None
        if isinstance(first, Value) and isinstance(first.data, memoryview):
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
    ) -> tuple[Collector, bool]:
        context = f"nested pickle at byte {offset} ({how})"
        if self.context:
            context = f"{self.context} > {context}"
        inner = Collector(self.collector.record, self.collector.budget)
        machine = Machine(bytes(chunk), 0, inner, context, self.depth + 1)
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
        self._persistent(Value("str", text, self.op_offset))

    def _persistent(self, pid: Value) -> None:
        items = pid.data if pid.kind == "tuple" and isinstance(pid.data, tuple) else ()
        tag = string_of(items[0]) if items else None
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
                f"persistent id {describe(pid)} is neither a storage nor a "
                "reduce_package id; loaders refuse it or return None",
                self.op_offset,
                self.op_name,
            )
        self.stack.append(Value("persistent", None, self.op_offset))

    def _record_persistent(self, ref: PersistentRef) -> None:
        if len(self.collector.persistent) < 1_000_000:
            self.collector.persistent.append(ref)

    def _storage_id(self, items: tuple[Value, ...]) -> None:
        kind, key, location, numel = items[1:]
        storage_type = qualified_name(kind)
        key_text = string_of(key) if key.kind == "str" else None
        if key.kind == "num" and isinstance(key.data, int):
            key_text = str(key.data)
        count = numel.data if numel.kind == "num" and type(numel.data) is int else None
        self._record_persistent(
            PersistentRef(
                "storage", self.collector.record, self.op_offset, self.context,
                storage_type, key_text, string_of(location), count,
            )
        )  # fmt: skip
        problems = []
        if storage_type is None:
            problems.append(f"its type is {describe(kind)}, not a global")
        elif storage_type not in STORAGE_TYPES:
            problems.append(f"{storage_type} is not a storage type")
        if key_text is None or not (key_text.isascii() and key_text.isdigit()):
            problems.append(
                f"its key {describe(key)} is not a plain number (record name "
                "injection?)"
            )
        if count is None or count < 0:
            problems.append(f"its size {describe(numel)} is not a non-negative int")
        for problem in problems:
            self.collector.add(
                Severity.HIGH,
                "bad-storage-id",
                f"storage id at byte {self.op_offset}: {problem}",
                self.op_offset,
                self.op_name,
            )

    def _reduce_package_id(self, items: tuple[Value, ...]) -> None:
        loader = items[2] if len(items) == 4 else items[1]
        qualified = qualified_name(loader)
        self._record_persistent(
            PersistentRef(
                "reduce_package", self.collector.record, self.op_offset,
                self.context, loader=qualified or describe(loader),
            )
        )  # fmt: skip
        if qualified is None:
            severity = Severity.CRITICAL
            why = f"its loader {describe(loader)} is made while loading"
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
            raise Malformed("SETITEMS has an odd number of items")
        self._check_target(self._top(), ("dict",), "SETITEMS")

    def _dict(self) -> None:
        if len(self._marked()) % 2:
            raise Malformed("DICT has an odd number of items")
        self._push("dict", None)

    def _check_target(self, target: Value, kinds: tuple[str, ...], op: str) -> None:
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
            f"{op} on {describe(target)} ({target.kind}): {why}",
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
                f"BUILD sets attributes on {describe(target)} itself, changing "
                "that object for the whole process",
                self.op_offset,
                "BUILD",
            )
        elif target.kind not in ("call", "persistent"):
            self._check_target(target, (), "BUILD")
