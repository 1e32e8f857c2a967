"""PackageExporter: collect code, objects and data into one package archive.

The exporter decides, for every module the saved code and objects need, whether it is
*interned* (its source goes into the archive), *extern* (the loading host provides it),
*mocked* (a stub that refuses use) or *denied* (an error). Problems are collected and
reported together when the exporter closes; nothing is left at the target path unless
the whole package was written.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from types import CodeType
from typing import Any, BinaryIO

from ._actions import Action, GlobPattern, Pattern, first_match
from ._archive_writer import ArchiveWriter
from ._find_imports import ImportScanError, find_imports
from ._format import storage_record
from ._graph import DiGraph
from ._hooks import RemovableHandle
from ._mangling import demangle, is_mangled
from ._module_records import check_module_layout, write_module_records
from ._module_source import (
    installed_code,
    is_package,
    module_source,
    modules_in_directory,
    read_source,
    source_bytes,
)
from ._names import check_module_name, checked_resource_record
from ._patterns import GlobGroup
from ._pickler import pickle_object
from ._remote import is_url, open_url_writer
from ._report import PackagingErrorReason, format_report
from ._stdlib import is_implicit_extern
from ._storage_keys import PickleStorageSink, StorageKeys
from .errors import EmptyMatchError, PackagingError, PickleSaveError
from .importer import Importer, OrderedImporter, sys_importer
from .progress import Progress, as_progress
from .storage import saving_backends

__all__ = ["PackageExporter", "PackagingErrorReason"]

ActionHook = Callable[["PackageExporter", str], None]


class PackageExporter:
    """Write code, objects and data into a package archive.

    Args:
        f: a path (``str`` or ``os.PathLike``) or a writable binary file object.
        importer: where modules and objects are looked up: an :class:`Importer` or a
            sequence of them, tried in order.
        debug: add the dependency chain that pulled in each broken module to
            :class:`PackagingError`.
        progress: report bytes written: ``True`` for a bar on standard error (needs
            ``hermetic[rich]``), or a :class:`hermetic.progress.Progress`.
        manifest: write ``.data/hermetic/manifest.json``, the SHA-256 of every
            record, which importers check. Hashing costs about a second per GiB of
            tensors; ``False`` skips it (the archive then loads unverified).
        storage_options: for an fsspec URL target (``s3://``, ``memory://``, ...;
            needs ``hermetic[fsspec]``), passed to its filesystem. The archive is
            built in a local temporary file and uploaded only once complete.

    Example:
        >>> with PackageExporter("model.pt") as exporter:  # doctest: +SKIP
        ...     exporter.intern("my_model.**")
        ...     exporter.save_pickle("model", "model.pkl", model)
    """

    def __init__(
        self,
        f: str | os.PathLike[str] | BinaryIO,
        importer: Importer | Sequence[Importer] = sys_importer,
        debug: bool = False,
        *,
        progress: Progress | bool | None = None,
        manifest: bool = True,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.importer = _as_importer(importer)
        self.debug = debug
        # The manifest (SHA-256 of every record) is written last by the writer.
        if is_url(f):  # issue 9: written locally, uploaded by close()
            self.zip_file = open_url_writer(
                str(f),
                storage_options,
                manifest=manifest,
                progress=as_progress(progress),
            )
        else:
            self.zip_file = ArchiveWriter(
                f, manifest=manifest, progress=as_progress(progress)
            )
        self.buffer = None if isinstance(f, (str, os.PathLike)) else f
        self.dependency_graph = DiGraph()
        self.patterns: dict[GlobGroup, Pattern] = {}
        self._pattern_order: list[Pattern] = []
        self._hooks: dict[Action, dict[int, ActionHook]] = {a: {} for a in Action}
        self._storage_keys = StorageKeys()
        self._script_modules: Any = None  # a ScriptModuleWriter once one is saved
        self._unique_id = 0
        self._unresolved: dict[str, list[str]] = {}
        self._closed = False
        self._lock = threading.RLock()

    # -- patterns ----------------------------------------------------------------------

    def intern(
        self,
        include: GlobPattern,
        *,
        exclude: GlobPattern = (),
        allow_empty: bool = True,
    ) -> None:
        """Put modules matching *include* (and not *exclude*) into the package."""
        self._add_pattern(include, exclude, Action.INTERN, allow_empty)

    def extern(
        self,
        include: GlobPattern,
        *,
        exclude: GlobPattern = (),
        allow_empty: bool = True,
    ) -> None:
        """Leave matching modules to the loading environment."""
        self._add_pattern(include, exclude, Action.EXTERN, allow_empty)

    def mock(
        self,
        include: GlobPattern,
        *,
        exclude: GlobPattern = (),
        allow_empty: bool = True,
    ) -> None:
        """Replace matching modules with stubs whose objects refuse any use."""
        self._add_pattern(include, exclude, Action.MOCK, allow_empty)

    def deny(self, include: GlobPattern, *, exclude: GlobPattern = ()) -> None:
        """Report an error for any dependency on a matching module."""
        self._add_pattern(include, exclude, Action.DENY, True)

    def _add_pattern(
        self,
        include: GlobPattern,
        exclude: GlobPattern,
        action: Action,
        allow_empty: bool,
    ) -> None:
        self._check_open()
        pattern = Pattern(include, exclude, action, allow_empty)
        self.patterns[pattern.group] = pattern
        self._pattern_order.append(pattern)

    # -- hooks -------------------------------------------------------------------------

    def register_extern_hook(self, hook: ActionHook) -> RemovableHandle:
        """Call ``hook(exporter, module_name)`` when a module is externed."""
        return self._register_hook(Action.EXTERN, hook)

    def register_mock_hook(self, hook: ActionHook) -> RemovableHandle:
        """Call ``hook(exporter, module_name)`` when a module is mocked."""
        return self._register_hook(Action.MOCK, hook)

    def register_intern_hook(self, hook: ActionHook) -> RemovableHandle:
        """Call ``hook(exporter, module_name)`` when a module is interned."""
        return self._register_hook(Action.INTERN, hook)

    def _register_hook(self, action: Action, hook: ActionHook) -> RemovableHandle:
        handle = RemovableHandle(self._hooks[action])
        self._hooks[action][handle.id] = hook
        return handle

    def _run_hooks(self, action: Action, module_name: str) -> None:
        for hook in list(self._hooks[action].values()):
            hook(self, module_name)

    # -- saving ------------------------------------------------------------------------

    def save_source_string(
        self,
        module_name: str,
        src: str | bytes,
        is_package: bool = False,
        dependencies: bool = True,
    ) -> None:
        """Put *src* into the package as module *module_name*."""
        self._check_open()
        check_module_name(module_name)
        source = source_bytes(src)
        self._provide(module_name, source, is_package)
        if dependencies:
            self._add_source_dependencies(module_name, source, is_package)

    def save_source_file(
        self,
        module_name: str,
        file_or_directory: str | os.PathLike[str],
        dependencies: bool = True,
    ) -> None:
        """Put a source file, or every ``*.py`` under a folder, into the package."""
        self._check_open()
        check_module_name(module_name)
        path = Path(file_or_directory)
        if path.is_dir():
            found = modules_in_directory(module_name, path)
            for name, file, is_package in found:
                self._provide(name, read_source(file), is_package)
            if dependencies:
                for name, file, is_package in found:
                    self._add_source_dependencies(name, read_source(file), is_package)
            return
        source = read_source(path)
        is_package = path.name == "__init__.py"
        self._provide(module_name, source, is_package)
        if dependencies:
            self._add_source_dependencies(module_name, source, is_package)

    def save_module(self, module_name: str, dependencies: bool = True) -> None:
        """Intern module *module_name*, importing it through the exporter's importer."""
        if not isinstance(module_name, str):
            raise TypeError(
                "save_module() expects a string input, did you perhaps mean to pass "
                "`__name__`?"
            )
        self._check_open()
        check_module_name(module_name)
        self._intern_module(module_name, dependencies)

    def save_pickle(
        self,
        package: str,
        resource: str,
        obj: Any,
        dependencies: bool = True,
        pickle_protocol: int = 3,
    ) -> None:
        """Pickle *obj* into *package*/*resource*, packaging the modules it needs."""
        self._check_open()
        if pickle_protocol not in (3, 4):
            raise ValueError(
                f"only pickle protocols 3 and 4 are supported, got {pickle_protocol}"
            )
        record = checked_resource_record(package, resource)
        pending: list[tuple[int, memoryview]] = []
        sink = PickleStorageSink(self._storage_keys, pending)
        try:
            result = pickle_object(
                obj,
                protocol=pickle_protocol,
                importer=self.importer,
                backends=saving_backends(),
                sink=sink,
                exporter=self,
            )
        except PickleSaveError:
            raise
        except Exception as exc:
            sink.forget()
            raise PickleSaveError(str(exc), record=record) from exc
        # The storages stay referenced by *pending* (and unchanged: the caller is
        # inside save_pickle) until their deferred digests are done.
        with self.zip_file.deferred_digests():
            for key, data in pending:
                self.zip_file.write_record(storage_record(key), data)
        if dependencies:
            self._add_pickle_dependencies(package, resource, result.globals)
        self.zip_file.write_record(record, result.data)

    def save_text(self, package: str, resource: str, text: str) -> None:
        """Save *text* as UTF-8 at *package*/*resource*."""
        if not isinstance(text, str):
            raise TypeError(
                f"save_text() expects str, got {type(text).__name__}; "
                "use save_binary() for bytes"
            )
        self.save_binary(package, resource, text.encode("utf-8"))

    def save_binary(self, package: str, resource: str, binary: bytes) -> None:
        """Save raw bytes at *package*/*resource*."""
        if not isinstance(binary, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"save_binary() expects bytes, got {type(binary).__name__}; "
                "use save_text() for str"
            )
        self._check_open()
        self.zip_file.write_record(checked_resource_record(package, resource), binary)

    def get_unique_id(self) -> str:
        """Return an id unique within this exporter: ``"0"``, ``"1"``, ..."""
        with self._lock:
            value = self._unique_id
            self._unique_id += 1
        return str(value)

    @property
    def script_module_serializer(self) -> Any:
        """What torch's ScriptModules save themselves through (needs torch)."""
        if self._script_modules is None:
            from .storage._torchscript import ScriptModuleWriter

            self._script_modules = ScriptModuleWriter(self)
        return self._script_modules

    def _next_free_storage_key(self) -> int:
        return self._storage_keys.end

    def _reserve_storage_key(self, identity: Hashable, key: int) -> None:
        """Mark storage *key* as taken by a record written by someone else."""
        self._storage_keys.reserve(identity, key)

    # -- dependency resolution ---------------------------------------------------------

    def add_dependency(self, module_name: str, dependencies: bool = True) -> None:
        """Decide what to do with *module_name* and, when interned, its own imports."""
        graph = self.dependency_graph
        if module_name in graph and graph.nodes[module_name].get("provided"):
            return
        if module_name == "torch_package_importer":
            graph.add_node(module_name, action=Action.SKIP, provided=True)
            return
        if module_name == "_mock":
            graph.add_node(
                module_name, action=Action.REPACKAGED_MOCK_MODULE, provided=True
            )
            return
        pattern = first_match(self._pattern_order, module_name)
        if pattern is None:
            if is_implicit_extern(module_name):
                graph.add_node(module_name, action=Action.EXTERN, provided=True)
                self._run_hooks(Action.EXTERN, module_name)
                return
            graph.add_node(module_name, error=PackagingErrorReason.NO_ACTION)
            return
        pattern.was_matched = True
        if pattern.action is Action.INTERN:
            self._intern_dependency(module_name, dependencies)
            return
        graph.add_node(module_name, action=pattern.action, provided=True)
        if pattern.action is Action.DENY:
            graph.nodes[module_name]["error"] = PackagingErrorReason.DENIED
            return
        if pattern.action is Action.MOCK:
            graph.nodes[module_name]["is_package"] = is_package(
                self.importer, module_name
            )
        self._run_hooks(pattern.action, module_name)

    def _intern_dependency(self, module_name: str, dependencies: bool) -> None:
        """Intern a module found as a dependency; one that fails to import is skipped.

        Libraries guard optional imports with ``try``; a module that cannot even be
        imported here is left out and listed by :meth:`unresolved_imports`.
        """
        try:
            self._intern_module(module_name, dependencies)
        except Exception as exc:
            if isinstance(exc, PackagingError):
                raise
            graph = self.dependency_graph
            graph.add_node(
                module_name,
                action=Action.SKIP,
                provided=True,
                import_error=f"{type(exc).__name__}: {exc}",
            )
            users = self._unresolved.setdefault(module_name, [])
            users.extend(graph.predecessors(module_name))

    def _intern_module(self, module_name: str, dependencies: bool) -> None:
        graph = self.dependency_graph
        graph.add_node(module_name, action=Action.INTERN, provided=True)
        graph.nodes[module_name].pop("error", None)
        module = self.importer.import_module(module_name)
        if is_mangled(module_name):
            module_name = demangle(module_name)
        is_package = hasattr(module, "__path__")
        graph.nodes[module_name]["is_package"] = is_package
        source, problem = module_source(module)
        if problem is not None:
            reason, context = problem
            graph.nodes[module_name]["error"] = reason
            if context is not None:
                graph.nodes[module_name]["error_context"] = context
            return
        graph.nodes[module_name]["source"] = source
        self._run_hooks(Action.INTERN, module_name)
        if dependencies:
            self._add_parent_dependencies(module_name)
            if source is not None:
                code = installed_code(module)
                self._add_source_dependencies(module_name, source, is_package, code)

    def _add_parent_dependencies(self, module_name: str) -> None:
        """Package the parents of an interned module, whose ``__init__`` runs first.

        torch.package leaves them out and loads empty stand-ins, which breaks packages
        whose ``__init__`` does work (mpmath registers its functions there). A parent
        that no pattern names is interned with its child; a pattern still decides
        otherwise when one matches.
        """
        graph = self.dependency_graph
        parts = module_name.split(".")
        for depth in range(1, len(parts)):
            parent = ".".join(parts[:depth])
            node = graph.nodes.get(parent)
            if node is not None and node.get("provided"):
                continue
            if not self._module_exists(parent):
                continue
            graph.add_edge(module_name, parent)
            decided = first_match(self._pattern_order, parent) is not None
            if not decided and not is_implicit_extern(parent):
                self._intern_dependency(parent, dependencies=True)
            else:
                self.add_dependency(parent)

    def _provide(self, module_name: str, source: bytes, is_package: bool) -> None:
        self._run_hooks(Action.INTERN, module_name)
        graph = self.dependency_graph
        graph.add_node(
            module_name,
            source=source,
            is_package=is_package,
            provided=True,
            action=Action.INTERN,
        )
        # A module saved after another one imported it is no longer unmatched.
        graph.nodes[module_name].pop("error", None)
        graph.nodes[module_name].pop("error_context", None)

    def _add_source_dependencies(
        self,
        module_name: str,
        source: bytes,
        is_package: bool,
        code: CodeType | None = None,
    ) -> None:
        graph = self.dependency_graph
        try:
            pairs = find_imports(source, module_name, is_package=is_package, code=code)
        except ImportScanError as exc:
            graph.nodes[module_name]["error"] = (
                PackagingErrorReason.DEPENDENCY_RESOLUTION_FAILED
            )
            graph.nodes[module_name]["error_context"] = str(exc)
            return
        for dependency in self._resolve_pairs(module_name, pairs):
            graph.add_edge(module_name, dependency)
            self.add_dependency(dependency)

    def _resolve_pairs(
        self, module_name: str, pairs: Iterable[tuple[str, str | None]]
    ) -> list[str]:
        """Turn ``(module, attr)`` pairs into module names, skipping missing ones.

        ``base.attr`` is used when it is a module, else ``base``; a base that
        cannot be found is recorded as unresolved instead.
        """
        found: dict[str, None] = {}
        for base, attr in pairs:
            if attr is not None and self._module_exists(f"{base}.{attr}"):
                found[f"{base}.{attr}"] = None
            elif self._module_exists(base):
                found[base] = None
            else:
                self._unresolved.setdefault(base, []).append(module_name)
        return list(found)

    def _module_exists(self, name: str) -> bool:
        node = self.dependency_graph.nodes.get(name)
        if node is not None and node.get("provided"):
            return True
        if name in sys.modules and self.importer is sys_importer:
            return True
        try:
            if self.importer is sys_importer:
                # Finding is enough: importing would run every optional dependency.
                return importlib.util.find_spec(name) is not None
            self.importer.import_module(name)
        except Exception:  # a module that cannot be imported here is not a dependency
            return False
        return True

    def _add_pickle_dependencies(
        self, package: str, resource: str, globals_: Iterable[tuple[str, str]]
    ) -> None:
        graph = self.dependency_graph
        node = f"<{package}.{resource}>"
        graph.add_node(node, action=Action.INTERN, provided=True, is_pickle=True)
        used: dict[str, list[str]] = {}
        for module, name in globals_:
            used.setdefault(module, []).append(name)
        for module, names in used.items():
            graph.add_edge(node, module)
            pattern = first_match(self._pattern_order, module)
            if pattern is not None and pattern.action is Action.MOCK:
                graph.add_node(
                    module,
                    error=PackagingErrorReason.MOCKED_BUT_STILL_USED,
                    error_context=(
                        f"Object(s) '{names}' from module `{module}` was mocked out "
                        "during packaging but is being used in resource - "
                        f"`{resource}` in package `{package}`. "
                    ),
                )
                pattern.was_matched = True
                continue
            self.add_dependency(module)

    # -- introspection -----------------------------------------------------------------

    def externed_modules(self) -> list[str]:
        """Return the modules that will be extern, sorted."""
        return self._nodes_with(Action.EXTERN)

    def interned_modules(self) -> list[str]:
        """Return the modules that will be interned, sorted."""
        return self._nodes_with(Action.INTERN)

    def mocked_modules(self) -> list[str]:
        """Return the modules that will be mocked, sorted."""
        return self._nodes_with(Action.MOCK)

    def denied_modules(self) -> list[str]:
        """Return the modules that were denied, sorted."""
        return self._nodes_with(Action.DENY)

    def unresolved_imports(self) -> dict[str, list[str]]:
        """Return imports that could not be found here, with the modules that made them.

        Such imports are skipped, as libraries often import optional dependencies
        inside ``try``; this lists them so that nothing is dropped silently.
        """
        return {name: list(users) for name, users in self._unresolved.items()}

    def get_rdeps(self, module_name: str) -> list[str]:
        """Return the modules (and pickles) that depend on *module_name* directly."""
        if module_name not in self.dependency_graph:
            return []
        return list(self.dependency_graph.predecessors(module_name))

    def dependency_graph_string(self) -> str:
        """Return the dependency graph as Graphviz DOT text."""
        return self.dependency_graph.to_dot()

    def all_paths(self, src: str, dst: str) -> str:
        """Return DOT text of every dependency path from *src* to *dst*."""
        return self.dependency_graph.all_paths(src, dst)

    def _nodes_with(self, action: Action) -> list[str]:
        return sorted(
            name
            for name, attrs in self.dependency_graph.nodes.items()
            if attrs.get("action") is action and not attrs.get("is_pickle")
        )

    # -- closing -----------------------------------------------------------------------

    def close(self) -> None:
        """Check every dependency, then write sources, metadata and the archive.

        Raises:
            PackagingError: some modules cannot be packaged (all are listed).
            EmptyMatchError: an ``allow_empty=False`` pattern matched nothing.
        """
        if self._closed:
            return
        self._closed = True
        try:
            self._validate()
            write_module_records(self.dependency_graph, self.zip_file)
            if self._script_modules is not None:
                self._script_modules.write_into(self.zip_file)
            self.zip_file.close()
        except BaseException:
            self._abort()
            raise
        finally:
            self._storage_keys.owners.clear()
        if self.buffer is not None and hasattr(self.buffer, "flush"):
            self.buffer.flush()

    def __enter__(self) -> PackageExporter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            # Nothing half-made is left behind: a path target is never created.
            self._closed = True
            self._abort()
            return
        self.close()

    def _abort(self) -> None:
        self.zip_file.abort()
        if self._script_modules is not None:
            self._script_modules.discard()

    def _validate(self) -> None:
        check_module_layout(self.dependency_graph)
        broken = [
            (name, attrs)
            for name, attrs in self.dependency_graph.nodes.items()
            if "error" in attrs
        ]
        if broken:
            path_to = self.dependency_graph.first_path if self.debug else None
            message, problems = format_report(broken, path_to=path_to)
            raise PackagingError(
                message, problems=problems, dependency_graph=self.dependency_graph
            )
        for pattern in self._pattern_order:
            if not pattern.allow_empty and not pattern.was_matched:
                raise EmptyMatchError(
                    f"Exporter did not match any modules to {pattern.group}, which was "
                    "marked as allow_empty=False"
                )

    # -- helpers -----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"exporter for {self.zip_file.name!r} is already closed")


def _as_importer(importer: object) -> Importer:
    if isinstance(importer, Importer):
        return importer
    if isinstance(importer, Sequence) and not isinstance(importer, (str, bytes)):
        return OrderedImporter(*importer)
    raise TypeError(
        "importer arg should be an Importer or a sequence of Importers, got "
        f"{type(importer).__name__} instead."
    )
