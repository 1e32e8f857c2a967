"""The NumPy back end: arrays as storage records, and torch tensors without torch.

Saving writes the bytes under an ``ndarray`` as one storage record and pickles the
array as a call of NumPy's own constructor,
``numpy.ndarray(shape, dtype, <storage>, offset_in_bytes, strides)``, whose
``<storage>`` is the persistent id ``("storage", numpy.uint8, key, "cpu", nbytes)``.
Loading such a pickle needs NumPy and nothing of hermetic's beyond the storage: the
storage loads as a 1-D ``uint8`` array over the record (mapped copy-on-write from the
archive file when it can be), shared by every ``load_pickle`` call of one importer.

What a record holds is the whole memory the array lives in: views of one base array
write one record (the base's) and are views of one buffer again after loading.

The module also lets a process without torch load the tensors of torch-written
archives as arrays (:data:`TORCH_DTYPES` and :func:`torch_global`).

It does not:

* treat object arrays (or dtypes with object fields) as storages: pickle saves them
  by value, as it always did;
* treat ``ndarray`` subclasses (``np.matrix``, masked arrays, ``np.memmap``) as
  storages: their own pickling keeps their type and extra state;
* keep the strides of arrays with no bytes (zero size or zero itemsize): those pickle
  as ``numpy.ndarray(shape, dtype)`` and write no record;
* load through the real ``torch.package``: its loader expects torch storage classes.

NumPy is imported inside functions only, so ``import hermetic`` does not import it.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._format import storage_record

if TYPE_CHECKING:
    from .._importer import PackageImporter
    from . import StorageSink

__all__ = [
    "TORCH_DTYPES",
    "NumpyBackend",
    "is_numpy_storage_type",
    "is_torch_importable",
    "load_storage",
    "torch_global",
]

_lock = threading.Lock()


class _StorageRef:
    """Stands for one storage record inside an array's reduce arguments."""

    __slots__ = ("key", "nbytes")

    def __init__(self, key: int, nbytes: int) -> None:
        self.key = key
        self.nbytes = nbytes


class _Region:
    """Exposes raw memory to NumPy as bytes, keeping the memory's owner alive."""

    def __init__(self, address: int, nbytes: int, owner: object) -> None:
        self.__array_interface__ = {
            "data": (address, True),
            "shape": (nbytes,),
            "typestr": "|u1",
            "version": 3,
        }
        self.owner = owner


class NumpyBackend:
    """Saves exact ``numpy.ndarray`` objects of fixed-size dtypes as storages."""

    def __init__(self) -> None:
        import numpy

        self._np = numpy

    def handled_types(self) -> tuple[type, ...]:
        return (self._np.ndarray, _StorageRef)

    def is_storage(self, obj: object) -> bool:
        """Tell whether *obj* is saved through a storage (no sink needed to tell)."""
        return type(obj) is self._np.ndarray and not _any(obj).dtype.hasobject

    def persistent_id(self, obj: object, sink: StorageSink) -> tuple[Any, ...] | None:
        if type(obj) is not _StorageRef:
            return None
        return ("storage", self._np.uint8, obj.key, "cpu", obj.nbytes)

    def reduce(self, obj: object, sink: StorageSink) -> tuple[Any, ...] | None:
        """Return ``(numpy.ndarray, args)`` rebuilding *obj* over its storage."""
        if not self.is_storage(obj):
            return None
        np, array = self._np, _any(obj)
        if array.nbytes == 0:
            return (np.ndarray, (array.shape, array.dtype))
        array, start, nbytes, owner = _memory_of(np, array)
        data = memoryview(np.asarray(_Region(start, nbytes, owner)))
        key = sink.add_storage(("numpy", start, nbytes), data, owner)
        storage = _StorageRef(key, nbytes)
        offset = _address(array) - start
        return (np.ndarray, (array.shape, array.dtype, storage, offset, array.strides))


def _any(obj: object) -> Any:
    """Return *obj* typed as Any: NumPy is not imported for type checking."""
    return obj


def _address(array: Any) -> int:
    return int(array.__array_interface__["data"][0])


def _extent(array: Any) -> tuple[int, int]:
    """Return the byte range ``[low, high)`` a non-empty array spans from its data."""
    low = high = 0
    for length, stride in zip(array.shape, array.strides, strict=True):
        if stride < 0:
            low += (length - 1) * stride
        else:
            high += (length - 1) * stride
    return low, high + array.itemsize


def _memory_of(np: Any, array: Any) -> tuple[Any, int, int, object]:
    """Return (array to save, address, nbytes, owner) of the block *array* is in.

    An array outside the block :func:`_block_of` finds (a foreign
    ``__array_interface__`` can claim anything) is copied, keeping its dtype and
    memory order, and the copy is saved instead.
    """
    start, nbytes, owner = _block_of(np, array)
    low, high = _extent(array)
    address = _address(array)
    if start <= address + low and address + high <= start + nbytes:
        return array, start, nbytes, owner
    copy = array.copy(order="K")
    return copy, _address(copy), copy.nbytes, copy


