"""PackageImporter: load modules and objects from a package in their own namespace.

Each importer owns a private module table. Its modules get mangled names
(``<torch_package_N>.pkg.mod``) and are also entered in ``sys.modules`` under those
names only, so that code which looks itself up there (``dataclasses``,
``typing.get_type_hints``, sympy, ``inspect``) works, while no unmangled name ever
resolves to packaged code and two importers never see each other's modules.
:meth:`PackageImporter.close` removes those entries.

Packaged code imports through the importer's own ``__import__``; its calls to
``importlib.import_module``, ``importlib.resources.files`` and ``pkgutil.get_data``
resolve inside the package first (see :mod:`hermetic._host_shims`).
"""

from __future__ import annotations

import builtins
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import io
import linecache
import os
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from types import CodeType, ModuleType
from typing import Any, BinaryIO, Literal, cast

from . import _host_shims
from ._archive_reader import ArchiveReader
from ._bytecode_cache import compile_cached
from ._environment import EnvironmentPolicy, check_environment
from ._format import (
    EXTERN_MODULES_RECORD,
    MAX_EXTERN_MODULES_SIZE,
    PYTHON_VERSION_RECORD,
    resource_record,
)
from ._integrity import Integrity, RecordChecker, attach_checker
from ._mangling import PackageMangler
from ._module_tree import ModuleTree, TreeNode
from ._names import check_module_name, is_nonempty_str
from ._remote import is_url, open_url_reader
from ._unpickler import PackageUnpickler
from .errors import (
    ArchiveError,
    ArchiveFormatError,
    ImportFromPackageError,
    UnsafeContentError,
)
from .file_structure_representation import Directory, build_directory
from .importer import Importer
from .progress import Progress, as_progress

__all__ = ["PackageImporter"]

#: Host modules every package may import even when its extern list omits them,
#: as torch.package allows.
IMPLICIT_IMPORT_ALLOWLIST = frozenset(
    {"builtins", "numpy", "numpy.core", "numpy.core._multiarray_umath"}
)

_NEEDS_LOADING = object()


