"""The package-aware pickler: C speed, with every global it writes recorded.

``pickle_object`` pickles with the C ``pickle.Pickler``. Its ``reducer_override`` sees
each class and function the pickle will name (before the C code writes the global), so
the exporter learns the pickle's dependencies while pickling, with no second pass over
the opcodes. Objects that need more than plain pickle are rare, and only they cost
extra work:

* storages (tensors, arrays) and objects with ``__reduce_package__`` need persistent
  ids (a NumPy array is reduced by its back end to a constructor call whose buffer
  is a persistent id). Calling ``persistent_id`` costs a Python call for *every*
  object, so the first pass runs without it and a second pass with it happens only
  when such an object turned up.
* a class or function loaded from a package (re-export) must be written under its
  unmangled name, which the C pickler cannot do by itself. Those globals are written
  once in a short prelude (``GLOBAL``, ``BINPUT``, ``POP``) and put in the pickler's
  memo beforehand, so the body refers to them by memo index.

* an exact set or frozenset is written by the C pickler in hash order, which changes
  with ``PYTHONHASHSEED``, and before any hook can intervene. When the first pass
  wrote one, the final pass uses the pure-Python pickler instead (several times
  slower), whose ``reducer_override`` writes a set of strings, bytes, ints or floats
  as ``set(sorted_items)``, so the archive's bytes do not depend on the hash seed.

All cases are found by the first pass, which never calls user hooks with side effects.
"""

from __future__ import annotations

import collections
import copyreg
import io
import pickle
import struct
import types
from dataclasses import dataclass, field
from typing import Any

from ._mangling import is_mangled
from .errors import ObjMismatchError, ObjNotFoundError, PickleSaveError
from .importer import Importer, sys_importer
from .storage import SavingBackend, StorageSink

__all__ = ["PickleResult", "pickle_object"]

# How reducer_override treats objects of a given type, cached per type.
_PLAIN, _GLOBAL, _STORAGE, _REDUCE_PACKAGE, _MAYBE_NAMED = range(5)
_GLOBAL_TYPES = (
    types.FunctionType,
    types.BuiltinFunctionType,
)
# Types with their own reduce that never reduce to a name; skipped for speed.
_NEVER_NAMED = (
    set,
    frozenset,
    bytearray,
    collections.OrderedDict,
    collections.defaultdict,
    collections.deque,
)


#: A pseudo module name marking, in the first pass's globals, a storage placeholder.
_SPECIAL_MARK = "\0storage"


def _placeholder() -> None:
    """Written by the first pass instead of an object only the final pass can write."""


class _NeedsPersistentIds(Exception):
    """Raised inside the first pass: this object graph needs persistent ids."""


@dataclass
class PickleResult:
    """What pickling one object produced."""

    data: bytes
    #: (module, qualname) of every global the pickle names, first-seen order.
    globals: list[tuple[str, str]] = field(default_factory=list)


class _Pass:
    """Bookkeeping shared by the passes over one object."""

    def __init__(self, importer: Importer, backends: list[SavingBackend]) -> None:
        self.importer = importer
        self.backends = backends
        self.kinds: dict[type, int] = {}
        self.globals: dict[tuple[str, str], None] = {}
        self.renames: dict[int, tuple[object, str, str]] = {}
        self.needs_persistent_ids = False
        self.handled = tuple(t for b in backends for t in b.handled_types())

    def is_storage(self, obj: object) -> bool:
        """Tell whether a back end saves *obj* (of a handled type) through storages."""
        return any(backend.is_storage(obj) for backend in self.backends)

    def kind_of(self, cls: type) -> int:
        kind = self.kinds.get(cls)
        if kind is None:
            kind = self.kinds[cls] = self._classify(cls)
        return kind

    def _classify(self, cls: type) -> int:
        if issubclass(cls, type) or issubclass(cls, _GLOBAL_TYPES):
            return _GLOBAL
        if self.handled and issubclass(cls, self.handled):
            return _STORAGE
        if hasattr(cls, "__reduce_package__"):
            return _REDUCE_PACKAGE
        if _may_reduce_to_name(cls):
            return _MAYBE_NAMED
        return _PLAIN

    def record_global(self, obj: Any, reduced_name: str | None = None) -> bool:
        """Record the global *obj* will be written as; True if it must be renamed.

        *reduced_name* is the name an object's reduce gave instead of a tuple.
        """
        module = getattr(obj, "__module__", None)
        name = reduced_name or (
            getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
        )
        if reduced_name is not None and not isinstance(module, str):
            module = pickle.whichmodule(obj, reduced_name)  # type: ignore[attr-defined]
        fast = (
            self.importer is sys_importer
            and isinstance(module, str)
            and isinstance(name, str)
            and not is_mangled(module)
        )
        if fast:
            self.globals[(module, name)] = None  # type: ignore[index]
            return False
        try:
            module_name, qualname = self.importer.get_name(obj, reduced_name)
        except (ObjNotFoundError, ObjMismatchError) as exc:
            raise pickle.PicklingError(f"Can't pickle {obj!r}: {exc}") from exc
        self.globals[(module_name, qualname)] = None
        if module_name != module or qualname != name:
            self.renames[id(obj)] = (obj, module_name, qualname)
            return True
        return False


