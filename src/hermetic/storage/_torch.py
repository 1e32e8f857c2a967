"""The torch back end: storages as torch.package writes and reads them.

Saving writes each distinct storage once per exporter (views share one record) under
a key numbered in order of first use. Loading maps the archive copy-on-write when it
is a file on disk, so storages are views of the file rather than copies, and shares a
storage between all ``load_pickle`` calls of one importer, in any thread, and with the
ScriptModules it loads (:mod:`._torchscript`).

Three of torch's load functions are replaced while unpickling (:func:`load_override`):
the quantized-tensor rebuild (torch's reads the deprecated ``TypedStorage.device``,
which warns), the sparse-tensor rebuild (torch's queues every tensor in a process-wide
list that only ``torch.load`` empties, racing between threads) and the ScriptModule
loader (torch's needs its C++ archive reader).

It does not save a bare ``TypedStorage`` of a dtype without a legacy storage class
(uint16, float8, ...): the format names a typed storage by that class. Tensors of
those dtypes save as untyped storages plus a dtype, as torch does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._format import storage_record
from ..errors import PickleLoadError
from . import archive_mmap, check_storage_size

if TYPE_CHECKING:
    from .._importer import PackageImporter
    from . import StorageSink

__all__ = [
    "TorchBackend",
    "cached_storage",
    "import_torch",
    "load_override",
    "load_storage",
]


def import_torch() -> Any:
    """Import torch, typed as ``Any``: its private API is what this module uses."""
    import torch

    return torch


class TorchBackend:
    """Persistent ids for torch storages (typed and untyped)."""

    def __init__(self) -> None:
        self._torch = import_torch()

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
            storage_type: Any = getattr(torch, _legacy_class_name(obj))
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


def _legacy_class_name(storage: Any) -> str:
    """Return the name of the legacy class (``FloatStorage``) of a typed storage."""
    try:
        return str(storage._pickle_storage_type())
    except KeyError:
        raise TypeError(
            f"a bare TypedStorage of dtype {storage.dtype} cannot be saved: the "
            "format names typed storages by legacy storage class and this dtype has "
            "none; save a tensor that uses it, or its untyped_storage(), instead"
        ) from None


def _storage_bytes(torch: Any, storage: Any) -> memoryview:
    """Return the bytes of a CPU storage without copying them."""
    nbytes = storage.nbytes()
    if nbytes == 0:
        return memoryview(b"")
    as_bytes = torch.empty(0, dtype=torch.uint8).set_(storage, 0, (nbytes,), (1,))
    return memoryview(as_bytes.numpy()).cast("B")


# -- loading ------------------------------------------------------------------------


def load_storage(
    importer: PackageImporter,
    storage_type: Any,
    key: Any,
    location: str,
    numel: object,
    map_location: Any,
) -> Any:
    """Return the TypedStorage for one persistent id, placed per *map_location*."""
    torch = import_torch()
    record = storage_record(key)
    dtype = _storage_dtype(importer, torch, storage_type, record)
    check_storage_size(importer, record, numel, dtype.itemsize, dtype)
    untyped = cached_storage(importer, record)
    placed = _restore_location(importer, record, untyped, location, map_location)
    return torch.storage.TypedStorage(wrap_storage=placed, dtype=dtype, _internal=True)


def _storage_dtype(
    importer: PackageImporter, torch: Any, storage_type: Any, record: str
) -> Any:
    """Return the dtype a persistent id's storage class stands for."""
    if storage_type is torch.UntypedStorage:
        return torch.uint8
    # ``_dtype``: the public ``dtype`` of a legacy storage class warns that
    # TypedStorage is deprecated, and loading must emit no warning.
    dtype = getattr(storage_type, "_dtype", None)
    if not isinstance(dtype, torch.dtype):
        raise PickleLoadError(
            f"storage class {storage_type!r} is not a torch storage class",
            archive=importer.filename,
            record=record,
        )
    return dtype


def cached_storage(importer: PackageImporter, record: str) -> Any:
    """Return the CPU ``UntypedStorage`` of *record*, made once per importer.

    Every caller (each thread, each ``load_pickle`` call, each ScriptModule) gets the
    same storage object for the same record.
    """
    state = _importer_state(importer)
    with state.lock:
        storage = state.storages.get(record)
        if storage is None:
            storage = state.storages[record] = _map_or_read(importer, record)
        return storage


