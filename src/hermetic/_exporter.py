"""PackageExporter: collect code, objects and data into one package archive.

The exporter decides, for every module the saved code and objects need, whether it is
*interned* (its source goes into the archive), *extern* (the loading host provides it),
*mocked* (a stub that refuses use) or *denied* (an error). Problems are collected and
reported together when the exporter closes; nothing is left at the target path unless
the whole package was written.
"""

from __future__ import annotations

import enum
import importlib.machinery
import importlib.util
import os
import platform
import re
import sys
import threading
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any, BinaryIO

from . import _mock
from ._archive import ArchiveWriter
from ._environment import encode_environment
from ._find_imports import ImportScanError, find_imports
from ._format import (
    ENVIRONMENT_RECORD,
    EXTERN_MODULES_RECORD,
    PYTHON_VERSION_RECORD,
    module_record,
    resource_record,
    storage_record,
)
from ._graph import DiGraph
from ._hooks import RemovableHandle
from ._mangling import demangle, is_mangled
from ._patterns import GlobGroup
from ._pickler import pickle_object
from ._remote import is_url, open_url_writer
from ._report import PackagingErrorReason, format_report
from ._stdlib import is_implicit_extern
from .errors import EmptyMatchError, PackagingError, PickleSaveError
from .importer import Importer, OrderedImporter, sys_importer
from .progress import Progress, as_progress
from .storage import saving_backends

__all__ = ["PackageExporter", "PackagingErrorReason"]

GlobPattern = str | Iterable[str]
ActionHook = Callable[["PackageExporter", str], None]

_EXTENSION_SUFFIXES = tuple(importlib.machinery.EXTENSION_SUFFIXES)
_CODING_COOKIE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")


class _Action(enum.Enum):
    INTERN = 1
    EXTERN = 2
    MOCK = 3
    DENY = 4
    REPACKAGED_MOCK_MODULE = 5
    SKIP = 6