def _block_of(np: Any, array: Any) -> tuple[int, int, object]:
    """Return (address, nbytes, owner) of the memory of *array*'s last ``ndarray`` base.

    That is all of the base's memory when it owns its data, else the bytes it spans.
    """
    root = array
    while isinstance(root.base, np.ndarray):
        root = root.base
    low, high = _extent(root)
    if root.flags.owndata:
        high = max(high, root.nbytes)
    return _address(root) + low, high - low, root


# -- loading --------------------------------------------------------------------------


def is_numpy_storage_type(storage_type: object) -> bool:
    """Tell whether a persistent id's storage type is a NumPy scalar type."""
    np = sys.modules.get("numpy")  # a NumPy type exists only once NumPy is imported
    return (
        np is not None
        and isinstance(storage_type, type)
        and issubclass(storage_type, np.generic)
    )


def load_storage(
    importer: PackageImporter, storage_type: type, key: object, numel: object
) -> Any:
    """Return storage *key* as a 1-D array of *storage_type* over the record's bytes.

    The bytes are mapped copy-on-write from the archive file when the record is
    stored uncompressed in a ZIP on disk (writes never reach the file), else read
    into memory; either way once per importer, so arrays loaded by separate
    ``load_pickle`` calls share them.

    Raises:
        ArchiveFormatError: the record's size is not *numel* items of the type.
    """
    import numpy as np

    record = storage_record(key)
    dtype = np.dtype(storage_type)
    from . import check_storage_size

    size = check_storage_size(importer, record, numel, dtype.itemsize, dtype.name)
    data = _record_bytes(importer, np, record, size)
    return data if dtype == np.uint8 else data.view(dtype)


def _record_bytes(importer: PackageImporter, np: Any, record: str, size: int) -> Any:
    """Return the 1-D uint8 array of *record*, made once per importer."""
    from . import archive_mmap

    cache: dict[str, Any] = importer.__dict__.setdefault("_numpy_storages", {})
    with _lock:
        data = cache.get(record)
        if data is not None:
            return data
        reader = importer.zip_reader
        span = reader.record_span(record) if size else None
        if span is not None and reader.path is not None:
            offset, length = span
            mapped = archive_mmap(importer)
            data = np.frombuffer(mapped, dtype=np.uint8, count=length, offset=offset)
        elif size:
            data = np.frombuffer(bytearray(reader.read(record)), dtype=np.uint8)
        else:
            data = np.empty(0, dtype=np.uint8)
        cache[record] = data
        return data


# -- torch archives without torch ---------------------------------------------------

#: Every torch dtype: its names as ``torch.<name>`` globals, the legacy storage
#: class torch.package pickles for it (None: it pickles ``torch.storage.
#: UntypedStorage`` and names the dtype in ``_rebuild_tensor_v3``), and the NumPy
#: dtype its tensors load as without torch (None: NumPy has none, so loading
#: needs torch). torch writes storages little-endian, hence ``<`` throughout.
TORCH_DTYPES: tuple[tuple[tuple[str, ...], str | None, str | None], ...] = (
    (("float64", "double"), "DoubleStorage", "<f8"),
    (("float32", "float"), "FloatStorage", "<f4"),
    (("float16", "half"), "HalfStorage", "<f2"),
    (("bfloat16",), "BFloat16Storage", None),
    (("complex128", "cdouble"), "ComplexDoubleStorage", "<c16"),
    (("complex64", "cfloat"), "ComplexFloatStorage", "<c8"),
    (("complex32", "chalf"), None, None),
    (("int64", "long"), "LongStorage", "<i8"),
    (("int32", "int"), "IntStorage", "<i4"),
    (("int16", "short"), "ShortStorage", "<i2"),
    (("int8",), "CharStorage", "i1"),
    (("uint8",), "ByteStorage", "u1"),
    (("uint16",), None, "<u2"),
    (("uint32",), None, "<u4"),
    (("uint64",), None, "<u8"),
    (("bool",), "BoolStorage", "?"),
    (("qint8",), "QInt8Storage", None),
    (("qint32",), "QInt32Storage", None),
    (("quint8",), "QUInt8Storage", None),
    (("quint4x2",), "QUInt4x2Storage", None),
    (("quint2x4",), "QUInt2x4Storage", None),
    (("float8_e4m3fn",), None, None),
    (("float8_e4m3fnuz",), None, None),
    (("float8_e5m2",), None, None),
    (("float8_e5m2fnuz",), None, None),
    (("float8_e8m0fnu",), None, None),
    (("float4_e2m1fn_x2",), None, None),
    (("bits8",), None, None),
    (("bits16",), None, None),
    (("bits1x8",), None, None),
    (("bits2x4",), None, None),
    (("bits4x2",), None, None),
)