class _Hooks:
    """What every pass does, mixed into a C pickler or the pure-Python one."""

    _state: _Pass
    _final: bool
    _protocol: int

    def _init_hooks(self, state: _Pass, protocol: int, *, final: bool) -> None:
        self._state = state
        self._final = final
        self._protocol = protocol

    def reducer_override(self, obj: Any, /) -> Any:
        state = self._state
        kind = state.kind_of(type(obj))
        if kind == _PLAIN:
            return NotImplemented
        reduced_name = None
        if kind == _MAYBE_NAMED:
            # e.g. torch.float32 reduces to "float32": pickle writes it as a global
            # without asking reducer_override again, so it is recorded here.
            reduced_name = _reduced_name(obj, self._protocol)
            if reduced_name is None:
                return NotImplemented
            kind = _GLOBAL
        if kind == _GLOBAL:
            if obj is _placeholder:
                return NotImplemented  # not a global of the pickle: never recorded
            if state.record_global(obj, reduced_name) and not self._final:
                return (_placeholder, ())  # the real pass reads it from the memo
            if self._final and id(obj) in state.renames:
                raise pickle.PicklingError(
                    f"Can't pickle {obj!r}: it comes from a package and is reachable "
                    "only through a __reduce_package__ result"
                )
            return NotImplemented
        if kind == _STORAGE and not state.is_storage(obj):
            return NotImplemented  # e.g. an array of Python objects: plain pickling
        if not self._final:
            state.needs_persistent_ids = True
            # Mark where this object's own globals will appear in the final pass.
            state.globals[(_SPECIAL_MARK, str(len(state.globals)))] = None
            return (_placeholder, ())  # the final pass gives it a persistent id
        return self._reduce_storage(obj) if kind == _STORAGE else NotImplemented

    def _reduce_storage(self, obj: Any) -> Any:
        return NotImplemented  # only the persistent pass has a sink


class _PersistentHooks(_Hooks):
    """The final pass's hooks when storages or ``__reduce_package__`` objects occur."""

    def _init_persistent(self, sink: StorageSink, exporter: object) -> None:
        self._sink = sink
        self._exporter = exporter
        # id(obj) -> (obj, persistent id); obj is held so its id stays unique.
        self._reduced: dict[int, tuple[object, tuple[Any, ...]]] = {}

    def _reduce_storage(self, obj: Any) -> Any:
        # A back end may rebuild the object itself (a NumPy array: its constructor
        # with a persistent id as buffer); None lets it reduce itself (a tensor).
        for backend in self._state.backends:
            reduced = backend.reduce(obj, self._sink)
            if reduced is not None:
                return reduced
        return NotImplemented

    def persistent_id(self, obj: Any) -> Any:
        state = self._state
        kind = state.kind_of(type(obj))
        if kind == _STORAGE:
            for backend in state.backends:
                pid = backend.persistent_id(obj, self._sink)
                if pid is not None:
                    return pid
            return None
        if kind == _REDUCE_PACKAGE:
            return self._reduce_package(obj)
        return None

    def _reduce_package(self, obj: Any) -> tuple[Any, ...]:
        # Keyed per pickle by id() while holding obj, so ids cannot be reused within it.
        known = self._reduced.get(id(obj))
        if known is not None:
            return known[1]
        loader, args = obj.__reduce_package__(self._exporter)
        pid = ("reduce_package", len(self._reduced), loader, tuple(args))
        self._reduced[id(obj)] = (obj, pid)
        return pid


