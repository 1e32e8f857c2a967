"""Storage back ends: how tensor and array bytes become records and come back.

A pickle refers to raw bytes through a persistent id
``("storage", storage_type, key, location, numel)`` whose bytes live in the record
``.data/<key>.storage``. Each framework has one back end module with the same two
duties (save: turn an object into such an id and hand its bytes to a sink; load: turn
an id back into a storage). Frameworks are imported inside the back ends only, and only
when an object of theirs is met, so ``import hermetic`` never imports them.

Back ends: ``_torch`` (torch storage classes as storage types) and ``_numpy`` (NumPy
scalar types as storage types; it also loads torch-written tensors as arrays when
torch is not importable).
"""

from __future__ import annotations

import mmap
import sys
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .._importer import PackageImporter

__all__ = [
    "SavingBackend",
    "StorageSink",
    "archive_mmap",
    "check_storage_size",
    "load_storage",
    "saving_backends",
]


class StorageSink(Protocol):
    """Where a back end puts the bytes of a storage while an object is pickled."""

    def add_storage(self, identity: Hashable, data: memoryview, owner: object) -> int:
        """Return the key of the storage *identity*, queuing *data* once per identity.

        *owner* is kept alive until the bytes are written, so *identity* stays unique.
        """
        ...


class SavingBackend(Protocol):
    """The save half of a back end."""

    def handled_types(self) -> tuple[type, ...]:
        """Types whose instances need persistent ids (storages, tensors, arrays)."""
        ...

    def is_storage(self, obj: object) -> bool:
        """Tell whether *obj*, of a handled type, is saved through storages.

        The pickler's first pass asks this (it must not touch a sink); False lets
        pickle save *obj* as usual, e.g. a NumPy array of Python objects.
        """
        ...

    def persistent_id(self, obj: object, sink: StorageSink) -> tuple[Any, ...] | None:
        """Return the persistent id for *obj*, or None when pickle handles it."""
        ...

    def reduce(self, obj: object, sink: StorageSink) -> tuple[Any, ...] | None:
        """Return a reduce tuple for *obj* (queuing its bytes), or None.

        None lets *obj* reduce itself (torch tensors do, and their storages then get
        persistent ids); a NumPy array reduces to a call of ``numpy.ndarray`` whose
        buffer argument pickles as a persistent id.
        """
        ...


def saving_backends() -> list[SavingBackend]:
    """Return the back ends of the frameworks this process has already imported."""
    backends: list[SavingBackend] = []
    if "torch" in sys.modules:
        from . import _torch

        backends.append(_torch.TorchBackend())
    if "numpy" in sys.modules:
        from . import _numpy

        backends.append(_numpy.NumpyBackend())
    return backends


def load_storage(
    importer: PackageImporter,
    storage_type: Any,
    key: Any,
    location: Any,
    numel: int,
    map_location: Any,
) -> Any:
    """Return the storage a persistent id names, placed as *map_location* says.

    A NumPy scalar type as *storage_type* gives a 1-D array of that type on the CPU
    (*location* and *map_location* do not apply to arrays); anything else is a torch
    storage class.
    """
    from . import _numpy

    if _numpy.is_numpy_storage_type(storage_type):
        return _numpy.load_storage(importer, storage_type, key, numel)
    from . import _torch

    if isinstance(location, bytes):
        location = location.decode("ascii")
    return _torch.load_storage(
        importer, storage_type, key, location, numel, map_location
    )


def check_storage_size(
    importer: PackageImporter, record: str, numel: object, itemsize: int, kind: object
) -> int:
    """Return *record*'s size, refusing one that is not *numel* items of *kind*.

    Raises:
        ArchiveFormatError: naming the record, its size and what the pickle expects.
    """
    from ..errors import ArchiveFormatError

    size = importer.zip_reader.record_size(record)
    if not isinstance(numel, int) or numel < 0 or numel * itemsize != size:
        raise ArchiveFormatError(
            f"storage record holds {size} bytes, but its pickle expects {numel!r} "
            f"elements of {kind} ({itemsize} bytes each)",
            archive=importer.filename,
            record=record,
        )
    return size


def archive_mmap(importer: PackageImporter) -> mmap.mmap:
    """Return the copy-on-write map of *importer*'s archive file, made once.

    Every back end maps through this one map, so storages of all frameworks share
    it. Writes to mapped memory stay private to this process: the file never
    changes. Call only when ``importer.zip_reader.path`` is set.
    """
    mapped = importer.zip_reader.mapping()
    if mapped is None:
        raise ValueError(f"archive {importer.filename!r} is not a file on disk")
    return mapped