class _Pattern:
    """One intern/extern/mock/deny registration."""

    def __init__(
        self,
        include: GlobPattern,
        exclude: GlobPattern,
        action: _Action,
        allow_empty: bool,
    ) -> None:
        self.group = GlobGroup(include, exclude=exclude)
        self.action = action
        self.allow_empty = allow_empty
        self.was_matched = False
        self.names_top_level = _literal_top(include)


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
        self.patterns: dict[GlobGroup, _Pattern] = {}
        self._pattern_order: list[_Pattern] = []
        self._hooks: dict[_Action, dict[int, ActionHook]] = {a: {} for a in _Action}
        self._storage_keys: dict[Hashable, int] = {}
        self._storage_key_end = 0  # every storage key in use is below this
        self._storage_owners: list[object] = []
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
        self._add_pattern(include, exclude, _Action.INTERN, allow_empty)

    def extern(
        self,
        include: GlobPattern,
        *,
        exclude: GlobPattern = (),
        allow_empty: bool = True,
    ) -> None:
        """Leave matching modules to the loading environment."""
        self._add_pattern(include, exclude, _Action.EXTERN, allow_empty)

    def mock(
        self,
        include: GlobPattern,
        *,
        exclude: GlobPattern = (),
        allow_empty: bool = True,
    ) -> None:
        """Replace matching modules with stubs whose objects refuse any use."""
        self._add_pattern(include, exclude, _Action.MOCK, allow_empty)

    def deny(self, include: GlobPattern, *, exclude: GlobPattern = ()) -> None:
        """Report an error for any dependency on a matching module."""
        self._add_pattern(include, exclude, _Action.DENY, True)

    def _add_pattern(
        self,
        include: GlobPattern,
        exclude: GlobPattern,
        action: _Action,
        allow_empty: bool,
    ) -> None:
        self._check_open()
        pattern = _Pattern(include, exclude, action, allow_empty)
        self.patterns[pattern.group] = pattern
        self._pattern_order.append(pattern)

    # -- hooks -------------------------------------------------------------------------

    def register_extern_hook(self, hook: ActionHook) -> RemovableHandle:
        """Call ``hook(exporter, module_name)`` when a module is externed."""
        return self._register_hook(_Action.EXTERN, hook)

    def register_mock_hook(self, hook: ActionHook) -> RemovableHandle:
        """Call ``hook(exporter, module_name)`` when a module is mocked."""
        return self._register_hook(_Action.MOCK, hook)

    def register_intern_hook(self, hook: ActionHook) -> RemovableHandle:
        """Call ``hook(exporter, module_name)`` when a module is interned."""
        return self._register_hook(_Action.INTERN, hook)

    def _register_hook(self, action: _Action, hook: ActionHook) -> RemovableHandle:
        handle = RemovableHandle(self._hooks[action])
        self._hooks[action][handle.id] = hook
        return handle

    def _run_hooks(self, action: _Action, module_name: str) -> None:
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
        _check_module_name(module_name)
        source = _source_bytes(src)
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
        _check_module_name(module_name)
        path = Path(file_or_directory)
        if path.is_dir():
            found = _modules_in_directory(module_name, path)
            for name, file, is_package in found:
                self._provide(name, _read_source(file), is_package)
            if dependencies:
                for name, file, is_package in found:
                    self._add_source_dependencies(name, _read_source(file), is_package)
            return
        source = _read_source(path)
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
        _check_module_name(module_name)
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
        record = self._record_name(package, resource)
        pending: list[tuple[int, memoryview]] = []
        sink = _StorageSink(self, pending)
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
        self.zip_file.write_record(self._record_name(package, resource), binary)

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
        return self._storage_key_end

    def _reserve_storage_key(self, identity: Hashable, key: int) -> None:
        """Mark storage *key* as taken by a record written by someone else."""
        self._storage_keys[identity] = key
        self._storage_key_end = max(self._storage_key_end, key + 1)

    # -- dependency resolution ---------------------------------------------------------

    def add_dependency(self, module_name: str, dependencies: bool = True) -> None:
        """Decide what to do with *module_name* and, when interned, its own imports."""
        graph = self.dependency_graph
        if module_name in graph and graph.nodes[module_name].get("provided"):
            return
        if module_name == "torch_package_importer":
            graph.add_node(module_name, action=_Action.SKIP, provided=True)
            return
        if module_name == "_mock":
            graph.add_node(
                module_name, action=_Action.REPACKAGED_MOCK_MODULE, provided=True
            )
            return
        pattern = self._first_match(module_name)
        if pattern is None:
            if is_implicit_extern(module_name):
                graph.add_node(module_name, action=_Action.EXTERN, provided=True)
                self._run_hooks(_Action.EXTERN, module_name)
                return
            graph.add_node(module_name, error=PackagingErrorReason.NO_ACTION)
            return
        pattern.was_matched = True
        if pattern.action is _Action.INTERN:
            self._intern_dependency(module_name, dependencies)
            return
        graph.add_node(module_name, action=pattern.action, provided=True)
        if pattern.action is _Action.DENY:
            graph.nodes[module_name]["error"] = PackagingErrorReason.DENIED
            return
        if pattern.action is _Action.MOCK:
            graph.nodes[module_name]["is_package"] = _is_package(
                self.importer, module_name
            )
        self._run_hooks(pattern.action, module_name)

    def _first_match(self, module_name: str) -> _Pattern | None:
        """Return the first pattern deciding *module_name*.

        Standard-library modules and ``torch`` are extern unless a pattern names their
        top-level module literally (``deny("subprocess")``, ``mock("torch.**")``); a
        wildcard such as ``mock("**")`` does not reach them.
        """
        implicit = is_implicit_extern(module_name)
        top = module_name.partition(".")[0]
        for pattern in self._pattern_order:
            if implicit and top not in pattern.names_top_level:
                continue
            if pattern.group.matches(module_name):
                return pattern
        return None

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
                action=_Action.SKIP,
                provided=True,
                import_error=f"{type(exc).__name__}: {exc}",
            )
            users = self._unresolved.setdefault(module_name, [])
            users.extend(graph.predecessors(module_name))

    def _intern_module(self, module_name: str, dependencies: bool) -> None:
        graph = self.dependency_graph
        graph.add_node(module_name, action=_Action.INTERN, provided=True)
        graph.nodes[module_name].pop("error", None)
        module = self.importer.import_module(module_name)
        if is_mangled(module_name):
            module_name = demangle(module_name)
        is_package = hasattr(module, "__path__")
        graph.nodes[module_name]["is_package"] = is_package
        source, problem = _module_source(module)
        if problem is not None:
            reason, context = problem
            graph.nodes[module_name]["error"] = reason
            if context is not None:
                graph.nodes[module_name]["error_context"] = context
            return
        graph.nodes[module_name]["source"] = source
        self._run_hooks(_Action.INTERN, module_name)
        if dependencies:
            self._add_parent_dependencies(module_name)
            if source is not None:
                code = _installed_code(module)
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
            if not self._module_exists(parent, module_name):
                continue
            graph.add_edge(module_name, parent)
            if self._first_match(parent) is None and not is_implicit_extern(parent):
                self._intern_dependency(parent, dependencies=True)
            else:
                self.add_dependency(parent)

    def _provide(self, module_name: str, source: bytes, is_package: bool) -> None:
        self._run_hooks(_Action.INTERN, module_name)
        graph = self.dependency_graph
        graph.add_node(
            module_name,
            source=source,
            is_package=is_package,
            provided=True,
            action=_Action.INTERN,
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
            if attr is not None and self._module_exists(f"{base}.{attr}", module_name):
                found[f"{base}.{attr}"] = None
            elif self._module_exists(base, module_name):
                found[base] = None
            else:
                self._unresolved.setdefault(base, []).append(module_name)
        return list(found)

    def _module_exists(self, name: str, needed_by: str) -> bool:
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
        graph.add_node(node, action=_Action.INTERN, provided=True, is_pickle=True)
        used: dict[str, list[str]] = {}
        for module, name in globals_:
            used.setdefault(module, []).append(name)
        for module, names in used.items():
            graph.add_edge(node, module)
            pattern = self._first_match(module)
            if pattern is not None and pattern.action is _Action.MOCK:
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
        return self._nodes_with(_Action.EXTERN)

    def interned_modules(self) -> list[str]:
        """Return the modules that will be interned, sorted."""
        return self._nodes_with(_Action.INTERN)

    def mocked_modules(self) -> list[str]:
        """Return the modules that will be mocked, sorted."""
        return self._nodes_with(_Action.MOCK)

    def denied_modules(self) -> list[str]:
        """Return the modules that were denied, sorted."""
        return self._nodes_with(_Action.DENY)

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

    def _nodes_with(self, action: _Action) -> list[str]:
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
            self._write_modules()
            if self._script_modules is not None:
                self._script_modules.write_into(self.zip_file)
            self.zip_file.close()
        except BaseException:
            self._abort()
            raise
        finally:
            self._storage_owners.clear()
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
        self._check_module_layout()
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

    def _check_module_layout(self) -> None:
        """Refuse a module saved inside one that was saved as a plain module.

        ``mod.py`` beside ``mod/sub.py`` could not be imported by any importer.
        """
        graph = self.dependency_graph
        for name, attrs in graph.nodes.items():
            if attrs.get("action") is not _Action.INTERN or attrs.get("is_pickle"):
                continue
            parent = name.rpartition(".")[0]
            parent_attrs = graph.nodes.get(parent)
            if (
                parent_attrs is not None
                and parent_attrs.get("action") is _Action.INTERN
                and isinstance(parent_attrs.get("source"), bytes)
                and not parent_attrs.get("is_package")
            ):
                graph.nodes[name]["error"] = (
                    PackagingErrorReason.DEPENDENCY_RESOLUTION_FAILED
                )
                graph.nodes[name]["error_context"] = (
                    f"{parent!r} was saved as a plain module, so {name!r} cannot live "
                    f"inside it; save {parent!r} with is_package=True"
                )

    def _write_modules(self) -> None:
        externs: list[str] = []
        mock_written = False
        for name, attrs in self.dependency_graph.nodes.items():
            action = attrs.get("action")
            if action is _Action.EXTERN:
                externs.append(name)
            elif action is _Action.MOCK:
                mock_written = self._write_mock_module(mock_written)
                record = module_record(name, is_package=bool(attrs.get("is_package")))
                self.zip_file.write_record(record, _mock.STUB_SOURCE.encode())
            elif action is _Action.REPACKAGED_MOCK_MODULE:
                mock_written = self._write_mock_module(mock_written)
            elif action is _Action.INTERN and not attrs.get("is_pickle"):
                source = attrs.get("source")
                if not isinstance(source, bytes):
                    continue  # a namespace package: its folder appears by itself
                record = module_record(name, is_package=bool(attrs.get("is_package")))
                self.zip_file.write_record(record, source)
        extern_text = "".join(f"{name}\n" for name in externs) or "\n"
        self.zip_file.write_record(EXTERN_MODULES_RECORD, extern_text.encode())
        self.zip_file.write_record(
            PYTHON_VERSION_RECORD, platform.python_version().encode()
        )
        self.zip_file.write_record(ENVIRONMENT_RECORD, encode_environment(externs))

    def _write_mock_module(self, already: bool) -> bool:
        if not already:
            self.zip_file.write_record("_mock.py", Path(_mock.__file__).read_bytes())
        return True

    # -- helpers -----------------------------------------------------------------------

    def _record_name(self, package: str, resource: str) -> str:
        if not _is_nonempty_str(package):
            raise ValueError(
                "package must be a non-empty module name such as 'my_data', "
                f"got {package!r}"
            )
        _check_module_name(package)
        if not _is_nonempty_str(resource) or resource in (".", ".."):
            raise ValueError(f"invalid resource name {resource!r}")
        if "/" in resource or "\\" in resource:
            raise ValueError(f"{resource!r} must be only a file name")
        if is_mangled(package):
            raise ValueError(
                f"refusing to save into {package!r}: it is a mangled package name"
            )
        return resource_record(package, resource)

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"exporter for {self.zip_file.name!r} is already closed")


