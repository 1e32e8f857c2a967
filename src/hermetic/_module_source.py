"""Find and read the source, and compiled code, of modules the exporter interns.

Source comes from a module's loader or its file, or from files under a folder, as
bytes in the encoding they were written in. This module does not scan imports (that
is :mod:`hermetic._find_imports`) or decide what gets interned; it runs no module
code, except that :func:`is_package` imports a module through the given importer.
"""

from __future__ import annotations

import importlib.machinery
import re
from pathlib import Path
from types import CodeType, ModuleType
from typing import TYPE_CHECKING

from ._report import PackagingErrorReason

if TYPE_CHECKING:
    from .importer import Importer

__all__ = [
    "installed_code",
    "is_package",
    "module_source",
    "modules_in_directory",
    "read_source",
    "source_bytes",
]

_EXTENSION_SUFFIXES = tuple(importlib.machinery.EXTENSION_SUFFIXES)
_CODING_COOKIE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")


def source_bytes(src: str | bytes) -> bytes:
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


def read_source(path: Path) -> bytes:
    """Return the bytes of source file *path*; FileNotFoundError names it."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise FileNotFoundError(
            f"cannot read source file {str(path)!r}: {exc}"
        ) from exc


def modules_in_directory(
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


def module_source(
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
            return source_bytes(text), None
    return None, (PackagingErrorReason.SOURCE_FILE_NOT_FOUND, f"filename: {filename}")


def installed_code(module: ModuleType) -> CodeType | None:
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


def is_package(importer: Importer, module_name: str) -> bool:
    """Tell whether *module_name* is a package, importing it through *importer*."""
    try:
        return hasattr(importer.import_module(module_name), "__path__")
    except Exception:  # a mocked module need not be importable here
        return False
