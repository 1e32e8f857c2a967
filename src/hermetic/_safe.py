"""Safe loading: unpickle data without running packaged code or unlisted globals.

:class:`SafeUnpickler` is the one interpreter that both checks and loads a pickle (no
separate scan whose reading could differ from the loader's). It is the pure-Python
``pickle._Unpickler`` with a restricted opcode table:

* GLOBAL and STACK_GLOBAL resolve only exact ``module.qualname`` entries of the
  allowlist (:mod:`hermetic._allowlist`), from the host, never from the archive; the
  archive's extern list grants nothing.
* REDUCE calls only allowlisted callables; NEWOBJ only classes the caller added.
* BUILD, APPEND(S), SETITEM(S) and ADDITEMS act only on objects made during this load
  (never on a global: no ``setattr`` on a class or function), each in the way its
  maker allows; BUILD on a NumPy dtype re-derives the dtype instead of trusting it.
* INST, OBJ and EXT1/2/4 are refused; persistent ids must be well-formed storage ids
  (``reduce_package`` ids run a loader function of the package, so they are refused).
* Anything unexpected (an unknown opcode, a truncated stream, bytes after STOP, an
  error raised by a constructor) is a refusal: nothing half-loaded is returned.

Why not the C ``pickle.Unpickler``: only ``find_class`` and ``persistent_load`` can be
overridden there, while BUILD and SETITEMS act on whatever is on the stack (see the
NumPy dtype case in :func:`hermetic._allowlist.build_dtype`). The price is speed: the
pure-Python loop runs roughly ten times slower per opcode than the C one, which
matters little when tensors and arrays live in storage records rather than in the
pickle.

It does not bound time or memory beyond what the pickle's own size implies (reads
are capped by the record's length), and it does not judge whether the loaded values
are honest: a well-formed pickle of altered weights loads fine (check the archive's
signature for that).
"""

from __future__ import annotations

import _compat_pickle
import io
import pickle
import re
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from . import _allowlist
from ._allowlist import Entry, Refused
from .errors import HermeticError, PickleLoadError, UnsafeContentError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._importer import PackageImporter

__all__ = ["SafeUnpickler", "load_safely"]

_STORAGE_KEY = re.compile(r"[A-Za-z0-9_]{1,64}")
_LOCATION = re.compile(r"[a-z][a-z0-9_]{0,31}(:[0-9]{1,6})?")

#: Opcodes that instantiate classes or read the copyreg registry without going
#: through REDUCE: never needed by protocol 2+ pickles of allowed objects.
_REFUSED_OPCODES = {
    pickle.INST[0]: "INST",
    pickle.OBJ[0]: "OBJ",
    pickle.EXT1[0]: "EXT1",
    pickle.EXT2[0]: "EXT2",
    pickle.EXT4[0]: "EXT4",
}


def load_safely(
    importer: PackageImporter,
    record: str,
    data: bytes,
    allowlist: Mapping[str, Entry],
    map_location: Any = None,
) -> Any:
    """Unpickle *data* (record *record* of *importer*) under *allowlist*."""
    unpickler = SafeUnpickler(
        data,
        importer=importer,
        record=record,
        allowlist=allowlist,
        map_location=map_location,
    )
    return unpickler.load_checked()