class _StorageSink:
    """Numbers storages per exporter (first use order) and queues new ones."""

    def __init__(
        self, exporter: PackageExporter, pending: list[tuple[int, memoryview]]
    ):
        self._exporter = exporter
        self._pending = pending
        self._added: list[Hashable] = []

    def add_storage(self, identity: Hashable, data: memoryview, owner: object) -> int:
        keys = self._exporter._storage_keys
        key = keys.get(identity)
        if key is None:
            key = keys[identity] = self._exporter._storage_key_end
            self._exporter._storage_key_end += 1
            self._exporter._storage_owners.append(owner)
            self._pending.append((key, data))
            self._added.append(identity)
        return key

    def forget(self) -> None:
        """Undo the keys handed out by a pickle that failed."""
        keys = self._exporter._storage_keys
        for identity in self._added:
            keys.pop(identity, None)
        self._exporter._storage_key_end = max(keys.values(), default=-1) + 1


def _as_importer(importer: object) -> Importer:
    if isinstance(importer, Importer):
        return importer
    if isinstance(importer, Sequence) and not isinstance(importer, (str, bytes)):
        return OrderedImporter(*importer)
    raise TypeError(
        "importer arg should be an Importer or a sequence of Importers, got "
        f"{type(importer).__name__} instead."
    )


