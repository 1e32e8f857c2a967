"""``importlib.resources`` support for packaged code: records seen as files.

A packaged package's folder in the archive is a :class:`ArchiveTraversable`; its
reader also answers the older ``ResourceReader`` calls. Both read records lazily and
never extract anything to disk (``importlib.resources.as_file`` does that itself when a
caller needs a real path).
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if sys.version_info >= (3, 11):
    from importlib.resources.abc import Traversable, TraversableResources
else:
    from importlib.abc import Traversable, TraversableResources

if TYPE_CHECKING:
    from ._importer import PackageImporter

__all__ = ["ArchiveTraversable", "PackageResourceReader", "package_files"]


class ArchiveTraversable(Traversable):
    """A file or folder inside a package's archive."""

    def __init__(self, importer: PackageImporter, path: str) -> None:
        self._importer = importer
        self._path = path.strip("/")

    @property
    def name(self) -> str:
        return self._path.rpartition("/")[2]

    def _records(self) -> list[str]:
        index: list[str] | None = self._importer.__dict__.get("_record_index")
        if index is None:
            index = self._importer.zip_reader.record_names()
            self._importer.__dict__["_record_index"] = index
        return index

    def is_file(self) -> bool:
        return self._importer.zip_reader.has_record(self._path)

    def is_dir(self) -> bool:
        prefix = f"{self._path}/" if self._path else ""
        return any(record.startswith(prefix) for record in self._records())

    def iterdir(self) -> Iterator[ArchiveTraversable]:
        prefix = f"{self._path}/" if self._path else ""
        seen: dict[str, None] = {}
        for record in self._records():
            if record.startswith(prefix):
                seen.setdefault(record[len(prefix) :].partition("/")[0], None)
        for child in sorted(seen):
            yield ArchiveTraversable(self._importer, prefix + child)

    def joinpath(self, *descendants: str) -> ArchiveTraversable:
        parts = [self._path] if self._path else []
        for descendant in descendants:
            parts.extend(p for p in str(descendant).split("/") if p)
        return ArchiveTraversable(self._importer, "/".join(parts))

    def __truediv__(self, child: str) -> ArchiveTraversable:
        return self.joinpath(child)

    def open(self, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if mode not in ("r", "rb"):
            raise ValueError(f"package resources are read-only; mode {mode!r} refused")
        if not self.is_file():
            raise FileNotFoundError(
                f"{self._importer.filename}: no resource {self._path!r}"
            )
        data = io.BytesIO(self._importer.zip_reader.read(self._path))
        return data if mode == "rb" else io.TextIOWrapper(data, *args, **kwargs)

    def read_text(self, encoding: str | None = None, errors: str | None = None) -> str:
        # importlib.resources.read_text passes errors= (Python 3.13), as to pathlib.
        return self.read_bytes().decode(encoding or "utf-8", errors or "strict")

    def read_bytes(self) -> bytes:
        if not self.is_file():
            raise FileNotFoundError(
                f"{self._importer.filename}: no resource {self._path!r}"
            )
        return self._importer.zip_reader.read(self._path)

    def __fspath__(self) -> str:
        """Return a real path to this file, extracted once to a private cache folder.

        Code written for installed packages often passes ``files(pkg) / "x"`` to an
        API that wants a path (``gzip.open``, ``numpy.load``); this keeps it working.
        """
        if not self.is_file():
            raise FileNotFoundError(
                f"{self._importer.filename}: no resource {self._path!r}"
            )
        target = Path(_extraction_dir(self._importer), *self._path.split("/"))
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".partial")
            partial.write_bytes(self.read_bytes())
            os.replace(partial, target)
        return str(target)

    def __repr__(self) -> str:
        return f"ArchiveTraversable({self._importer.filename!r}, {self._path!r})"


class PackageResourceReader(TraversableResources):
    """Resources of one packaged package, for ``importlib.resources``."""

    def __init__(self, importer: PackageImporter, package: str) -> None:
        self._importer = importer
        self._package = package

    def files(self) -> ArchiveTraversable:
        return package_files(self._importer, self._package)

    def resource_path(self, resource: Any) -> str:
        raise FileNotFoundError(resource)  # no real path: as_file() extracts instead

    def contents(self) -> Iterator[str]:
        return (child.name for child in self.files().iterdir())


def _extraction_dir(importer: PackageImporter) -> str:
    """Return the importer's folder for extracted resources, made on first use."""
    folder: str | None = importer.__dict__.get("_extraction_dir")
    if folder is None:
        folder = tempfile.mkdtemp(prefix="hermetic-resources-")
        importer.__dict__["_extraction_dir"] = folder
        weakref.finalize(importer, shutil.rmtree, folder, ignore_errors=True)
    return folder


def package_files(importer: PackageImporter, package: str) -> ArchiveTraversable:
    """Return the folder of *package* inside *importer*'s archive."""
    return ArchiveTraversable(importer, package.replace(".", "/"))
