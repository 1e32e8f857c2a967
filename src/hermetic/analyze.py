"""Tools for finding out what a package needs, and where a packaging error comes from.

Same names as ``torch.package.analyze``. Unlike torch's, :func:`is_from_package` is
true for classes and functions defined in packaged code too, not only for instances.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterable
from typing import Any

from ._mangling import demangle, is_mangled
from .errors import PackagingError

__all__ = ["find_first_use_of_broken_modules", "is_from_package", "trace_dependencies"]


def is_from_package(obj: Any) -> bool:
    """Return whether *obj* (module, class, function or instance) comes from a package.

    Objects whose class comes from an extern module or the standard library are not.
    """
    if isinstance(obj, types.ModuleType):
        return is_mangled(obj.__name__)
    if isinstance(obj, (type, types.FunctionType)):
        return is_mangled(getattr(obj, "__module__", "") or "")
    return is_mangled(type(obj).__module__)


def find_first_use_of_broken_modules(exc: PackagingError) -> dict[str, list[str]]:
    """Map each module a :class:`PackagingError` reports to the chain that used it.

    Example:
        >>> find_first_use_of_broken_modules(error)  # doctest: +SKIP
        {'sys': ['mypkg.a', 'sys']}
    """
    if not isinstance(exc, PackagingError):
        raise TypeError(f"expected a PackagingError, got {type(exc).__name__}")
    graph = exc.dependency_graph
    if graph is None:
        return {}
    return {
        name: graph.first_path(name)  # type: ignore[attr-defined]
        for name, attrs in graph.nodes.items()  # type: ignore[attr-defined]
        if "error" in attrs
    }


def trace_dependencies(
    callable: Callable[..., Any], inputs: Iterable[tuple[Any, ...]]
) -> list[str]:
    """Run ``callable(*args)`` for each tuple in *inputs*; list the modules it entered.

    Module names are demangled and given in the order first seen. Use the result to
    choose what to intern; it sees only the code these inputs actually run.
    """
    seen: dict[str, None] = {}

    def record(frame: types.FrameType, event: str, arg: object) -> None:
        if event == "call":
            name = frame.f_globals.get("__name__")
            if isinstance(name, str):
                seen.setdefault(demangle(name))

    previous = sys.getprofile()
    sys.setprofile(record)
    try:
        for args in inputs:
            callable(*args)
    finally:
        sys.setprofile(previous)
    return list(seen)