class SafeUnpickler(pickle._Unpickler):
    """Unpickle one record, refusing anything outside the allowlist.

    Each object a global resolves to, and each object an allowed callable makes, is
    remembered by identity (and kept alive) for the length of one load, so that the
    mutating opcodes can tell what they are about to change.
    """

    dispatch: ClassVar[dict[int, Callable[[Any], None]]] = dict(
        pickle._Unpickler.dispatch
    )

    if TYPE_CHECKING:  # set by pickle._Unpickler.load(), unknown to typeshed
        stack: list[Any]
        memo: dict[int, Any]
        proto: int

        def append(self, obj: Any, /) -> None: ...
        def pop_mark(self) -> list[Any]: ...
        def read(self, size: int, /) -> bytes: ...

    def __init__(
        self,
        data: bytes,
        *,
        importer: PackageImporter,
        record: str,
        allowlist: Mapping[str, Entry],
        map_location: Any = None,
    ) -> None:
        # A plain BytesIO: a length read from the pickle never allocates more than
        # the bytes that are left (a BufferedReader would allocate it up front).
        self._stream = io.BytesIO(data)
        super().__init__(self._stream)
        self._importer = importer
        self._record = record
        self._allowlist = allowlist
        self._map_location = map_location
        self._globals: dict[int, tuple[object, Entry]] = {}
        self._made: dict[int, tuple[object, Entry]] = {}
        self._storages: dict[str, object] = {}

    def load_checked(self) -> Any:
        """Load the pickle; refusals and malformed data raise typed errors."""
        try:
            result = self.load()
        except Refused as exc:
            raise self._refuse(str(exc)) from None
        except HermeticError:
            raise
        except EOFError as exc:
            raise self._malformed("the pickle is truncated (ran out of input)") from exc
        except Exception as exc:
            # Any other failure is a refusal too: the stream is not what it claims.
            raise self._malformed(f"malformed pickle: {exc!r}") from exc
        if self._stream.read(1):
            raise self._malformed("malformed pickle: bytes follow the STOP opcode")
        return result

    # -- globals and storages ----------------------------------------------------------

    def find_class(self, module: str, name: str) -> Any:
        if self.proto < 3:
            module, name = _python3_name(module, name)
        global_name = f"{module}.{name}"
        entry = self._allowlist.get(global_name)
        if entry is None:
            raise self._refuse(self._why_refused(module, global_name), global_name)
        try:
            obj = entry.resolve(module, name)
        except Refused as exc:
            raise self._refuse(str(exc), global_name) from None
        except (ImportError, AttributeError) as exc:
            raise PickleLoadError(
                f"allowed global {global_name!r} cannot be found here: {exc}",
                archive=self._importer.filename,
                record=self._record,
                global_name=global_name,
            ) from exc
        self._globals[id(obj)] = (obj, entry)
        return obj

    def _why_refused(self, module: str, global_name: str) -> str:
        node = self._importer._tree.find(module)
        if node is not None and node.kind != "extern":
            return (
                f"the pickle needs {global_name!r}, which the package's own code "
                "defines, and safe loading never runs packaged code"
            )
        return (
            f"the pickle needs {global_name!r}, which is not on the safe-loading "
            "allowlist (add it with allow=[...] only if calling it with any "
            "arguments is harmless)"
        )

    def persistent_load(self, pid: Any) -> Any:
        if not isinstance(pid, tuple) or not pid:
            raise self._refuse(
                f"unsupported persistent id of type {type(pid).__name__}"
            )
        kind = pid[0].decode("ascii") if isinstance(pid[0], bytes) else pid[0]
        if kind == "reduce_package":
            raise self._refuse(
                "a reduce_package persistent id calls a loader function of the "
                "package, which safe loading never runs"
            )
        if kind != "storage" or len(pid) != 5:
            raise self._refuse(f"unsupported persistent id {kind!r}")
        _, storage_type, key, location, numel = pid
        self._check_storage_id(storage_type, key, location, numel)
        from .storage import load_storage

        cached = self._storages.get(str(key))
        if cached is None:
            cached = self._storages[str(key)] = load_storage(
                self._importer, storage_type, key, location, numel, self._map_location
            )
        return cached

    def _check_storage_id(
        self, storage_type: object, key: object, location: object, numel: object
    ) -> None:
        known = self._globals.get(id(storage_type))
        if known is None or not known[1].storage_type:
            raise self._refuse("a storage id names a type that is not a storage type")
        key_ok = (type(key) is int and key >= 0) or (
            isinstance(key, str) and _STORAGE_KEY.fullmatch(key)
        )
        if isinstance(location, bytes):
            location = location.decode("ascii", "replace")
        location_ok = isinstance(location, str) and _LOCATION.fullmatch(location)
        if not key_ok or not location_ok or type(numel) is not int or numel < 0:
            raise self._refuse(
                "malformed storage id: the key, location or element count is invalid"
            )

    # -- opcodes that call -------------------------------------------------------------

    def _allowed_callable(self, func: object, opcode: str) -> Entry:
        known = self._globals.get(id(func))
        if known is None or not known[1].callable:
            what = (
                known[1].name if known else f"an object of type {type(func).__name__}"
            )
            raise self._refuse(
                f"{opcode} calls {what}, which is not an allowed callable"
            )
        return known[1]

    def _load_reduce(self) -> None:
        stack = self.stack
        args = stack.pop()
        func = stack[-1]
        entry = self._allowed_callable(func, "REDUCE")
        if type(args) is not tuple:
            raise self._refuse("REDUCE arguments must be a tuple", opcode="REDUCE")
        try:
            result = func(*args)
        except Refused as exc:
            raise self._refuse(str(exc), entry.name) from None
        stack[-1] = result
        self._remember(result, entry)

    dispatch[pickle.REDUCE[0]] = _load_reduce

    def _new_instance(
        self, cls: object, args: object, kwargs: object, opcode: str
    ) -> None:
        entry = self._allowed_callable(cls, opcode)
        if not (entry.from_caller and isinstance(cls, type)):
            raise self._refuse(
                f"{opcode} may only create classes added with allow=, not {entry.name}",
                opcode=opcode,
            )
        if type(args) is not tuple or type(kwargs) is not dict:
            raise self._refuse(f"{opcode} arguments are malformed", opcode=opcode)
        obj: object = cls.__new__(cls, *args, **kwargs)
        self.append(obj)
        self._remember(obj, entry)

    def _load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        self._new_instance(cls, args, {}, "NEWOBJ")

    dispatch[pickle.NEWOBJ[0]] = _load_newobj

    def _load_newobj_ex(self) -> None:
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self._new_instance(cls, args, kwargs, "NEWOBJ_EX")

    dispatch[pickle.NEWOBJ_EX[0]] = _load_newobj_ex

    # -- opcodes that change an object -------------------------------------------------

    def _maker(self, target: object, opcode: str) -> Entry | None:
        """Return the entry that made *target* in this load (None: made by opcodes).

        Refuses a global: the pickle may not change an object the host owns.
        """
        known = self._globals.get(id(target))
        if known is not None:
            raise self._refuse(
                f"{opcode} would change the global {known[1].name}", opcode=opcode
            )
        made = self._made.get(id(target))
        return made[1] if made is not None else None

    def _load_build(self) -> None:
        stack = self.stack
        state = stack.pop()
        inst = stack[-1]
        entry = self._maker(inst, "BUILD")
        policy = entry.build if entry is not None else None
        if entry is None or policy is None:
            raise self._refuse(
                f"BUILD on an object of type {type(inst).__name__} is not allowed",
                opcode="BUILD",
            )
        try:
            if policy == "dtype":
                rebuilt = _allowlist.build_dtype(inst, state)
                self._replace(inst, rebuilt)
                self._remember(rebuilt, entry)
            elif policy == "ndarray":
                _allowlist.build_ndarray(inst, state)
            elif policy == "attributes":
                _set_attributes(inst, state, slots=False)
            elif (setstate := getattr(inst, "__setstate__", None)) is not None:
                setstate(state)
            else:
                _set_attributes(inst, state, slots=True)
        except Refused as exc:
            raise self._refuse(str(exc), entry.name, opcode="BUILD") from None

    dispatch[pickle.BUILD[0]] = _load_build

    def _container(self, target: object, kind: type, opcode: str) -> bool:
        """Check that *opcode* may fill *target*; True if it is a plain *kind*."""
        entry = self._maker(target, opcode)
        if type(target) is kind:
            return True
        if entry is not None and (entry.from_caller or isinstance(target, kind)):
            return False
        raise self._refuse(
            f"{opcode} on an object of type {type(target).__name__} is not allowed",
            opcode=opcode,
        )

    def _load_append(self) -> None:
        value = self.stack.pop()
        target: Any = self.stack[-1]
        self._container(target, list, "APPEND")
        target.append(value)

    dispatch[pickle.APPEND[0]] = _load_append

    def _load_appends(self) -> None:
        items = self.pop_mark()
        target: Any = self.stack[-1]
        if self._container(target, list, "APPENDS"):
            target.extend(items)
        else:
            extend = getattr(target, "extend", None)
            if extend is not None:
                extend(items)
            else:
                for item in items:
                    target.append(item)

    dispatch[pickle.APPENDS[0]] = _load_appends

    def _load_setitem(self) -> None:
        value = self.stack.pop()
        key = self.stack.pop()
        target: Any = self.stack[-1]
        self._container(target, dict, "SETITEM")
        target[key] = value

    dispatch[pickle.SETITEM[0]] = _load_setitem

    def _load_setitems(self) -> None:
        items = self.pop_mark()
        target: Any = self.stack[-1]
        self._container(target, dict, "SETITEMS")
        for index in range(0, len(items), 2):
            target[items[index]] = items[index + 1]

    dispatch[pickle.SETITEMS[0]] = _load_setitems

    def _load_additems(self) -> None:
        items = self.pop_mark()
        target: Any = self.stack[-1]
        if self._container(target, set, "ADDITEMS"):
            target.update(items)
        else:
            for item in items:
                target.add(item)

    dispatch[pickle.ADDITEMS[0]] = _load_additems

    def _load_bytearray8(self) -> None:
        # pickle's own handler allocates the declared length before reading: an
        # 18-byte pickle could claim 2 GiB. Read what is there, then compare.
        (length,) = struct.unpack("<Q", self.read(8))
        data = self.read(length)
        if len(data) != length:
            raise self._malformed(
                f"BYTEARRAY8 declares {length} bytes but the pickle has {len(data)}"
            )
        self.append(bytearray(data))

    dispatch[pickle.BYTEARRAY8[0]] = _load_bytearray8

    # -- helpers -----------------------------------------------------------------------

    def _remember(self, obj: object, entry: Entry) -> None:
        if id(obj) not in self._globals:
            self._made[id(obj)] = (obj, entry)

    def _replace(self, old: object, new: object) -> None:
        """Put *new* where *old* is on the stack top and in the memo."""
        self.stack[-1] = new
        for index, value in list(self.memo.items()):
            if value is old:
                self.memo[index] = new

    def _refuse(
        self, message: str, global_name: str | None = None, *, opcode: str | None = None
    ) -> UnsafeContentError:
        return UnsafeContentError(
            message,
            archive=self._importer.filename,
            record=self._record,
            global_name=global_name,
            opcode=opcode,
        )

    def _malformed(self, message: str) -> PickleLoadError:
        return PickleLoadError(
            message, archive=self._importer.filename, record=self._record
        )