def _literal_top(include: GlobPattern) -> frozenset[str]:
    """Return the top-level names a pattern spells literally (no wildcard)."""
    includes = [include] if isinstance(include, str) else list(include)
    tops = (str(p).partition(".")[0] for p in includes)
    return frozenset(top for top in tops if "*" not in top)


def _is_nonempty_str(value: object) -> bool:
    return isinstance(value, str) and bool(value)


def _check_module_name(name: str) -> None:
    if not isinstance(name, str):
        raise TypeError(f"module name must be str, not {type(name).__name__}")
    if not name or any(not part for part in name.split(".")):
        raise ValueError(f"invalid module name {name!r}: empty segment")


def _source_bytes(src: str | bytes) -> bytes:
    """Encode source text, honouring a PEP 263 coding cookie in its first two lines."""
    if isinstance(src, bytes):
        return src
    if not isinstance(src, str):
        raise TypeError(f"source must be str or bytes, not {type(src).__name__}")
    head = src.encode("utf-8", "surrogateescape").splitlines()[:2]
    for line in head:
        match = _CODING_COOKIE.match(line)
        if match:
            try:
                return src.encode(match.group(1).decode("ascii"))
            except (LookupError, UnicodeEncodeError):
                break
    return src.encode("utf-8")


def _read_source(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise FileNotFoundError(
            f"cannot read source file {str(path)!r}: {exc}"
        ) from exc


def _modules_in_directory(
    module_name: str, directory: Path
) -> list[tuple[str, Path, bool]]:
    """List ``(module, file, is_package)`` for each ``*.py`` under *directory*.

    Hidden folders and files (starting with ``.``) and ``__pycache__`` are skipped:
    their names are not importable module names.
    """
    found: list[tuple[str, Path, bool]] = []
    for file in sorted(directory.rglob("*.py")):
        relative = file.relative_to(directory)
        if any(p.startswith(".") or p == "__pycache__" for p in relative.parts):
            continue
        parts = list(relative.with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        found.append((".".join([module_name, *parts]), file, is_package))
    return found


def _module_source(
    module: ModuleType,
) -> tuple[bytes | None, tuple[PackagingErrorReason, str | None] | None]:
    """Return a module's source bytes, or the reason it has none."""
    spec = getattr(module, "__spec__", None)
    loader = getattr(spec, "loader", None)
    get_source_bytes = getattr(loader, "get_data", None)
    filename: str | None = None
    if isinstance(loader, importlib.machinery.SourceFileLoader):
        filename = loader.get_filename(module.__name__)
    else:
        filename = getattr(module, "__file__", None)
    if filename is None:
        if hasattr(module, "__path__"):
            return None, None  # namespace package: nothing to write
        return None, (PackagingErrorReason.NO_DUNDER_FILE, None)
    if filename.endswith(_EXTENSION_SUFFIXES):
        return None, (PackagingErrorReason.IS_EXTENSION_MODULE, None)
    if not filename.endswith(".py"):
        return None, (
            PackagingErrorReason.SOURCE_FILE_NOT_FOUND,
            f"filename: {filename}",
        )
    get_source = getattr(loader, "get_source", None)
    if get_source_bytes is not None and isinstance(
        loader, importlib.machinery.SourceFileLoader
    ):
        try:
            return bytes(get_source_bytes(filename)), None
        except OSError:
            pass
    try:
        return Path(filename).read_bytes(), None
    except OSError:
        pass
    if get_source is not None:
        try:
            text = get_source(getattr(spec, "name", module.__name__))
        except Exception:  # a loader that cannot give source is the same as none
            text = None
        if text is not None:
            return _source_bytes(text), None
    return None, (PackagingErrorReason.SOURCE_FILE_NOT_FOUND, f"filename: {filename}")


def _installed_code(module: ModuleType) -> CodeType | None:
    """Return an installed module's compiled code from its ``.pyc``, if up to date.

    Scanning compiled code for imports is what costs most when interning a large
    library; the interpreter has usually compiled it already.
    """
    spec = getattr(module, "__spec__", None)
    loader = getattr(spec, "loader", None)
    if not isinstance(loader, importlib.machinery.SourceFileLoader) or spec is None:
        return None
    try:
        return loader.get_code(spec.name)
    except (ImportError, OSError, SyntaxError, ValueError, EOFError):
        return None


def _is_package(importer: Importer, module_name: str) -> bool:
    try:
        return hasattr(importer.import_module(module_name), "__path__")
    except Exception:  # a mocked module need not be importable here
        return False