def is_torch_importable() -> bool:
    """Tell whether ``import torch`` works in this process (importing it if so)."""
    try:
        importlib.import_module("torch")
    except ImportError:
        return False
    return True


def torch_global(module: str, name: str) -> object:
    """Return what stands in for the torch global *module.name* when torch is absent.

    Tensor rebuild functions build arrays (``requires_grad``, hooks and parameter
    state are dropped); storage classes and dtypes become NumPy scalar types, which
    :func:`load_storage` accepts as storage types.

    Raises:
        LookupError: NumPy has no equivalent, with a message that says why.
    """
    full = f"{module}.{name}"
    known = full in _REBUILDERS or full in _DTYPE_GLOBALS
    if not known:
        raise LookupError(
            f"needs {full}, which only torch provides, and torch is not importable "
            "here: install torch to load it"
        )
    try:
        import numpy as np
    except ImportError:
        raise LookupError(
            f"needs {full}, and neither torch nor NumPy is importable here: install "
            "torch to load it (or NumPy, to load its tensors as arrays)"
        ) from None
    if full in _REBUILDERS:
        return _REBUILDERS[full]
    torch_name, numpy_name = _DTYPE_GLOBALS[full]
    if numpy_name is None:
        raise LookupError(
            f"holds a tensor of dtype torch.{torch_name} ({full}), which has no "
            "NumPy equivalent, and torch is not importable here: install torch to "
            "load it"
        )
    return np.dtype(numpy_name).type


def _dtype_globals() -> dict[str, tuple[str, str | None]]:
    """Index :data:`TORCH_DTYPES` by global name: (torch dtype, NumPy dtype)."""
    table: dict[str, tuple[str, str | None]] = {
        "torch.storage.UntypedStorage": ("uint8", "u1"),
        "torch.UntypedStorage": ("uint8", "u1"),
    }
    for names, storage_class, numpy_name in TORCH_DTYPES:
        for name in names:
            table[f"torch.{name}"] = (names[0], numpy_name)
        if storage_class is not None:
            table[f"torch.{storage_class}"] = (names[0], numpy_name)
    return table


def _rebuild_tensor_v2(
    storage: Any,
    storage_offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    requires_grad: bool = False,
    backward_hooks: object = None,
    metadata: dict[str, bool] | None = None,
) -> Any:
    """Stand-in for ``torch._utils._rebuild_tensor_v2``: an array over *storage*."""
    return _tensor_array(storage, storage.dtype, storage_offset, size, stride, metadata)


def _rebuild_tensor_v3(
    storage: Any,
    storage_offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    requires_grad: bool,
    backward_hooks: object,
    dtype: type,
    metadata: dict[str, bool] | None = None,
) -> Any:
    """Stand-in for ``torch._utils._rebuild_tensor_v3`` (dtype given separately)."""
    return _tensor_array(storage, dtype, storage_offset, size, stride, metadata)


def _rebuild_parameter(data: Any, requires_grad: bool, backward_hooks: object) -> Any:
    """Stand-in for ``torch._utils._rebuild_parameter``: the plain array."""
    return data


def _rebuild_parameter_with_state(
    data: Any, requires_grad: bool, backward_hooks: object, state: object
) -> Any:
    """Stand-in for ``torch._utils._rebuild_parameter_with_state``: the plain array."""
    return data


def _tensor_array(
    storage: Any,
    dtype: Any,
    storage_offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    metadata: dict[str, bool] | None,
) -> Any:
    """Return the array a tensor of *dtype* over *storage* (element units) shows."""
    import numpy as np

    dtype = np.dtype(dtype).newbyteorder("<")
    itemsize = dtype.itemsize
    try:
        array = np.ndarray(
            tuple(size),
            dtype,
            buffer=storage.view(np.uint8),
            offset=storage_offset * itemsize,
            strides=tuple(step * itemsize for step in stride),
        )
    except (TypeError, ValueError) as exc:  # the buffer is too small for it
        raise ValueError(f"tensor does not fit its storage: {exc}") from exc
    # Lazy conjugate and negative views store the plain data plus a flag.
    if metadata and metadata.get("conj"):
        array = np.conjugate(array)
    if metadata and metadata.get("neg"):
        array = np.negative(array)
    return array


_REBUILDERS: dict[str, Callable[..., Any]] = {
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor_v2,
    "torch._utils._rebuild_tensor_v3": _rebuild_tensor_v3,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _rebuild_parameter_with_state,
}
_DTYPE_GLOBALS = _dtype_globals()
