"""Open fsspec URLs (``s3://``, ``http(s)://``, ``file://``, ``memory://``) as archives.

Reading hands :class:`ArchiveReader` a seekable fsspec file with a small read-ahead
cache, so only the end records, the central directory and the records actually read
are fetched. Writing builds the archive in a local temporary folder and uploads it with
the filesystem's ``put_file`` once it is complete, so a failed export leaves nothing
at the URL.

This module does not memory-map remote archives (their storages are read into memory),
retry failed requests, resolve chained URLs (``simplecache::s3://``) or write in place.
fsspec is imported only when a URL is opened.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import shutil
import tempfile
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, BinaryIO

from ._archive import translated_errors
from ._archive_reader import ArchiveReader
from ._archive_writer import ArchiveWriter
from .errors import MissingDependencyError

if TYPE_CHECKING:
    from .progress import Progress

__all__ = ["is_url", "open_url_reader", "open_url_writer"]

#: A scheme of two or more characters, then "://" (one letter is a Windows drive).
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+://")
#: Each cache miss fetches the bytes asked for plus this much more: enough to take a
#: local header with its record, small enough that a one-module import of a huge
#: archive downloads kilobytes.
_READ_AHEAD = 64 << 10
_CACHE_TYPE = "readahead"


def is_url(target: object) -> bool:
    """Return whether *target* is a str naming an fsspec URL rather than a path.

    >>> is_url("s3://bucket/model.pt"), is_url("memory://m.pt")
    (True, True)
    >>> is_url("model.pt"), is_url("C://models/model.pt"), is_url(b"s3://b/m.pt")
    (False, False, False)
    >>> is_url("")
    False
    """
    return isinstance(target, str) and _URL.match(target) is not None


def _filesystem(
    url: str, storage_options: Mapping[str, Any] | None, purpose: str
) -> tuple[Any, str]:
    """Return the fsspec filesystem for *url* and the path inside it."""
    try:
        import fsspec.core
    except ImportError as exc:
        raise MissingDependencyError("fsspec", "fsspec", purpose) from exc
    with translated_errors(url, "cannot open the filesystem"):
        fs, path = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
    return fs, str(path)


def _is_local(fs: Any) -> bool:
    """Return whether *fs* is fsspec's local filesystem (``file://`` URLs)."""
    protocol = fs.protocol
    return "file" in ((protocol,) if isinstance(protocol, str) else protocol)


def open_url_reader(
    url: str, storage_options: Mapping[str, Any] | None = None
) -> ArchiveReader:
    """Open the archive at *url* for reading; its :attr:`~ArchiveReader.name` is *url*.

    A ``file://`` archive is opened as a local path, so its storages are still mapped.

    Raises:
        ArchiveError: nothing is at *url*, or it cannot be read.
        MissingDependencyError: fsspec is not installed.
    """
    fs, path = _filesystem(url, storage_options, "Reading s3:// or http(s):// archives")
    if _is_local(fs):
        return _URLReader(url, path)
    with translated_errors(url, "cannot open the archive"):
        file = fs.open(path, "rb", block_size=_READ_AHEAD, cache_type=_CACHE_TYPE)
    return _URLReader(url, file)


class _URLReader(ArchiveReader):
    """An ArchiveReader named by its URL that closes the fsspec file it was given."""

    def __init__(self, url: str, source: str | BinaryIO) -> None:
        self._url = url
        self._remote_file = None if isinstance(source, str) else source
        super().__init__(source)

    def _open(self, source: str | os.PathLike[str] | BinaryIO) -> None:
        self.name = self._url
        if isinstance(source, (str, os.PathLike)):
            self._open_zip_path(os.fspath(source))
        else:
            self._open_zip(source)

    def close(self) -> None:
        super().close()
        if self._remote_file is not None:
            with contextlib.suppress(Exception):
                self._remote_file.close()


def open_url_writer(
    url: str,
    storage_options: Mapping[str, Any] | None = None,
    *,
    manifest: bool = False,
    progress: Progress | None = None,
) -> ArchiveWriter:
    """Return an ArchiveWriter whose :meth:`~ArchiveWriter.close` publishes at *url*.

    The archive folder is named after the URL's last path segment, as for a path.

    Raises:
        MissingDependencyError: fsspec is not installed.
    """
    fs, path = _filesystem(url, storage_options, "Writing s3:// or http(s):// archives")
    if _is_local(fs):
        writer = ArchiveWriter(path, manifest=manifest, progress=progress)
    else:
        writer = _URLWriter(fs, path, manifest=manifest, progress=progress)
    writer.name = url
    return writer


class _URLWriter(ArchiveWriter):
    """An ArchiveWriter that writes to a local temporary folder, uploaded on close."""

    def __init__(
        self, fs: Any, path: str, *, manifest: bool, progress: Progress | None
    ) -> None:
        self._fs = fs
        self._remote_path = path
        self._folder = tempfile.mkdtemp(prefix="hermetic-upload-")
        self._cleanup = weakref.finalize(
            self, shutil.rmtree, self._folder, ignore_errors=True
        )
        base = posixpath.basename(path.rstrip("/")) or "archive"
        self._local = os.path.join(self._folder, base)
        try:
            super().__init__(self._local, manifest=manifest, progress=progress)
        except BaseException:
            self._cleanup()
            raise

    def close(self) -> None:
        """Finish the archive locally, then upload it; the temporary copy goes."""
        if self._closed:
            return
        try:
            super().close()
            with translated_errors(self.name, "cannot upload the archive"):
                self._fs.put_file(self._local, self._remote_path)
        finally:
            self._cleanup()

    def abort(self) -> None:
        """Discard the archive; nothing was uploaded."""
        try:
            super().abort()
        finally:
            self._cleanup()
