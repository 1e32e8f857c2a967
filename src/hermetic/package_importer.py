"""Compatibility names of ``torch.package.package_importer``."""

from __future__ import annotations

from ._importer import IMPLICIT_IMPORT_ALLOWLIST, PackageImporter
from .file_structure_representation import Directory
from .importer import Importer

__all__ = ["IMPLICIT_IMPORT_ALLOWLIST", "Directory", "Importer", "PackageImporter"]
