"""The package-aware unpickler: classes come from the package, storages from records.

Built on the C ``pickle.Unpickler``: only ``find_class`` (once per global, the pickle
memoizes the result) and ``persistent_load`` (once per storage) run Python code.
"""

from __future__ import annotations

import pickle
from typing import IO, TYPE_CHECKING, Any

from .errors import ArchiveError, HermeticError, PickleLoadError

if TYPE_CHECKING:
    from ._importer import PackageImporter

__all__ = ["PackageUnpickler"]

_MISSING = object()


class PackageUnpickler(pickle.Unpickler):
    """Unpickle one record of a package through its importer."""

    def __init__(
        self,
        file: IO[bytes],
        *,
        importer: PackageImporter,
        record: str,
        map_location: Any = None,
    ) -> None:
        super().__init__(file)
        self._importer = importer
        self._record = record
        self._map_location = map_location
        self._reduced: dict[Any, Any] = {}
        # Placed storages by key: map_location runs once per storage, and views of
        # one storage share it after load, as in torch.
        self._storages: dict[str, Any] = {}

    def load_or_raise(self) -> Any:
        """Load the pickle; malformed data raises :class:`PickleLoadError`."""
        importer = self._importer
        previous = importer.last_map_location
        importer.last_map_location = self._map_location
        try:
            return self.load()
        except HermeticError:
            raise
        except EOFError as exc:
            raise self._error("the pickle is truncated (ran out of input)") from exc
        except pickle.UnpicklingError as exc:
            raise self._error(f"malformed pickle: {exc}") from exc
        except (ValueError, OverflowError, MemoryError, KeyError, IndexError) as exc:
            # Also malformed data: an unknown protocol, undecodable text, a huge length.
            raise self._error(f"malformed pickle: {exc!r}") from exc
        finally:
            importer.last_map_location = previous

    def find_class(self, module: str, name: str) -> Any:
        global_name = f"{module}.{name}"
        try:
            target: Any = self._importer.import_module(module)
        except ModuleNotFoundError as exc:
            if module.partition(".")[0] == "torch" and not _torch_importable():
                return self._without_torch(module, name, exc)
            raise self._error(
                f"needs module {module!r} (for {global_name}), which is neither in the "
                f"package nor extern: {exc}",
                global_name,
            ) from exc
        for part in name.split("."):
            target = getattr(target, part, _MISSING)
            if target is _MISSING:
                raise self._error(
                    f"module {module!r} has no attribute {name!r}", global_name
                )
        if _is_mocked(target):
            # The C unpickler would fail on it with a misleading "malformed pickle".
            raise NotImplementedError(
                f"Object '{global_name}' was mocked out during packaging but record "
                f"{self._record!r} of {self._importer.filename!r} uses it: intern or "
                f"extern module {module!r} instead of mocking it"
            )
        if module.startswith("torch."):
            from .storage._torch import load_override

            # A few torch loaders warn, race or need torch's C++ reader: stand-ins.
            return load_override(module, name) or target
        return target

    def _without_torch(self, module: str, name: str, exc: ImportError) -> Any:
        """Stand in for a torch global when torch is missing: tensors load as arrays."""
        from .storage import _numpy

        global_name = f"{module}.{name}"
        try:
            return _numpy.torch_global(module, name)
        except LookupError as missing:
            raise self._error(str(missing), global_name) from exc

    def persistent_load(self, pid: Any) -> Any:
        if not isinstance(pid, tuple) or not pid:
            raise self._error(f"unsupported persistent id {pid!r}")
        kind = pid[0].decode("ascii") if isinstance(pid[0], bytes) else pid[0]
        if kind == "storage" and len(pid) == 5:
            from .storage import load_storage

            _, storage_type, key, location, numel = pid
            placed = self._storages.get(str(key))
            if placed is not None:
                return placed
            try:
                placed = self._storages[str(key)] = load_storage(
                    self._importer,
                    storage_type,
                    key,
                    location,
                    numel,
                    self._map_location,
                )
            except ArchiveError:
                raise
            except HermeticError:
                raise
            return placed
        if kind == "reduce_package" and len(pid) == 4:
            _, key, loader, args = pid
            if key not in self._reduced:
                self._reduced[key] = loader(self._importer, *args)
            return self._reduced[key]
        if kind == "reduce_package" and len(pid) == 3:
            _, loader, args = pid
            return loader(self._importer, *args)
        raise self._error(f"unsupported persistent id {kind!r} with {len(pid)} fields")

    def _error(self, message: str, global_name: str | None = None) -> PickleLoadError:
        return PickleLoadError(
            message,
            archive=self._importer.filename,
            record=self._record,
            global_name=global_name,
        )


def _torch_importable() -> bool:
    from .storage._numpy import is_torch_importable

    return is_torch_importable()


def _is_mocked(obj: Any) -> bool:
    """Tell whether *obj* stands for an object of a mocked module (ours or torch's)."""
    cls = type(obj)
    return (
        cls.__name__ == "MockedObject" and cls.__module__.rpartition(".")[2] == "_mock"
    )