class _Pickler(_Hooks, pickle.Pickler):
    """One pass: a C pickler whose reducer_override records globals."""

    def __init__(self, file: io.BytesIO, protocol: int, state: _Pass, *, final: bool):
        super().__init__(file, protocol)
        self._init_hooks(state, protocol, final=final)


class _PersistentPickler(_PersistentHooks, pickle.Pickler):
    """The final pass when storages or ``__reduce_package__`` objects are present."""

    def __init__(
        self,
        file: io.BytesIO,
        protocol: int,
        state: _Pass,
        sink: StorageSink,
        exporter: object,
    ) -> None:
        super().__init__(file, protocol)
        self._init_hooks(state, protocol, final=True)
        self._init_persistent(sink, exporter)


class _CanonicalPickler(_PersistentHooks, pickle._Pickler):
    """The final pass when the object holds a set or frozenset: pure Python, slower.

    The C pickler writes exact sets before consulting any hook, in hash order (which
    changes with ``PYTHONHASHSEED``); the Python one asks ``reducer_override`` first,
    so a set whose items all have one type of :data:`_SORTABLE` is written as
    ``set(sorted_items)``. Other sets keep their order (sorting could fail or, for
    NaNs, be no order at all).
    """

    memo: dict[int, tuple[int, Any]]

    def __init__(
        self,
        file: io.BytesIO,
        protocol: int,
        state: _Pass,
        sink: StorageSink,
        exporter: object,
    ) -> None:
        super().__init__(file, protocol)
        self._init_hooks(state, protocol, final=True)
        self._init_persistent(sink, exporter)

    def reducer_override(self, obj: Any, /) -> Any:
        cls = type(obj)
        if cls is set or cls is frozenset:
            items = _sorted_items(obj)
            if items is not None:
                return (cls, (items,))
        return super().reducer_override(obj)


#: Item types whose sets are pickled sorted: one total order, no meaning lost.
_SORTABLE = (str, bytes, int, float)
#: How the C pickler writes exact sets: calls of these globals at protocol 3 (which
#: reducer_override sees), these opcodes at protocol 4 (which nothing sees), each
#: followed at once by MEMOIZE.
_SET_GLOBALS = frozenset({("builtins", "set"), ("builtins", "frozenset")})
_SET_OPCODES = (pickle.EMPTY_SET, pickle.FROZENSET)
_SET_MEMOIZED = tuple(opcode + pickle.MEMOIZE for opcode in _SET_OPCODES)


def _sorted_items(items: set[Any] | frozenset[Any]) -> list[Any] | None:
    """Return the items of a set sorted, or None when sorting is not safe.

    >>> _sorted_items({"b", "a"}), _sorted_items({1, "a"}), _sorted_items(set())
    (['a', 'b'], None, None)
    """
    kinds = {type(item) for item in items}
    kind = kinds.pop() if len(kinds) == 1 else None
    if kind not in _SORTABLE:
        return None
    if kind is float and any(item != item for item in items):  # NaN: no order
        return None
    return sorted(items)


def _first_pass(
    obj: object, protocol: int, importer: Importer, backends: list[SavingBackend]
) -> tuple[_Pass, bytes, int]:
    """Run the hook-only C pass; return its state, its bytes and its protocol.

    A protocol 4 pickle is first written at protocol 3, where sets are calls of the
    global ``builtins.set`` that ``reducer_override`` sees, rather than opcodes no
    hook sees: finding out whether a set needs sorting then costs nothing, at the
    price of a second C pass. Objects protocol 3 cannot hold (bytes over 4 GiB)
    fall back to a protocol 4 first pass.
    """
    if protocol >= 4:
        state = _Pass(importer, backends)
        first = io.BytesIO()
        try:
            _Pickler(first, 3, state, final=False).dump(obj)
            return state, first.getvalue(), 3
        except (pickle.PicklingError, OverflowError):
            pass
    state = _Pass(importer, backends)
    first = io.BytesIO()
    _Pickler(first, protocol, state, final=False).dump(obj)
    return state, first.getvalue(), protocol


def _has_sets(data: bytes, state: _Pass, protocol: int) -> bool:
    """Tell whether the first pass wrote an exact set or frozenset.

    At protocol 4 a byte search comes first; other data can match it, so the
    opcodes are then read to be sure (a false positive would cost only speed).
    """
    if protocol < 4:
        return not _SET_GLOBALS.isdisjoint(state.globals)
    if not any(pattern in data for pattern in _SET_MEMOIZED):
        return False
    import pickletools

    return any(
        op.code.encode("latin-1") in _SET_OPCODES
        for op, _, _ in pickletools.genops(data)
    )


