"""Package-aware stand-ins for the host modules that import by string.

Packaged code that calls ``importlib.import_module("pkg.sub")``,
``importlib.util.find_spec``, ``importlib.resources.files("pkg")`` (or the older
``importlib.resources.read_text("pkg", ...)`` family) or
``pkgutil.get_data("pkg", ...)`` means its *own* ``pkg``. torch.package hands such code
the host's modules, so the calls escape the package (its rough edge 18). A
:class:`PackageImporter` instead gives packaged code these thin modules: each call that
names something inside the package is answered by the importer, everything else goes
to the real module. Nothing in the host is patched.
"""

from __future__ import annotations

import functools
import importlib
import importlib.machinery
import importlib.util
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._importer import PackageImporter

__all__ = ["SHIMMED_MODULES", "shim_for"]

SHIMMED_MODULES = frozenset(
    {"importlib", "importlib.util", "importlib.resources", "pkgutil"}
)


class _Shim(ModuleType):
    """A module that answers some names itself and forwards the rest to *real*."""

    def __init__(self, real: ModuleType, overrides: dict[str, Any]) -> None:
        super().__init__(real.__name__, real.__doc__)
        self.__dict__.update(overrides)
        self.__dict__["_hermetic_real"] = real
        for attr in ("__file__", "__spec__", "__loader__", "__package__", "__path__"):
            if hasattr(real, attr):
                self.__dict__[attr] = getattr(real, attr)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_hermetic_real"], name)

    def __dir__(self) -> list[str]:
        return sorted(set(dir(self.__dict__["_hermetic_real"])) | set(self.__dict__))


def shim_for(importer: PackageImporter, name: str, real: ModuleType) -> ModuleType:
    """Return the stand-in for host module *name*, or *real* when there is none."""
    if name not in SHIMMED_MODULES:
        return real
    cache: dict[str, ModuleType] = importer.__dict__.setdefault("_shims", {})
    if name not in cache:
        cache[name] = _build(importer, name, real)
    return cache[name]


def _build(importer: PackageImporter, name: str, real: ModuleType) -> ModuleType:
    if name == "importlib":
        return _Shim(
            real,
            {
                "import_module": _make_import_module(importer),
                "util": shim_for(importer, "importlib.util", importlib.util),
                "resources": _lazy_resources(importer),
            },
        )
    if name == "importlib.util":
        return _Shim(real, {"find_spec": _make_find_spec(importer)})
    if name == "importlib.resources":
        return _Shim(real, _resources_overrides(importer, real))
    return _Shim(real, {"get_data": _make_get_data(importer)})  # pkgutil


def _lazy_resources(importer: PackageImporter) -> ModuleType:
    import importlib.resources

    return shim_for(importer, "importlib.resources", importlib.resources)


def _owns(importer: PackageImporter, name: str) -> bool:
    """Tell whether module *name* lives inside the package (not extern)."""
    name = importer._mangler.demangle(name)
    node = importer._tree.find(name)
    return node is not None and node.kind != "extern" and not node.extern_parent


def _absolute(name: str, package: str | None) -> str:
    if not name.startswith("."):
        return name
    if not package:
        raise TypeError(
            "the 'package' argument is required to perform a relative import "
            f"for {name!r}"
        )
    return importlib.util.resolve_name(name, package)


def _make_import_module(importer: PackageImporter) -> Any:
    def import_module(name: str, package: str | None = None) -> ModuleType:
        """Import *name*, from the package when it is packaged, else from the host."""
        if package is not None:
            package = importer._mangler.demangle(package)
        absolute = _absolute(name, package)
        if _owns(importer, absolute) or absolute in importer.modules:
            return importer.import_module(absolute)
        return importlib.import_module(absolute)

    return import_module


def _make_find_spec(importer: PackageImporter) -> Any:
    def find_spec(name: str, package: str | None = None) -> Any:
        """Return the spec of a packaged module, else ask the host."""
        if package is not None:
            package = importer._mangler.demangle(package)
        absolute = _absolute(name, package)
        if _owns(importer, absolute):
            return importer.import_module(absolute).__spec__
        return importlib.util.find_spec(absolute)

    return find_spec


def _make_get_data(importer: PackageImporter) -> Any:
    import pkgutil

    def get_data(package: str, resource: str) -> bytes | None:
        """Read *resource* (a '/'-separated path) beside module *package*."""
        if not _owns(importer, package):
            return pkgutil.get_data(package, resource)
        from ._resources import package_files

        # As pkgutil does, a plain module's resources sit in its own folder.
        folder = _folder_of(importer, importer._mangler.demangle(package))
        target = package_files(importer, folder).joinpath(*resource.split("/"))
        return target.read_bytes()

    return get_data


def _folder_of(importer: PackageImporter, name: str) -> str:
    """Return the dotted name of the folder holding packaged module *name*'s files."""
    node = importer._tree.find(name)
    if node is None or node.kind == "package":
        return name
    return name.rpartition(".")[0]


#: The older function API of importlib.resources, each taking the package first.
_LEGACY_RESOURCE_FUNCTIONS = (
    "contents",
    "is_resource",
    "open_binary",
    "open_text",
    "path",
    "read_binary",
    "read_text",
)


def _resources_overrides(importer: PackageImporter, real: ModuleType) -> dict[str, Any]:
    def files(anchor: Any = None) -> Any:
        """Return a Traversable for a packaged package, else defer to the host."""
        if anchor is None:
            if sys.version_info < (3, 12):
                return real.files()  # an anchor is required here, as on the host
            # The caller's own module, as importlib.resources infers it since 3.12
            # (it would see this function as the caller).
            caller = sys._getframe(1).f_globals
            packaged = caller.get("__loader__") is importer
            anchor = caller["__spec__"].name if packaged else caller["__name__"]
        folder = _anchor_folder(importer, anchor)
        if folder is not None:
            from ._resources import package_files

            return package_files(importer, folder)
        return real.files(anchor)

    overrides: dict[str, Any] = {"files": files}
    for name in _LEGACY_RESOURCE_FUNCTIONS:
        function = getattr(real, name, None)
        if function is not None:
            overrides[name] = _make_legacy(importer, function)
    return overrides


def _anchor_folder(importer: PackageImporter, anchor: object) -> str | None:
    """Return the package folder a packaged ``files()`` anchor means, else None.

    Raises:
        TypeError: the anchor is a plain module and this Python (before 3.12) takes
            packages only, as ``importlib.resources.files`` itself does.
    """
    if isinstance(anchor, ModuleType):
        if getattr(anchor, "__loader__", None) is not importer:
            return None
        name: str = anchor.__spec__.name  # type: ignore[union-attr]
    elif isinstance(anchor, str) and _owns(importer, anchor):
        name = importer._mangler.demangle(anchor)
    else:
        return None
    folder = _folder_of(importer, name)
    if folder != name and sys.version_info < (3, 12):
        raise TypeError(f"{name!r} is not a package")
    return folder


def _make_legacy(importer: PackageImporter, function: Any) -> Any:
    """Wrap an old-style importlib.resources function to see packaged packages.

    The host function resolves a string anchor by importing it from the host; given
    the packaged module object instead, it reaches this importer's resource reader.
    """

    @functools.wraps(function)
    def legacy(anchor: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(anchor, str) and _owns(importer, anchor):
            name = importer._mangler.demangle(anchor)
            if sys.version_info >= (3, 12):  # a plain module means its folder here
                name = _folder_of(importer, name) or name
            anchor = importer.import_module(name)
        return function(anchor, *args, **kwargs)

    return legacy
