"""Compatibility names of ``torch.package.package_exporter``."""

from __future__ import annotations

from ._exporter import PackageExporter, PackagingErrorReason
from .errors import EmptyMatchError, PackagingError
from .importer import Importer, OrderedImporter, sys_importer

__all__ = [
    "EmptyMatchError",
    "Importer",
    "OrderedImporter",
    "PackageExporter",
    "PackagingError",
    "PackagingErrorReason",
    "sys_importer",
]