def _may_reduce_to_name(cls: type) -> bool:
    """Tell whether instances of *cls* may reduce to a global name (a string)."""
    if issubclass(cls, _NEVER_NAMED):
        return False
    return (
        cls in copyreg.dispatch_table
        or getattr(cls, "__reduce__", None) is not object.__reduce__
        or getattr(cls, "__reduce_ex__", None) is not object.__reduce_ex__
    )


def _reduced_name(obj: Any, protocol: int) -> str | None:
    """Return the name *obj* reduces to, or None when it reduces to a tuple."""
    reduce = copyreg.dispatch_table.get(type(obj))
    try:
        value = reduce(obj) if reduce is not None else obj.__reduce_ex__(protocol)
    except Exception:  # pickle itself reports an object that refuses to reduce
        return None
    return value if isinstance(value, str) else None


def pickle_object(
    obj: object,
    *,
    protocol: int,
    importer: Importer,
    backends: list[SavingBackend],
    sink: StorageSink,
    exporter: object,
) -> PickleResult:
    """Pickle *obj*, returning its bytes and the globals it names."""
    state, data, first_protocol = _first_pass(obj, protocol, importer, backends)
    canonical = _has_sets(data, state, first_protocol)
    final_needed = state.renames or state.needs_persistent_ids or canonical
    if not final_needed and first_protocol == protocol:
        return PickleResult(data, list(state.globals))
    first_order = list(state.globals)
    state.globals = {}
    out = io.BytesIO()
    memo = _write_prelude(out, protocol, state.renames.values())
    pickler: _Pickler | _PersistentPickler | _CanonicalPickler
    if canonical:  # sets: written in sorted order, so hash seeds do not matter
        pickler = _CanonicalPickler(out, protocol, state, sink, exporter)
    elif state.needs_persistent_ids:
        pickler = _PersistentPickler(out, protocol, state, sink, exporter)
    else:
        pickler = _Pickler(out, protocol, state, final=True)
    if memo:
        pickler.memo = memo
    pickler.dump(obj)
    renamed = {(module, name) for _, module, name in state.renames.values()}
    order = _merge_order(first_order, list(state.globals), renamed)
    return PickleResult(out.getvalue(), order)


def _merge_order(
    first: list[tuple[str, str]],
    final: list[tuple[str, str]],
    renamed: set[tuple[str, str]],
) -> list[tuple[str, str]]:
    """Order the globals as the pickle body first uses them.

    The final pass does not see renamed globals (they come from the memo) and the
    first pass did not see the globals of storages (it wrote placeholders), so each
    renamed global is put back before the first global the first pass saw after it.
    """
    position = {name: index for index, name in enumerate(first)}
    pending = [name for name in first if name in renamed]
    marks = [index for index, name in enumerate(first) if name[0] == _SPECIAL_MARK]
    merged: list[tuple[str, str]] = []
    cursor = -1
    for name in final:
        index = position.get(name)
        if index is None:  # from inside a storage object: placed at its mark
            index = next((mark for mark in marks if mark > cursor), len(first))
        else:
            cursor = index
        while pending and position[pending[0]] < index:
            merged.append(pending.pop(0))
        if name not in renamed:
            merged.append(name)
    merged.extend(pending)
    return list(dict.fromkeys(merged))


def _write_prelude(
    out: io.BytesIO, protocol: int, renames: Any
) -> dict[int, tuple[int, object]]:
    """Write each renamed global once into the memo; return the matching memo table."""
    memo: dict[int, tuple[int, object]] = {}
    if not renames:
        return memo
    out.write(pickle.PROTO + bytes([protocol]))
    for index, (obj, module, name) in enumerate(renames):
        out.write(_global_opcode(module, name))
        out.write(_put_opcode(index))
        out.write(pickle.POP)
        memo[id(obj)] = (index, obj)
    return memo


def _global_opcode(module: str, name: str) -> bytes:
    if "\n" in module or "\n" in name:
        raise PickleSaveError(f"global name {module}.{name} contains a newline")
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def _put_opcode(index: int) -> bytes:
    if index < 256:
        return pickle.BINPUT + bytes([index])
    return pickle.LONG_BINPUT + struct.pack("<I", index)
