"""Importers: where an exporter looks up modules and the objects it pickles by name.

An exporter pickles a class or function as ``module.qualname``; an :class:`Importer`
decides which module that name means. :data:`sys_importer` is the running interpreter;
a :class:`~hermetic.PackageImporter` is one loaded package; :class:`OrderedImporter`
tries several in turn (used to re-export objects that came from a package).
"""

from __future__ import annotations

import abc
import importlib
import pickle
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from ._mangling import demangle, get_mangle_prefix, is_mangled
from .errors import ObjMismatchError, ObjNotFoundError

__all__ = [
    "Importer",
    "ObjMismatchError",
    "ObjNotFoundError",
    "OrderedImporter",
    "sys_importer",
]

_NOT_FOUND = object()


class Importer(abc.ABC):
    """Something that imports modules by name and finds the name of an object."""

    modules: dict[str, ModuleType]

    @abc.abstractmethod
    def import_module(self, module_name: str) -> ModuleType:
        """Import *module_name* from this importer's world."""

    def get_name(self, obj: Any, name: str | None = None) -> tuple[str, str]:
        """Return ``(module_name, qualname)`` under which this importer finds *obj*.

        Raises:
            ObjNotFoundError: the module or the attribute does not exist.
            ObjMismatchError: the name leads to a different object.
        """
        if name is None:
            name = _reduce_name(obj)
        if name is None:
            name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
        if not isinstance(name, str):
            raise ObjNotFoundError(f"{obj!r} has no __qualname__ or __name__")
        original = self.whichmodule(obj, name)
        module_name = demangle(original)
        try:
            module = self.import_module(module_name)
        except ModuleNotFoundError as exc:
            raise ObjNotFoundError(
                f"{obj!r} was not found as {module_name}.{name}"
            ) from exc
        found = _lookup_dotted(module, name)
        if found is _NOT_FOUND:
            raise ObjNotFoundError(f"{obj!r} was not found as {module_name}.{name}")
        if found is not obj:
            raise ObjMismatchError(_mismatch_message(module_name, original, found))
        return module_name, name

    def whichmodule(self, obj: Any, name: str) -> str:
        """Return the module name *obj* claims, else search this importer's modules."""
        module_name = getattr(obj, "__module__", None)
        if isinstance(module_name, str):
            return module_name
        for candidate, module in list(self.modules.items()):
            if candidate in ("__main__", "__mp_main__") or module is None:
                continue
            if _lookup_dotted(module, name) is obj:
                return candidate
        return "__main__"


class _SysImporter(Importer):
    """The interpreter's own import system."""

    def __init__(self) -> None:
        self.modules = sys.modules

    def import_module(self, module_name: str) -> ModuleType:
        return importlib.import_module(module_name)

    def whichmodule(self, obj: Any, name: str) -> str:
        module_name = getattr(obj, "__module__", None)
        if isinstance(module_name, str):
            return module_name
        return str(pickle.whichmodule(obj, name))  # type: ignore[attr-defined]


#: The interpreter's import system, the default importer of every exporter.
sys_importer: Importer = _SysImporter()


class OrderedImporter(Importer):
    """Try several importers in order; the first that has the module wins.

    Unlike torch.package, a failed lookup in one importer is not logged as a warning:
    only the final failure is reported.
    """

    def __init__(self, *importers: Importer) -> None:
        for importer in importers:
            if not isinstance(importer, Importer):
                raise TypeError(
                    f"{importer!r} is not an Importer: every importer given to "
                    "OrderedImporter must subclass hermetic.Importer"
                )
        self._importers: list[Importer] = list(importers)
        self.modules = {}

    def import_module(self, module_name: str) -> ModuleType:
        last_error: ModuleNotFoundError | None = None
        for importer in self._importers:
            try:
                module = importer.import_module(module_name)
            except ModuleNotFoundError as exc:
                last_error = exc
                continue
            if _is_empty_dummy_package(module):
                continue
            return module
        if last_error is not None:
            raise last_error
        raise ModuleNotFoundError(f"No module named {module_name!r}", name=module_name)

    def get_name(self, obj: Any, name: str | None = None) -> tuple[str, str]:
        errors: list[str] = []
        for importer in self._importers:
            found = _try_get_name(importer, obj, name, errors)
            if found is not None:
                return found
        raise ObjNotFoundError(
            f"Could not find obj {obj!r} in any of the importers {self._importers}: "
            + "; ".join(errors)
        )

    def whichmodule(self, obj: Any, name: str) -> str:
        for importer in self._importers:
            module_name = importer.whichmodule(obj, name)
            if module_name != "__main__":
                return module_name
        return "__main__"

    def __iter__(self) -> Iterator[Importer]:
        return iter(self._importers)


def _try_get_name(
    importer: Importer, obj: Any, name: str | None, errors: list[str]
) -> tuple[str, str] | None:
    """Return *importer*'s name for *obj*, or None after noting why it has none."""
    try:
        return importer.get_name(obj, name)
    except (ObjNotFoundError, ObjMismatchError) as exc:
        errors.append(str(exc))
        return None


def _is_empty_dummy_package(module: ModuleType) -> bool:
    """Tell whether *module* is a package's implicit, source-less parent folder."""
    return (
        getattr(module, "__torch_package__", False)
        and hasattr(module, "__path__")
        and getattr(module, "__file__", None) is None
    )


def _reduce_name(obj: Any) -> str | None:
    """Return the global name a ``__reduce__`` gives for a module-level singleton."""
    if not obj or type(obj) in pickle._Pickler.dispatch:
        return None
    reduce = getattr(obj, "__reduce__", None)
    if reduce is None or isinstance(obj, type):
        return None
    try:
        value = reduce()
    except Exception:  # objects may refuse; then their qualname decides
        return None
    return value if isinstance(value, str) else None


def _lookup_dotted(module: ModuleType, dotted: str) -> Any:
    """Follow *dotted* attribute names from *module*, or return the sentinel."""
    target: Any = module
    for part in dotted.split("."):
        target = getattr(target, part, _NOT_FOUND)
        if target is _NOT_FOUND:
            return _NOT_FOUND
    return target


def _mismatch_message(module_name: str, original: str, found: Any) -> str:
    """Explain which environment an object came from and which one its name leads to."""
    found_module = getattr(found, "__module__", None) or ""

    def origin(name: str) -> str:
        if is_mangled(name):
            return f"package {get_mangle_prefix(name)}"
        return "the current Python environment"

    return (
        f"The object provided is from {module_name!r}, which is coming from "
        f"{origin(original)}. However, when importing {module_name!r} the name leads "
        f"to an object from {origin(found_module)}. To fix this, list the importer "
        f"that object came from before the others in this exporter's importers."
    )