class _ImporterState:
    """What the torch back end keeps per importer."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.storages: dict[str, Any] = {}


_state_lock = threading.Lock()


def _importer_state(importer: PackageImporter) -> _ImporterState:
    state: _ImporterState | None = importer.__dict__.get("_torch_state")
    if state is None:
        with _state_lock:
            state = importer.__dict__.setdefault("_torch_state", _ImporterState())
    return state


def _map_or_read(importer: PackageImporter, record: str) -> Any:
    torch = import_torch()
    reader = importer.zip_reader
    size = reader.record_size(record)
    if size == 0:
        return torch.UntypedStorage(0)
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
    importer: PackageImporter,
    record: str,
    storage: Any,
    location: str,
    map_location: Any,
) -> Any:
    """Move *storage* where *map_location* says, as ``torch.load`` would."""
    torch = import_torch()
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
            return getattr(result, "_untyped_storage", result)
        target = location
    else:
        raise PickleLoadError(
            f"unsupported map_location {map_location!r}: give None, a device string, "
            "a torch.device, a dict or a callable",
            archive=importer.filename,
            record=record,
        )
    target = str(target)
    if target == "meta":
        return torch.UntypedStorage(storage.nbytes(), device="meta")
    try:
        return torch.serialization.default_restore_location(storage, target)
    except RuntimeError as exc:
        raise PickleLoadError(
            _placement_problem(torch, location, target),
            archive=importer.filename,
            record=record,
        ) from exc


def _placement_problem(torch: Any, location: str, target: str) -> str:
    """Say why a storage saved on *location* cannot go to *target*, and what to do."""
    where = f"saved on {location!r} and mapped to {target!r}"
    if target.startswith("cuda") and not torch.cuda.is_available():
        return (
            f"storage {where}, but torch.cuda.is_available() is False here; load "
            "with map_location='cpu' (or a dict such as {'cuda:0': 'cpu'})"
        )
    return (
        f"storage {where}, but torch cannot place it there; load with "
        "map_location='cpu' or a location this machine has"
    )


# -- torch functions replaced while unpickling -----------------------------------------


def load_override(module: str, name: str) -> Callable[..., Any] | None:
    """Return hermetic's stand-in for the torch global *module*.*name*, or None."""
    if (module, name) == ("torch._utils", "_rebuild_qtensor"):
        return rebuild_qtensor
    if (module, name) == ("torch._utils", "_rebuild_sparse_tensor"):
        return rebuild_sparse_tensor
    if (module, name) == ("torch.jit._script", "unpackage_script_module"):
        from ._torchscript import load_script_module

        return load_script_module
    return None


def rebuild_qtensor(
    storage: Any,
    storage_offset: int,
    size: Any,
    stride: Any,
    quantizer_params: tuple[Any, ...],
    requires_grad: bool,
    backward_hooks: Any,
) -> Any:
    """Rebuild a quantized tensor from the arguments torch pickles for one."""
    torch = import_torch()
    untyped = storage._untyped_storage
    dtype, device = storage.dtype, untyped.device
    scheme = quantizer_params[0]
    if scheme == torch.per_tensor_affine:
        _, scale, zero_point = quantizer_params
        tensor = torch._empty_affine_quantized(
            size, scale=scale, zero_point=zero_point, dtype=dtype, device=device
        )
    elif scheme in (torch.per_channel_affine, torch.per_channel_affine_float_qparams):
        _, scales, zero_points, axis = quantizer_params
        scales, zero_points = _channel_params(
            torch, scheme, scales, zero_points, axis, size, device
        )
        tensor = torch._empty_per_channel_affine_quantized(
            size,
            scales=scales,
            zero_points=zero_points,
            axis=axis,
            dtype=dtype,
            device=device,
        )
    else:
        raise RuntimeError(f"cannot rebuild a quantized tensor with qscheme {scheme}")
    tensor.set_(untyped, storage_offset, size, stride)
    tensor.requires_grad = requires_grad
    tensor._backward_hooks = backward_hooks  # an empty OrderedDict in practice
    return tensor


def _channel_params(
    torch: Any,
    scheme: Any,
    scales: Any,
    zero_points: Any,
    axis: Any,
    size: Any,
    device: Any,
) -> tuple[Any, Any]:
    """Check per-channel parameters against *size* and return them as tensors.

    torch's C++ constructor trusts them, so a hostile pickle must not reach it
    with an axis or lengths that do not fit.
    """
    if not isinstance(axis, int) or not 0 <= axis < len(size):
        raise ValueError(f"per-channel axis {axis!r} does not fit size {tuple(size)}")
    channels = int(size[axis])
    for label, values in (("scales", scales), ("zero_points", zero_points)):
        count = len(values) if isinstance(values, list) else values.numel()
        if count != channels:
            raise ValueError(
                f"per-channel {label} has {count} values for {channels} channels"
            )
    if isinstance(scales, list) and isinstance(zero_points, list):
        affine = scheme == torch.per_channel_affine
        scales = torch.tensor(
            scales, dtype=torch.double if affine else torch.float, device=device
        )
        zero_points = torch.tensor(
            zero_points, dtype=torch.long if affine else torch.float, device=device
        )
    return scales, zero_points


def rebuild_sparse_tensor(layout: Any, data: tuple[Any, ...]) -> Any:
    """Rebuild a sparse tensor; check it now if torch's invariant checks are on."""
    torch = import_torch()
    check = torch.sparse.check_sparse_tensor_invariants.is_enabled()
    if layout == torch.sparse_coo:
        indices, values, size, *rest = data
        tensor = torch.sparse_coo_tensor(
            indices,
            values,
            size,
            check_invariants=False,
            is_coalesced=rest[0] if rest else None,
        )
        if check:
            torch._validate_sparse_coo_tensor_args(
                indices, values, size, tensor.is_coalesced(), check_pinning=False
            )
        return tensor
    if layout in (
        torch.sparse_csr,
        torch.sparse_csc,
        torch.sparse_bsr,
        torch.sparse_bsc,
    ):
        compressed, plain, values, size = data
        tensor = torch.sparse_compressed_tensor(
            compressed, plain, values, size, layout=layout, check_invariants=False
        )
        if check:
            torch._validate_sparse_compressed_tensor_args(
                compressed, plain, values, size, layout, check_pinning=False
            )
        return tensor
    raise NotImplementedError(f"cannot rebuild a sparse tensor of layout {layout}")
