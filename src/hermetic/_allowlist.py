"""What a pickle may name under safe loading: the default allowlist and its helpers.

Every entry is an exact ``module.qualname``; nothing is matched by prefix or pattern.
An entry says what the unpickler may do with the object it names:

* *callable*: REDUCE may call it. Each default callable either is a C constructor
  that validates its own arguments (``set``, ``datetime.datetime``) or is a wrapper
  here that checks the arguments, then calls torch's or NumPy's own function.
* *storage type*: it may be the storage type of a ``("storage", ...)`` persistent id.
* *build*: how BUILD may set the state of an object the callable made (None: never).

Default entries, and why each is harmless whatever its arguments:

* ``builtins.set``, ``frozenset``, ``complex``: C constructors of plain values.
  ``builtins.bytearray`` only copies a bytes argument (``bytearray(10**12)`` would
  allocate), and ``_codecs.encode`` only turns latin-1 text into bytes (how
  protocols 0-2 pickle bytes). No other builtin: ``builtins`` is not trusted
  wholesale.
* ``collections.OrderedDict``: a plain mapping; BUILD may set instance attributes
  (``state_dict()._metadata``), never class or dunder attributes.
* ``datetime.date``/``time``/``datetime``/``timedelta``/``timezone`` and
  ``decimal.Decimal``: C types whose pickled arguments they validate themselves.
* torch (when importable; else the NumPy stand-ins that load tensors as arrays):
  ``torch._utils._rebuild_tensor_v2``/``_v3`` and ``_rebuild_parameter`` (checked: a
  loaded storage, non-negative int sizes, strides and offset, a bool
  ``requires_grad``, no backward hooks), ``torch.Size`` (ints only), every dtype
  (``torch.float32``) as a value, every storage class as a storage type.
* NumPy: ``numpy.ndarray`` (over a loaded storage, or empty), ``numpy.dtype`` (always
  a fresh copy; BUILD re-derives it, see :func:`build_dtype`),
  ``numpy._core.multiarray._reconstruct``/``scalar`` (and their ``numpy.core`` names)
  for arrays and scalars pickled by value, and NumPy's scalar types as values and
  storage types. Raw bytes never become objects: dtypes that hold Python objects are
  refused wherever bytes are interpreted.

This module does not import torch or NumPy itself; entries resolve them on first use.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import importlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "DEFAULT_ALLOWLIST",
    "NUMPY_SCALAR_TYPES",
    "Build",
    "Entry",
    "Refused",
    "build_allowlist",
    "build_dtype",
    "build_ndarray",
    "never_allowed_reason",
]

#: How BUILD may treat an object made by an entry's callable.
Build = Literal["dtype", "ndarray", "attributes", "caller"]

Resolver = Callable[[str, str], object]


@dataclass(frozen=True)
class Entry:
    """One allowed global: how to find it and what a pickle may do with it."""

    name: str
    resolve: Resolver
    callable: bool = False
    storage_type: bool = False
    build: Build | None = None
    #: Added by the caller (``allow=``) rather than a default.
    from_caller: bool = False


class Refused(Exception):
    """An argument a default constructor will not take; the unpickler names the record.

    Raised inside constructors, which do not know the archive; the unpickler turns it
    into an :class:`UnsafeContentError`.
    """


# -- builtins and the standard library -------------------------------------------------


def _bytearray(data: object = b"", *rest: object) -> bytearray:
    """Copy bytes into a bytearray; a size or an iterable is refused."""
    if isinstance(data, (bytes, bytearray)) and not rest:
        return bytearray(data)
    if isinstance(data, str) and rest in ((), ("latin-1",), ("latin1",)):
        return bytearray(data, "latin-1")  # protocol 0-2 pickle bytes as latin-1 text
    raise Refused("bytearray() takes only bytes in a safe load")


def _latin1_bytes(text: object, encoding: object = "latin1") -> bytes:
    """Protocol 0-2 pickle bytes as ``_codecs.encode(text, "latin1")``: only that."""
    if isinstance(text, str) and encoding in ("latin1", "latin-1"):
        return text.encode("latin-1")
    raise Refused("_codecs.encode takes only text and 'latin1' in a safe load")


def _value(obj: object) -> Resolver:
    return lambda module, name: obj


def _stdlib_entries() -> list[Entry]:
    calls: dict[str, object] = {
        "builtins.set": set,
        "builtins.frozenset": frozenset,
        "builtins.complex": complex,
        "builtins.bytearray": _bytearray,
        "_codecs.encode": _latin1_bytes,
        "datetime.date": datetime.date,
        "datetime.time": datetime.time,
        "datetime.datetime": datetime.datetime,
        "datetime.timedelta": datetime.timedelta,
        "datetime.timezone": datetime.timezone,
        "decimal.Decimal": decimal.Decimal,
    }
    entries = [Entry(name, _value(obj), callable=True) for name, obj in calls.items()]
    entries.append(
        Entry(
            "collections.OrderedDict",
            _value(collections.OrderedDict),
            callable=True,
            build="attributes",
        )
    )
    return entries


# -- checks shared by the torch and NumPy constructors ---------------------------------

_MAX_DIMS = 64


def _index(value: object, what: str) -> int:
    if type(value) is not int or value < 0:
        raise Refused(f"{what} must be a non-negative int, got {type(value).__name__}")
    return value


def _ints(value: object, what: str, *, signed: bool = False) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or len(value) > _MAX_DIMS:
        raise Refused(f"{what} must be a tuple of at most {_MAX_DIMS} ints")
    for item in value:
        if type(item) is not int or (item < 0 and not signed):
            raise Refused(f"{what} must hold only non-negative ints")
    return tuple(value)


def _count(dims: tuple[int, ...]) -> int:
    """Return the number of elements of an array of shape *dims*."""
    total = 1
    for dim in dims:
        total *= dim
    return total


def _check_hooks(hooks: object) -> None:
    if hooks is not None and not (isinstance(hooks, dict) and not hooks):
        raise Refused("tensors with backward hooks are not loaded safely")


def _check_tensor_args(
    offset: object,
    size: object,
    stride: object,
    requires_grad: object,
    hooks: object,
    metadata: object,
) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
    """Check the plain arguments of a tensor rebuild; return offset, size, stride."""
    checked_size = _ints(size, "tensor size")
    checked_stride = _ints(stride, "tensor stride")
    if len(checked_size) != len(checked_stride):
        raise Refused("tensor size and stride differ in length")
    if type(requires_grad) is not bool:
        raise Refused("requires_grad must be a bool")
    _check_hooks(hooks)
    if metadata is not None and not (
        isinstance(metadata, dict)
        and all(type(k) is str and type(v) is bool for k, v in metadata.items())
    ):
        raise Refused("tensor metadata must map names to bools")
    return _index(offset, "storage offset"), checked_size, checked_stride


# -- torch -----------------------------------------------------------------------------


def _torch() -> Any:
    """Return torch, or None when it is not importable here (NumPy stands in)."""
    from .storage import _numpy

    if _numpy.is_torch_importable():
        return importlib.import_module("torch")
    return None


def _torch_standin(name: str) -> Any:
    from .storage import _numpy

    module, _, attribute = name.rpartition(".")
    try:
        return _numpy.torch_global(module, attribute)
    except LookupError as exc:
        raise Refused(str(exc)) from None


def _check_storage(torch: Any, storage: object) -> None:
    if torch is not None:
        ok = isinstance(storage, torch.storage.TypedStorage)
    else:
        import numpy as np

        ok = isinstance(storage, np.ndarray) and storage.ndim == 1
    if not ok:
        raise Refused("a tensor must be rebuilt over a storage of this archive")


def _rebuild_tensor_v2(
    storage: object,
    storage_offset: object,
    size: object,
    stride: object,
    requires_grad: object = False,
    backward_hooks: object = None,
    metadata: object = None,
) -> Any:
    """Checked ``torch._utils._rebuild_tensor_v2``."""
    torch = _torch()
    _check_storage(torch, storage)
    offset, shape, strides = _check_tensor_args(
        storage_offset, size, stride, requires_grad, backward_hooks, metadata
    )
    if torch is None:
        rebuild = _torch_standin("torch._utils._rebuild_tensor_v2")
        return rebuild(storage, offset, shape, strides, requires_grad, None, metadata)
    hooks: collections.OrderedDict[Any, Any] = collections.OrderedDict()
    return torch._utils._rebuild_tensor_v2(
        storage, offset, shape, strides, requires_grad, hooks, metadata
    )


def _rebuild_tensor_v3(
    storage: object,
    storage_offset: object,
    size: object,
    stride: object,
    requires_grad: object,
    backward_hooks: object,
    dtype: object,
    metadata: object = None,
) -> Any:
    """Checked ``torch._utils._rebuild_tensor_v3`` (the dtype is given separately)."""
    torch = _torch()
    _check_storage(torch, storage)
    offset, shape, strides = _check_tensor_args(
        storage_offset, size, stride, requires_grad, backward_hooks, metadata
    )
    if torch is None:
        import numpy as np

        if not (isinstance(dtype, type) and issubclass(dtype, np.generic)):
            raise Refused("the tensor's dtype is not a dtype")
        rebuild = _torch_standin("torch._utils._rebuild_tensor_v3")
        return rebuild(
            storage, offset, shape, strides, requires_grad, None, dtype, metadata
        )
    if not isinstance(dtype, torch.dtype):
        raise Refused("the tensor's dtype is not a torch.dtype")
    hooks: collections.OrderedDict[Any, Any] = collections.OrderedDict()
    return torch._utils._rebuild_tensor_v3(
        storage, offset, shape, strides, requires_grad, hooks, dtype, metadata
    )


def _rebuild_parameter(
    data: object, requires_grad: object, backward_hooks: object
) -> Any:
    """Checked ``torch._utils._rebuild_parameter``."""
    torch = _torch()
    if type(requires_grad) is not bool:
        raise Refused("requires_grad must be a bool")
    _check_hooks(backward_hooks)
    if torch is None:
        return _torch_standin("torch._utils._rebuild_parameter")(data, False, None)
    if type(data) is not torch.Tensor:
        raise Refused("a parameter must wrap a plain tensor")
    hooks: collections.OrderedDict[Any, Any] = collections.OrderedDict()
    return torch._utils._rebuild_parameter(data, requires_grad, hooks)


def _size(sizes: object = ()) -> Any:
    """Checked ``torch.Size``."""
    torch = _torch()
    if torch is None:
        _torch_standin("torch.Size")  # raises: NumPy has no stand-in
    return torch.Size(_ints(sizes, "torch.Size"))


def _torch_value(module: str, name: str) -> object:
    torch = _torch()
    if torch is None:
        return _torch_standin(f"{module}.{name}")
    target: Any = importlib.import_module(module)
    return getattr(target, name)


def _torch_entries() -> list[Entry]:
    from .storage._numpy import TORCH_DTYPES

    entries = [
        Entry("torch._utils._rebuild_tensor_v2", _value(_rebuild_tensor_v2), True),
        Entry("torch._utils._rebuild_tensor_v3", _value(_rebuild_tensor_v3), True),
        Entry("torch._utils._rebuild_parameter", _value(_rebuild_parameter), True),
        Entry("torch.Size", _value(_size), callable=True),
        Entry("torch.storage.UntypedStorage", _torch_value, storage_type=True),
        Entry("torch.UntypedStorage", _torch_value, storage_type=True),
    ]
    for names, storage_class, _ in TORCH_DTYPES:
        entries.extend(Entry(f"torch.{name}", _torch_value) for name in names)
        if storage_class is not None:
            entries.append(
                Entry(f"torch.{storage_class}", _torch_value, storage_type=True)
            )
    return entries


# -- NumPy -----------------------------------------------------------------------------

#: NumPy scalar types a pickle may name (as values and as storage types).
NUMPY_SCALAR_TYPES = (
    "bool", "bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
    "uint64", "float16", "float32", "float64", "longdouble", "complex64", "complex128",
    "clongdouble", "str_", "bytes_", "void", "datetime64", "timedelta64", "intc",
    "uintc", "intp", "uintp", "byte", "ubyte", "short", "ushort", "longlong",
    "ulonglong", "half", "single", "double", "csingle", "cdouble", "int_", "uint",
    "long", "ulong",
)  # fmt: skip


def _numpy() -> Any:
    return importlib.import_module("numpy")


def _multiarray() -> Any:
    try:
        return importlib.import_module("numpy._core.multiarray")
    except ImportError:  # NumPy 1.x
        return importlib.import_module("numpy.core.multiarray")


def _scalar_type(module: str, name: str) -> object:
    np = _numpy()
    found = getattr(np, name, None)
    if not (isinstance(found, type) and issubclass(found, np.generic)):
        raise Refused(f"numpy.{name} is not a NumPy scalar type here")
    if found is np.object_:
        raise Refused("numpy.object_ is not allowed")
    return found


def _plain_dtype(dtype: object, what: str) -> Any:
    """Return *dtype* if raw bytes may be read as it: honest, and no Python objects."""
    np = _numpy()
    if not isinstance(dtype, np.dtype):
        raise Refused(f"{what} needs a numpy.dtype")
    if dtype.hasobject or _canonical_dtype(np, dtype).flags != dtype.flags:
        raise Refused(f"{what} would read Python objects out of raw bytes")
    return dtype


def _ndarray(
    shape: object,
    dtype: object,
    buffer: object = None,
    offset: object = 0,
    strides: object = None,
    order: object = None,
) -> Any:
    """Checked ``numpy.ndarray``: a view of a loaded storage, or an empty array."""
    np = _numpy()
    dims = _ints(shape, "array shape")
    checked = _plain_dtype(dtype, "an array")
    if order is not None:
        raise Refused("array order is not supported in a safe load")
    if buffer is None:
        if _count(dims) * checked.itemsize:
            raise Refused("an array without a storage must be empty")
        return np.ndarray(dims, checked)
    if not (isinstance(buffer, np.ndarray) and buffer.ndim == 1):
        raise Refused("an array must be a view of a storage of this archive")
    steps = None if strides is None else _ints(strides, "array strides", signed=True)
    return np.ndarray(
        dims, checked, buffer=buffer, offset=_index(offset, "offset"), strides=steps
    )


def _dtype(obj: object, align: object = False, copy: object = True) -> Any:
    """Checked ``numpy.dtype``: always a fresh dtype, described by a string."""
    if not isinstance(obj, str) or type(align) is not bool:
        raise Refused("numpy.dtype takes a type string and a bool in a safe load")
    return _numpy().dtype(obj, align=align, copy=True)


def _reconstruct(subtype: object, shape: object, dtype: object) -> Any:
    """Checked ``_reconstruct``: the empty ndarray that BUILD then fills."""
    if subtype is not _ndarray or dtype != b"b" or _count(_ints(shape, "shape")):
        raise Refused("_reconstruct makes only empty numpy.ndarray objects here")
    return _multiarray()._reconstruct(_numpy().ndarray, (0,), b"b")


def _scalar(dtype: object, obj: object = None) -> Any:
    """Checked ``scalar``: an object scalar is the object itself, else bytes."""
    np = _numpy()
    if isinstance(dtype, np.dtype) and dtype.kind == "O" and dtype.fields is None:
        return obj
    checked = _plain_dtype(dtype, "a scalar")
    if not isinstance(obj, bytes) or len(obj) != checked.itemsize:
        raise Refused("a NumPy scalar needs exactly its dtype's size in bytes")
    return _multiarray().scalar(checked, obj)


def _numpy_entries() -> list[Entry]:
    entries = [
        Entry("numpy.ndarray", _value(_ndarray), callable=True),
        Entry("numpy.dtype", _value(_dtype), callable=True, build="dtype"),
    ]
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):
        entries.append(
            Entry(
                f"{module}._reconstruct",
                _value(_reconstruct),
                callable=True,
                build="ndarray",
            )
        )
        entries.append(Entry(f"{module}.scalar", _value(_scalar), callable=True))
    entries.extend(
        Entry(f"numpy.{name}", _scalar_type, storage_type=True)
        for name in NUMPY_SCALAR_TYPES
    )
    return entries


# -- BUILD on NumPy objects ------------------------------------------------------------


def _canonical_dtype(np: Any, dtype: Any) -> Any:
    """Return the dtype NumPy's public constructor makes for *dtype*'s description.

    Its flags are computed by NumPy, never taken from a pickle.
    """
    if dtype.fields is not None:
        names = list(dtype.names)
        fields = [dtype.fields[name] for name in names]
        spec: dict[str, Any] = {
            "names": names,
            "formats": [_canonical_dtype(np, field[0]) for field in fields],
            "offsets": [field[1] for field in fields],
            "itemsize": dtype.itemsize,
        }
        if any(len(field) > 2 for field in fields):
            spec["titles"] = [field[2] if len(field) > 2 else None for field in fields]
        return np.dtype(spec, align=dtype.isalignedstruct)
    if dtype.subdtype is not None:
        base, shape = dtype.subdtype
        return np.dtype((_canonical_dtype(np, base), shape))
    return np.dtype(dtype.str)


def build_dtype(inst: Any, state: object) -> Any:
    """Return the dtype *inst* becomes with BUILD *state*, made without trusting it.

    NumPy's own ``dtype.__setstate__`` takes the dtype's flags from the pickle: a
    structured dtype holding Python objects can claim it holds none, and an array of
    it would turn raw bytes into object pointers. So the state is applied to a
    throwaway copy, the dtype it describes is rebuilt through NumPy's public
    constructor, and the state must be exactly the one NumPy would write for that
    rebuilt dtype. The rebuilt dtype replaces *inst*.
    """
    np = _numpy()
    if not isinstance(state, tuple):
        raise Refused("a numpy.dtype state must be a tuple")
    probe = np.dtype(inst, copy=True)
    probe.__setstate__(state)
    canonical = _canonical_dtype(np, probe)
    if canonical.__reduce__() != probe.__reduce__():
        raise Refused(
            "numpy.dtype state differs from what NumPy writes for the dtype it "
            "describes (forged flags or fields)"
        )
    return canonical


def build_ndarray(inst: Any, state: object) -> None:
    """Fill the empty array *inst* from BUILD *state* after checking every field."""
    np = _numpy()
    if not (isinstance(state, tuple) and len(state) == 5 and state[0] == 1):
        raise Refused("an ndarray state must be (1, shape, dtype, fortran, data)")
    _, shape, dtype, is_fortran, data = state
    dims = _ints(shape, "array shape")
    count = _count(dims)
    if type(is_fortran) is not bool:
        raise Refused("the array's order flag must be a bool")
    if isinstance(dtype, np.dtype) and dtype.kind == "O" and dtype.fields is None:
        if type(data) is not list or len(data) != count:
            raise Refused("an object array's data must be a list of its items")
    else:
        checked = _plain_dtype(dtype, "an array")
        if type(data) is not bytes or len(data) != count * checked.itemsize:
            raise Refused("an array's data must be exactly its size in bytes")
    inst.__setstate__(state)


# -- the allowlist ---------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")

#: Modules that can run code, reach the file system or the network, or unpickle:
#: never allowed, even when a caller adds them (torch issue 189445).
# fmt: off
_NEVER_MODULES = frozenset((
    "os", "posix", "nt", "subprocess", "_posixsubprocess", "sys", "importlib",
    "pickle", "_pickle", "marshal", "ctypes", "_ctypes", "runpy", "code", "codeop",
    "pty", "shutil", "socket", "multiprocessing", "threading", "_thread", "signal",
    "pdb", "bdb", "webbrowser", "types", "functools", "operator", "inspect",
    "pkgutil", "zipimport", "cProfile", "profile", "timeit", "atexit", "site", "gc",
    "io", "_io", "tempfile", "shelve", "dill", "cloudpickle", "joblib", "hermetic",
    "asyncio", "concurrent",
))
_NEVER_NAMES = frozenset((
    "builtins.eval", "builtins.exec", "builtins.compile", "builtins.__import__",
    "builtins.getattr", "builtins.setattr", "builtins.delattr", "builtins.open",
    "builtins.breakpoint", "builtins.input", "builtins.globals", "builtins.locals",
    "builtins.vars", "builtins.exit", "builtins.quit", "builtins.help",
    "builtins.type", "builtins.super", "builtins.object", "builtins.__build_class__",
    "builtins.classmethod", "builtins.staticmethod", "builtins.property",
    "builtins.memoryview", "torch.load", "torch.hub.load", "torch.jit.load",
    "torch.package.PackageImporter", "torch.serialization.load",
    "torch.utils.collect_env.run", "numpy.load", "numpy.fromfile",
))
# fmt: on


def _default_allowlist() -> dict[str, Entry]:
    entries = _stdlib_entries() + _torch_entries() + _numpy_entries()
    return {entry.name: entry for entry in entries}


DEFAULT_ALLOWLIST: Mapping[str, Entry] = _default_allowlist()


def _resolve_host(module: str, name: str) -> object:
    """Import *module* from the host (never from an archive) and walk *name*."""
    target: Any = importlib.import_module(module)
    for part in name.split("."):
        target = getattr(target, part)
    return target


def never_allowed_reason(name: str) -> str | None:
    """Say why *name* can never be allowed, or None.

    >>> never_allowed_reason("builtins.eval")
    'it can run arbitrary code or reach outside the process'
    >>> never_allowed_reason("os.path.join")
    "module 'os' can run code, touch files or unpickle"
    >>> never_allowed_reason("mylib.Point") is None
    True
    """
    if name in _NEVER_NAMES:
        return "it can run arbitrary code or reach outside the process"
    top = name.partition(".")[0]
    if top in _NEVER_MODULES:
        return f"module {top!r} can run code, touch files or unpickle"
    return None


def build_allowlist(extra: Iterable[object]) -> dict[str, Entry]:
    """Return the default allowlist plus the caller's ``module.qualname`` names.

    Raises:
        ValueError: a name is malformed, or is one that can never be allowed.
    """
    if isinstance(extra, str):
        raise TypeError("allow= takes a list of 'module.qualname' strings, not a str")
    allowlist = dict(DEFAULT_ALLOWLIST)
    for name in extra:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(
                f"allow= entries must be 'module.qualname' strings, got {name!r}"
            )
        reason = never_allowed_reason(name)
        if reason is not None:
            raise ValueError(f"refusing to allow {name!r} in a safe load: {reason}")
        if name not in allowlist:
            allowlist[name] = Entry(
                name, _resolve_host, callable=True, build="caller", from_caller=True
            )
    return allowlist