class PackageImporter(Importer):
    """Import code and load objects from a package, isolated from the host.

    Args:
        file_or_buffer: a path to an archive, a path to an unzipped package folder, a
            seekable binary file object, or an open :class:`ArchiveReader`.
        module_allowed: called with each extern module name; a false result refuses
            the package.
        safe: load data only. No packaged source ever runs (:meth:`import_module`
            raises :class:`UnsafeContentError`), and :meth:`load_pickle` resolves
            only globals on an allowlist (containers, numbers, strings, dates,
            tensors and arrays, plus *allow*), refusing anything else with
            :class:`UnsafeContentError`. See SECURITY.md.
        allow: with ``safe=True``, extra ``"module.qualname"`` names a pickle may
            use, imported from this interpreter (never from the archive).
        verify: check each record against the archive's manifest when it is first
            read, raising :class:`IntegrityError`; :attr:`integrity` says whether
            that happens (archives without a manifest load unverified). Storages
            mapped straight from the file are not hashed by default, since that
            reads every byte that zero-copy loading avoids reading: ``"all"`` checks
            them too (or check the whole archive with :func:`verify_archive`).
        environment: compare the archive's recorded environment (extern
            distribution versions, Python version) with this host's: ``"warn"``
            emits :class:`EnvironmentMismatchWarning`, ``"error"`` raises
            :class:`EnvironmentMismatchError`, ``"ignore"`` does not look. Archives
            without the record (torch.package's) have nothing to compare.
        progress: report the bytes of each pickle :meth:`load_pickle` reads
            (``True`` for a bar on standard error when a load outlasts a second,
            needs ``hermetic[rich]``; or a :class:`hermetic.progress.Progress`).
        storage_options: for an fsspec URL (``s3://``, ``http(s)://``, ``file://``,
            ``memory://``; needs ``hermetic[fsspec]``), passed to its filesystem, e.g.
            ``{"endpoint_url": ...}`` for s3fs. Only the records read are fetched.

    Example:
        >>> importer = PackageImporter("model.pt")  # doctest: +SKIP
        >>> model = importer.load_pickle("model", "model.pkl")  # doctest: +SKIP
        >>> weights = PackageImporter("model.pt", safe=True).load_pickle(
        ...     "model", "weights.pkl")  # doctest: +SKIP
    """

    #: ``"checked"`` when records are checked against the manifest as they are read,
    #: ``"unverified"`` when the archive has none (or ``verify=False``).
    integrity: Integrity

    def __init__(
        self,
        file_or_buffer: str | os.PathLike[str] | BinaryIO | ArchiveReader,
        module_allowed: Callable[[str], bool] = lambda module_name: True,
        *,
        safe: bool = False,
        allow: Iterable[str] = (),
        verify: bool | Literal["all"] = True,
        environment: EnvironmentPolicy = "warn",
        progress: Progress | bool | None = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        if not safe and tuple(allow):
            raise ValueError("allow= only applies to a safe load: pass safe=True")
        self.safe = safe
        self._progress = as_progress(progress)
        self._allowlist = _build_allowlist(allow) if safe else None
        if isinstance(file_or_buffer, ArchiveReader):
            self.zip_reader = file_or_buffer
        elif is_url(file_or_buffer):  # issue 9: s3://, http(s)://, memory://, file://
            self.zip_reader = open_url_reader(str(file_or_buffer), storage_options)
        else:
            self.zip_reader = ArchiveReader(file_or_buffer)
        self.filename = self.zip_reader.name
        try:
            self.zip_reader.check_spans = verify == "all"
            self.integrity = attach_checker(self.zip_reader, verify=bool(verify))
            self.extern_modules = self._read_extern_modules()
            check_environment(self.zip_reader, self.filename, environment)
            for module_name in self.extern_modules:
                if not module_allowed(module_name):
                    raise ImportError(
                        f"package {self.filename!r} needs the external module "
                        f"{module_name!r} but that module has been disallowed",
                        name=module_name,
                    )
        except BaseException:
            self.zip_reader.close()
            raise
        self._tree = ModuleTree(
            self.zip_reader.record_names(), self.extern_modules, self.filename
        )
        self.modules: dict[str, Any] = {"torch_package_importer": self}
        self._mangler = PackageMangler()
        self.patched_builtins = dict(builtins.__dict__)
        self.patched_builtins["__import__"] = self.__import__
        self._lock = threading.RLock()
        self._registered: list[str] = []
        self._per_thread = threading.local()

    # -- public API --------------------------------------------------------------------

    @property
    def last_map_location(self) -> Any:
        """The *map_location* of this thread's running ``load_pickle`` call, else None.

        Per thread, so that concurrent loads each see their own (torch keeps one per
        importer, which races).
        """
        return getattr(self._per_thread, "map_location", None)

    @last_map_location.setter
    def last_map_location(self, value: Any) -> None:
        self._per_thread.map_location = value

    def id(self) -> str:
        """Return this importer's mangle prefix, e.g. ``<torch_package_0>``."""
        return self._mangler.parent_name

    def python_version(self) -> str | None:
        """Return the Python version the package was made with, if it says."""
        if not self.zip_reader.has_record(PYTHON_VERSION_RECORD):
            return None
        return self._read_text_record(PYTHON_VERSION_RECORD).strip()

    def import_module(self, name: str, package: str | None = None) -> ModuleType:
        """Import *name* from the package (or the host, for externs).

        Raises:
            ImportFromPackageError: *name* is neither packaged nor extern.
        """
        name = self._mangler.demangle(name)
        if self.safe:
            raise UnsafeContentError(
                f"a safe load never imports modules, and {name!r} was asked for "
                "(load without safe=True only if you trust the archive's code)",
                archive=self.filename,
                global_name=name,
            )
        level = len(name) - len(name.lstrip("."))
        with self._lock:
            return cast(ModuleType, self._gcd_import(name[level:], package, level))

    def load_binary(self, package: str, resource: str) -> bytes:
        """Return the bytes of *resource* in *package*."""
        return self.zip_reader.read(self._resource_path(package, resource))

    def load_text(
        self,
        package: str,
        resource: str,
        encoding: str = "utf-8",
        errors: str = "strict",
    ) -> str:
        """Return *resource* in *package* decoded as text."""
        record = self._resource_path(package, resource)
        try:
            return self.zip_reader.read(record).decode(encoding, errors)
        except UnicodeDecodeError as exc:
            raise ArchiveError(
                f"not valid {encoding} text ({exc.reason} at byte {exc.start})",
                archive=self.filename,
                record=record,
            ) from exc

    def load_pickle(self, package: str, resource: str, map_location: Any = None) -> Any:
        """Unpickle *resource* in *package*, importing its classes from the package.

        Args:
            map_location: where tensors go, as ``torch.load`` takes it.
        """
        record = self._resource_path(package, resource)
        data = self.zip_reader.read(record)
        if self._allowlist is not None:
            from ._safe import load_safely

            return load_safely(self, record, data, self._allowlist, map_location)
        # A buffered reader lets the C unpickler prefetch: reading a bare BytesIO
        # costs it one Python call per opcode.
        progress = self._progress
        raw: io.RawIOBase | io.BytesIO = io.BytesIO(data)
        if progress is not None:
            raw = _ReportingReader(data, progress)
            progress.start(f"loading {record}", len(data))
        try:
            stream = io.BufferedReader(raw, buffer_size=1 << 16)
            unpickler = PackageUnpickler(
                stream, importer=self, record=record, map_location=map_location
            )
            return unpickler.load_or_raise()
        finally:
            if progress is not None:
                progress.stop()

    def file_structure(
        self, *, include: str | Iterable[str] = "**", exclude: str | Iterable[str] = ()
    ) -> Directory:
        """Return the archive's records as a :class:`Directory` tree.

        *include* and *exclude* are ``/``-separated globs over record names.
        """
        return build_directory(
            self.filename, self.zip_reader.record_names(), include, exclude
        )

    def get_source(self, module_name: str) -> str:
        """Return the source of a packaged module (mangled names accepted)."""
        name = self._mangler.demangle(module_name)
        node = self._tree.find(name)
        if node is None or node.source_record is None:
            raise ImportFromPackageError(
                f"no source for module {name!r} in {self.filename!r}",
                name=name,
                archive=self.filename,
            )
        source = self.zip_reader.read(node.source_record)
        return importlib.util.decode_source(source)

    def get_resource_reader(self, fullname: str) -> Any:
        """Return an ``importlib.resources`` reader for a packaged package.

        Returns None when ``fullname`` is not a package from this archive.
        """
        from ._resources import PackageResourceReader

        name = self._mangler.demangle(fullname)
        node = self._tree.find(name)
        if node is None or node.kind != "package":
            return None
        return PackageResourceReader(self, name)

    def close(self) -> None:
        """Remove this importer's modules from ``sys.modules`` and close the archive.

        Objects already loaded keep working; importing new modules does not.
        """
        with self._lock:
            for mangled in self._registered:
                sys.modules.pop(mangled, None)
            self._registered.clear()
        self.zip_reader.close()

    def __enter__(self) -> PackageImporter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        safe = " (safe)" if self.safe else ""
        return f"<PackageImporter {self.id()} of {self.filename!r}{safe}>"

    # -- resources ---------------------------------------------------------------------

    def _resource_path(self, package: str, resource: str) -> str:
        """Return the record of *resource* in *package*, which must be a package."""
        if not is_nonempty_str(package):
            raise ValueError(
                f"package must be a non-empty module name, got {package!r}"
            )
        if not is_nonempty_str(resource) or "/" in resource:
            raise ValueError(
                f"resource must be a file name without '/', got {resource!r}"
            )
        package = self._mangler.demangle(package)
        check_module_name(package)
        node = self._tree.find(package)
        if node is None:
            raise self._not_found(package)
        if node.kind != "package":
            raise TypeError(f"{package!r} is not a package in {self.filename!r}")
        return resource_record(package, resource)

    def _read_text_record(self, record: str, max_size: int | None = None) -> str:
        try:
            return self.zip_reader.read(record, max_size=max_size).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ArchiveError(
                "not valid UTF-8", archive=self.filename, record=record
            ) from exc

    def _read_extern_modules(self) -> list[str]:
        if not self.zip_reader.has_record(EXTERN_MODULES_RECORD):
            raise ArchiveError(
                "not a package: it has no record listing its extern modules",
                archive=self.filename,
                record=EXTERN_MODULES_RECORD,
            )
        names = self._read_text_record(
            EXTERN_MODULES_RECORD, max_size=MAX_EXTERN_MODULES_SIZE
        ).splitlines()
        for name in names:
            if name and any(not part for part in name.split(".")):
                raise ArchiveFormatError(
                    f"invalid extern module name {name!r}: empty segment",
                    archive=self.filename,
                    record=EXTERN_MODULES_RECORD,
                )
        return [name for name in names if name]

    # -- the import algorithm (mirrors importlib._bootstrap) ---------------------------

    def __import__(
        self,
        name: str,
        globals: Mapping[str, Any] | None = None,
        locals: Mapping[str, Any] | None = None,
        fromlist: Iterable[str] = (),
        level: int = 0,
    ) -> Any:
        """Serve ``import`` statements of packaged code."""
        with self._lock:
            if level == 0:
                module = self._gcd_import(name)
            else:
                package = _calc_package(globals or {})
                module = self._gcd_import(name, package, level)
            if fromlist:
                if hasattr(module, "__path__"):
                    return self._handle_fromlist(module, fromlist)
                return module
            if level == 0:
                return self._gcd_import(name.partition(".")[0])
            if not name:
                return module
            cut_off = len(name) - len(name.partition(".")[0])
            full = _plain_name(module)
            return self.modules[full[: len(full) - cut_off]]

    def _gcd_import(self, name: str, package: str | None = None, level: int = 0) -> Any:
        if level > 0:
            if not package:
                raise ImportError(
                    "attempted relative import with no known parent package"
                )
            name = _resolve_name(name, package, level)
        check_module_name(name)
        module = self.modules.get(name, _NEEDS_LOADING)
        if module is _NEEDS_LOADING:
            return self._find_and_load(name)
        if module is None:
            raise ModuleNotFoundError(
                f"import of {name} halted; None in modules", name=name
            )
        return module

    def _find_and_load(self, name: str) -> Any:
        parent_name, _, child = name.rpartition(".")
        node = self._tree.find(name)
        if node is not None and node.kind == "extern":
            # The host's import system imports an extern's parents itself.
            module = self._import_extern(name)
            parent = self.modules.get(parent_name) if parent_name else None
            if parent is not None and getattr(parent, "__torch_package__", False):
                setattr(parent, child, module)
            return module
        parent = None
        if parent_name:
            parent = self._gcd_import(parent_name)
            if name in self.modules:  # importing the parent imported this one too
                return self.modules[name]
            if not hasattr(parent, "__path__"):
                raise ModuleNotFoundError(
                    f"No module named {name!r}; {parent_name!r} is not a package",
                    name=name,
                )
        if node is None:
            if name in IMPLICIT_IMPORT_ALLOWLIST:
                return self._import_extern(name)
            raise self._not_found(name)
        if node.extern_parent and _host_has(name):
            module = self._import_extern(name)
        else:
            module = self._load_packaged(name, node, parent)
        if parent is not None and getattr(parent, "__torch_package__", False):
            setattr(parent, child, module)
        return module

    def _import_extern(self, name: str) -> Any:
        real = importlib.import_module(name)
        module = _host_shims.shim_for(self, name, real)
        self.modules[name] = module
        return module

    def _load_packaged(self, name: str, node: TreeNode, parent: Any) -> ModuleType:
        is_package = node.kind == "package"
        spec = importlib.machinery.ModuleSpec(
            name,
            cast(importlib.abc.Loader, self),
            origin="<package_importer>",
            is_package=is_package,
        )
        module = importlib.util.module_from_spec(spec)
        mangled = self._mangler.mangle(name)
        filename = (
            self._mangler.mangle(node.source_record) if node.source_record else None
        )
        module.__name__ = mangled
        module.__file__ = filename
        module.__cached__ = None  # type: ignore[attr-defined]
        module.__builtins__ = self.patched_builtins  # type: ignore[attr-defined]
        module.__torch_package__ = True  # type: ignore[attr-defined]
        self.modules[name] = module
        sys.modules[mangled] = module
        self._registered.append(mangled)
        if parent is not None and getattr(parent, "__torch_package__", False):
            setattr(parent, name.rpartition(".")[2], module)
        if node.source_record is None or filename is None:
            return module
        try:
            code = self._compile(node.source_record, filename)
            linecache.lazycache(filename, module.__dict__)
            exec(code, module.__dict__)
        except BaseException:
            # A module that failed to run is not importable, as in CPython.
            self.modules.pop(name, None)
            sys.modules.pop(mangled, None)
            raise
        return module

    def _compile(self, record: str, filename: str) -> CodeType:
        source = self.zip_reader.read(record)
        checker = self.zip_reader.check_record
        checked = checker.checked if isinstance(checker, RecordChecker) else {}
        return compile_cached(source, filename, sha256=checked.get(record, ""))

    def _handle_fromlist(
        self, module: Any, fromlist: Iterable[str], *, recursive: bool = False
    ) -> Any:
        package_name = _plain_name(module)
        for item in fromlist:
            if not isinstance(item, str):
                raise TypeError(
                    f"Item in {package_name}.__all__ must be str, not {item!r}"
                )
            if item == "*":
                if not recursive and hasattr(module, "__all__"):
                    self._handle_fromlist(module, module.__all__, recursive=True)
                continue
            if hasattr(module, item):
                continue
            sub_name = f"{package_name}.{item}"
            try:
                self._gcd_import(sub_name)
            except ModuleNotFoundError as exc:
                # `from pkg import name` where name is neither attribute nor module:
                # the import statement itself reports the missing name.
                if getattr(exc, "name", None) == sub_name:
                    continue
                raise
        return module

    def _not_found(self, name: str) -> ImportFromPackageError:
        return ImportFromPackageError(
            f'No module named "{name}" in self-contained archive "{self.filename}" '
            "and the module is also not in the list of allowed external modules: "
            f"{self.extern_modules}",
            name=name,
            archive=self.filename,
        )


class _ReportingReader(io.RawIOBase):
    """Hand out a pickle's bytes, telling *progress* how many were read."""

    def __init__(self, data: bytes, progress: Progress) -> None:
        self._view = memoryview(data)
        self._position = 0
        self._progress = progress

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        target = memoryview(buffer).cast("B")
        count = min(len(target), len(self._view) - self._position)
        target[:count] = self._view[self._position : self._position + count]
        self._position += count
        self._progress.advance(count)
        return count


def _build_allowlist(allow: Iterable[str]) -> Any:
    from ._allowlist import build_allowlist  # only safe loads need it

    return build_allowlist(allow)


def _plain_name(module: Any) -> str:
    """Return a module's unmangled name (``__spec__.name`` for packaged ones)."""
    spec = getattr(module, "__spec__", None)
    if getattr(module, "__torch_package__", False) and spec is not None:
        return str(spec.name)
    return str(module.__name__)


def _host_has(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _calc_package(globals: Mapping[str, Any]) -> str | None:
    package = globals.get("__package__")
    if package is not None:
        return str(package)
    spec = globals.get("__spec__")
    if spec is not None:
        return str(spec.parent)
    name = str(globals.get("__name__", ""))
    return name if "__path__" in globals else name.rpartition(".")[0]


def _resolve_name(name: str, package: str, level: int) -> str:
    bits = package.rsplit(".", level - 1)
    if len(bits) < level:
        raise ImportError("attempted relative import beyond top-level package")
    base = bits[0]
    return f"{base}.{name}" if name else base
