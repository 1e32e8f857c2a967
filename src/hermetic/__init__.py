"""hermetic: ship Python code with the objects and tensors that use it.

A package is one ZIP archive, in torch.package's format, holding source code, pickles
and raw data; loading it gives each package its own isolated module namespace.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    ArchiveError,
    ArchiveFormatError,
    EmptyMatchError,
    EnvironmentMismatchError,
    EnvironmentMismatchWarning,
    HermeticError,
    ImportFromPackageError,
    IntegrityError,
    ObjMismatchError,
    ObjNotFoundError,
    PackagingError,
    PickleLoadError,
    PickleSaveError,
    SignatureError,
    UnsafeContentError,
)

if TYPE_CHECKING:
    from ._exporter import PackageExporter
    from ._importer import PackageImporter
    from ._integrity import verify_archive
    from ._patterns import GlobGroup
    from ._signing import sign, verify
    from .analyze import is_from_package
    from .file_structure_representation import Directory
    from .importer import Importer, OrderedImporter, sys_importer
    from .scanner import Report, scan

# Imported on first use, so that `import hermetic` stays cheap: loading a package
# should cost what its own code costs, not what every part of hermetic costs.
_LAZY = {
    "Directory": ".file_structure_representation",
    "GlobGroup": "._patterns",
    "Importer": ".importer",
    "OrderedImporter": ".importer",
    "PackageExporter": "._exporter",
    "PackageImporter": "._importer",
    "Report": ".scanner",
    "is_from_package": ".analyze",
    "scan": ".scanner",
    "sign": "._signing",
    "sys_importer": ".importer",
    "verify": "._signing",
    "verify_archive": "._integrity",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'hermetic' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__version__ = "0.1.0"

__all__ = [
    "ArchiveError",
    "ArchiveFormatError",
    "Directory",
    "EmptyMatchError",
    "EnvironmentMismatchError",
    "EnvironmentMismatchWarning",
    "GlobGroup",
    "HermeticError",
    "ImportFromPackageError",
    "Importer",
    "IntegrityError",
    "ObjMismatchError",
    "ObjNotFoundError",
    "OrderedImporter",
    "PackageExporter",
    "PackageImporter",
    "PackagingError",
    "PickleLoadError",
    "PickleSaveError",
    "Report",
    "SignatureError",
    "UnsafeContentError",
    "__version__",
    "is_from_package",
    "scan",
    "sign",
    "sys_importer",
    "verify",
    "verify_archive",
]
