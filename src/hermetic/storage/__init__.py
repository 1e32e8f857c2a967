"""Storage back ends: how tensor and array bytes become records and come back.

A pickle refers to raw bytes through a persistent id
``("storage", storage_type, key, location, numel)`` whose bytes live in the record
``.data/<key>.storage``. Each framework has one back end module with the same two
duties (save: turn an object into such an id and hand its bytes to a sink; load: turn
an id back into a storage). Frameworks are imported inside the back ends only, and only
when an object of theirs is met, so ``import hermetic`` never imports them.
"""

from __future__ import annotations

import sys
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .._importer import PackageImporter

__all__ = ["StorageSink", "load_storage", "saving_backends"]


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

    def persistent_id(self, obj: object, sink: StorageSink) -> tuple[Any, ...] | None:
        """Return the persistent id for *obj*, or None when pickle handles it."""
        ...


def saving_backends() -> list[SavingBackend]:
    """Return the back ends of the frameworks this process has already imported."""
    backends: list[SavingBackend] = []
    if "torch" in sys.modules:
        from . import _torch

        backends.append(_torch.TorchBackend())
    return backends


def load_storage(
    importer: PackageImporter,
    storage_type: Any,
    key: Any,
    location: Any,
    numel: int,
    map_location: Any,
) -> Any:
    """Return the storage a persistent id names, placed as *map_location* says."""
    from . import _torch

    if isinstance(location, bytes):
        location = location.decode("ascii")
    return _torch.load_storage(
        importer, storage_type, key, location, numel, map_location
    )
