"""The text of a PackagingError: every broken module, grouped by reason.

The layout follows torch.package's so that logs and tests that read it keep working:
a ``* <reason>`` heading per reason, the modules under it, optional context lines.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["PackagingErrorReason", "format_report"]


class PackagingErrorReason(enum.Enum):
    """Why a module cannot be packaged."""

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__}.{self.name}>"

    IS_EXTENSION_MODULE = (
        "Module is a C extension module. torch.package supports Python modules only."
    )
    NO_DUNDER_FILE = "Module had no __file__ defined."
    SOURCE_FILE_NOT_FOUND = (
        "Module had a __file__, but we could not find it in your filesystem."
    )
    DEPENDENCY_RESOLUTION_FAILED = "Dependency resolution failed."
    NO_ACTION = (
        "Module did not match against any action pattern. Extern, mock, or intern it."
    )
    DENIED = "Module was denied by a pattern."
    MOCKED_BUT_STILL_USED = (
        "Module was mocked out, but is still being used in the package. "
        "Please intern or extern the mocked modules if objects are supposed to be in "
        "the package."
    )


_SENSITIVE_NOTE = (
    "Note: While we usually use modules in the python standard library from the local "
    "environment, `{name}` has a lot of system level access and therefore can pose a "
    "security risk. We heavily recommend removing `{name}` from your packaged code. "
    "However, if that is not possible, add it to the extern list by calling "
    'PackageExporter.extern("`{name}`")'
)


def format_report(
    broken: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    path_to: Callable[[str], list[str]] | None,
) -> tuple[str, dict[str, list[str]]]:
    """Return the report text and ``{reason text: [module, ...]}`` for *broken*.

    *broken* yields ``(module, attributes)`` in graph order, each with an ``error``
    (a :class:`PackagingErrorReason`) and maybe an ``error_context``. With *path_to*
    (debug mode) each module gets the dependency chain that pulled it in.
    """
    grouped: dict[PackagingErrorReason, list[tuple[str, Mapping[str, Any]]]] = {}
    for module, attrs in broken:
        grouped.setdefault(attrs["error"], []).append((module, attrs))
    lines = [""]
    for reason, modules in grouped.items():
        lines.append(f"* {reason.value}")
        for module, attrs in modules:
            lines.append(f"    {module}")
            if attrs.get("error_context") is not None:
                lines.append(f"      Context: {attrs['error_context']}")
            if module in ("sys", "io"):
                lines.append("      " + _SENSITIVE_NOTE.format(name=module))
            if path_to is not None:
                lines.append(
                    f"      A path to {module}: {' -> '.join(path_to(module))}"
                )
    if path_to is None:
        lines.append("")
        lines.append(
            "Set debug=True when invoking PackageExporter for a visualization of where "
            "broken modules are coming from!"
        )
    problems = {reason.value: [m for m, _ in mods] for reason, mods in grouped.items()}
    return "\n".join(lines) + "\n", problems
