"""The torch back end: storages as torch.package writes and reads them.

Saving writes each distinct storage once per exporter (views share one record) under
a key numbered in order of first use. Loading maps the archive read-only-copy-on-write
when it is a file on disk, so storages are views of the file rather than copies, and
shares a storage between all ``load_pickle`` calls of one importer.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from .._format import storage_record
from ..errors import ArchiveFormatError, PickleLoadError
from . import archive_mmap

if TYPE_CHECKING:
    from .._importer import PackageImporter
    from . import StorageSink

__all__ = ["TorchBackend", "load_storage"]

_lock = threading.Lock()


class TorchBackend:
    """Persistent ids for torch storages (typed and untyped)."""

    def __init__(self) -> None:
        import torch

        self._torch = torch

    def handled_types(self) -> tuple[type, ...]:
        torch = self._torch
        return (torch.Tensor, torch.storage.TypedStorage, torch.UntypedStorage)

    def is_storage(self, obj: object) -> bool:
        return isinstance(obj, self.handled_types())

    def reduce(self, obj: object, sink: StorageSink) -> tuple[Any, ...] | None:
        return None  # tensors reduce themselves; their storages get persistent ids

    def persistent_id(self, obj: object, sink: StorageSink) -> tuple[Any, ...] | None:
        torch = self._torch
        if isinstance(obj, torch.storage.TypedStorage):
            untyped = obj._untyped_storage
            storage_type: Any = getattr(torch, obj._pickle_storage_type())
            numel = obj._size()
        elif isinstance(obj, torch.UntypedStorage):
            untyped = obj
            storage_type = torch.UntypedStorage
            numel = obj.nbytes()
        else:
            return None
        location = torch.serialization.location_tag(untyped)
        cpu = untyped if untyped.device.type == "cpu" else untyped.cpu()
        data = _storage_bytes(torch, cpu)
        key = sink.add_storage(("torch", untyped._cdata), data, (untyped, cpu))
        return ("storage", storage_type, key, location, numel)


def _storage_bytes(torch: Any, storage: Any) -> memoryview:
    """Return the bytes of a CPU storage without copying them."""
    nbytes = storage.nbytes()
    if nbytes == 0:
        return memoryview(b"")
    as_bytes = torch.empty(0, dtype=torch.uint8).set_(storage, 0, (nbytes,), (1,))
    return memoryview(as_bytes.numpy()).cast("B")


def load_storage(
    importer: PackageImporter,
    storage_type: Any,
    key: Any,
    location: str,
    numel: int,
    map_location: Any,
) -> Any:
    """Return the TypedStorage for one persistent id, placed per *map_location*."""
    import torch

    # ``_dtype``: the public ``dtype`` of a legacy storage class warns that
    # TypedStorage is deprecated, and loading must emit no warning.
    dtype = torch.uint8 if storage_type is torch.UntypedStorage else storage_type._dtype
    untyped = _cpu_storage(importer, torch, key, dtype, numel)
    placed = _restore_location(torch, untyped, location, map_location)
    return torch.storage.TypedStorage(  # type: ignore[no-untyped-call]
        wrap_storage=placed, dtype=dtype, _internal=True
    )


def _cpu_storage(
    importer: PackageImporter, torch: Any, key: Any, dtype: Any, numel: object
) -> Any:
    """Return the CPU storage of record *key*, mapped once per importer."""
    record = storage_record(key)
    cache: dict[str, Any] = importer.__dict__.setdefault("_torch_storages", {})
    with _lock:
        if record in cache:
            return cache[record]
        reader = importer.zip_reader
        size = reader.record_size(record)
        itemsize = torch.empty((), dtype=dtype).element_size()
        if not isinstance(numel, int) or numel < 0 or numel * itemsize != size:
            raise ArchiveFormatError(
                f"storage record holds {size} bytes, but its pickle expects {numel} "
                f"elements of {dtype} ({itemsize} bytes each)",
                archive=importer.filename,
                record=record,
            )
        storage = _map_or_read(importer, torch, record, size)
        cache[record] = storage
        return storage


def _map_or_read(importer: PackageImporter, torch: Any, record: str, size: int) -> Any:
    if size == 0:
        return torch.UntypedStorage(0)
    reader = importer.zip_reader
    span = reader.record_span(record)
    if span is not None and reader.path is not None:
        mapped = archive_mmap(importer)  # one map per importer, shared with NumPy
        offset, length = span
        tensor = torch.frombuffer(
            mapped, dtype=torch.uint8, count=length, offset=offset
        )
    else:
        tensor = torch.frombuffer(bytearray(reader.read(record)), dtype=torch.uint8)
    return tensor.untyped_storage()


def _restore_location(
    torch: Any, storage: Any, location: str, map_location: Any
) -> Any:
    """Move *storage* where *map_location* says, as ``torch.load`` would."""
    if map_location is None:
        target: Any = location
    elif isinstance(map_location, dict):
        target = map_location.get(location, location)
    elif isinstance(map_location, (str, bytes)):
        target = (
            map_location.decode() if isinstance(map_location, bytes) else map_location
        )
    elif isinstance(map_location, torch.device):
        target = str(map_location)
    elif callable(map_location):
        result = map_location(storage, location)
        if result is not None:
            return result
        target = location
    else:
        raise PickleLoadError(f"unsupported map_location {map_location!r}")
    if str(target) == "meta":
        return torch.UntypedStorage(storage.nbytes(), device="meta")
    return torch.serialization.default_restore_location(storage, str(target))
