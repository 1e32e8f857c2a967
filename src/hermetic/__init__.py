"""hermetic: ship Python code with the objects and tensors that use it.

A package is one ZIP archive, in torch.package's format, holding source code, pickles
and raw data; loading it gives each package its own isolated module namespace.
"""

from __future__ import annotations

from ._exporter import PackageExporter
from ._importer import PackageImporter
from ._integrity import verify_archive
from ._patterns import GlobGroup
from ._signing import sign, verify
from .analyze import is_from_package
from .errors import (
    ArchiveError,
    ArchiveFormatError,
    EmptyMatchError,
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
from .file_structure_representation import Directory
from .importer import Importer, OrderedImporter, sys_importer
from .scan import Report, scan

__version__ = "0.1.0"

__all__ = [
    "ArchiveError",
    "ArchiveFormatError",
    "Directory",
    "EmptyMatchError",
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