def _refusing(opcode: str) -> Callable[[SafeUnpickler], None]:
    """Return an opcode handler that refuses *opcode*."""

    def refuse(self: SafeUnpickler) -> None:
        raise self._refuse(
            f"opcode {opcode} is not allowed in a safe load", opcode=opcode
        )

    return refuse


for _code, _name in _REFUSED_OPCODES.items():
    SafeUnpickler.dispatch[_code] = _refusing(_name)


def _python3_name(module: str, name: str) -> tuple[str, str]:
    """Map a protocol 0-2 global to its Python 3 name, as pickle itself does."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def _set_attributes(inst: object, state: object, *, slots: bool) -> None:
    """Apply BUILD *state* to an instance's ``__dict__`` (and slots if allowed).

    Names must be str and may not be dunder names (no ``__class__``, ``__dict__``).
    """
    slot_state: object = None
    if slots and isinstance(state, tuple) and len(state) == 2:
        state, slot_state = state
    parts = [_attribute_map(part) for part in (state, slot_state)]
    if parts[0]:
        vars(inst).update(parts[0])
    for key, value in parts[1].items():
        setattr(inst, key, value)


def _attribute_map(part: object) -> dict[str, object]:
    """Return one half of a BUILD state as a dict of plain attribute names."""
    if part is None:
        return {}
    if not isinstance(part, dict) or not all(
        type(key) is str and not key.startswith("__") for key in part
    ):
        raise Refused("BUILD state must map plain attribute names to values")
    return part
