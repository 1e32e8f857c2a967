"""Write the ZIP container of a package, byte for byte as torch.package does.

The writer lays records out as torch's ``PyTorchFileWriter`` does: stored, 64-byte
aligned through an ``FB`` padding extra, sizes in data descriptors, ZIP64 end records.
A path target is written to a temporary file and renamed onto the path on success.

This module knows nothing about pickles, modules or storages; it does not compress,
and it reads nothing back (:mod:`._archive_reader` does).
"""

from __future__ import annotations

import contextlib
import io
import operator
import os
import sys
import tempfile
import weakref
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO

from ._archive import BINARY_NAME, as_str_path, check_record_name, translated_errors
from ._checksums import BACKGROUND_SIZE, Checksums, DigestBatch, pieces_of
from ._format import (
    BUFFER_ARCHIVE_NAME,
    BYTEORDER_RECORD,
    FORMAT_VERSION,
    MANIFEST_RECORD,
    SERIALIZATION_ID_RECORD,
    VERSION_RECORD,
    archive_name_for_path,
)
from ._manifest import EXEMPT_RECORDS, Digest, encode_manifest
from ._zip_layout import (
    FLAGS,
    FLAGS_EMPTY,
    Entry,
    central_entry,
    data_descriptor,
    end_records,
    local_extra,
    local_header,
    serialization_id,
)
from .errors import ArchiveError, ArchiveFormatError

if TYPE_CHECKING:
    from .progress import Progress

__all__ = ["ArchiveWriter"]


def _byte_view(data: bytes | bytearray | memoryview) -> memoryview:
    """Return a flat unsigned-byte view of *data*, copying only if it is scattered."""
    view = memoryview(data)
    if view.format == "B" and view.ndim == 1 and view.c_contiguous:
        return view
    if view.c_contiguous:
        return view.cast("B")
    return memoryview(view.tobytes())


def _write_all(write: Callable[[memoryview], object], data: memoryview) -> None:
    """Call *write* until all of *data* is taken (raw files may write only part).

    A *write* that returns None (as many ad-hoc sinks do) is taken to accept it all.
    """
    while data.nbytes:
        written = write(data)
        if not isinstance(written, int) or written >= data.nbytes:
            return
        if written <= 0:
            raise OSError(f"write() accepted {written} of {data.nbytes} bytes")
        data = data[written:]


class _StreamOutput:
    """Writes to a caller's binary file object; what is written cannot be taken back."""

    def __init__(self, target: object) -> None:
        write = getattr(target, "write", None)
        if not callable(write) or isinstance(target, io.TextIOBase):
            raise TypeError(
                "ArchiveWriter expected a path or a writable binary file object, "
                f"got {type(target).__name__}"
            )
        self._write: Callable[[memoryview], object] = write
        self._target = target

    def write(self, data: memoryview) -> None:
        """Append *data* to the file object."""
        _write_all(self._write, data)

    def finish(self) -> None:
        """Flush the file object if it can be flushed; the caller owns and closes it."""
        flush = getattr(self._target, "flush", None)
        if callable(flush):
            flush()

    def discard(self) -> None:
        """Forget the file object (bytes already written stay there)."""


def _discard_temp(file: BinaryIO, path: str) -> None:
    """Close and delete a temporary file, ignoring errors (used on abort and at GC)."""
    with contextlib.suppress(OSError):
        file.close()
    with contextlib.suppress(OSError):
        os.unlink(path)


def _default_file_mode() -> int:
    """Return the permissions a newly created file would get under the current umask."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


class _TempFileOutput:
    """Writes to a temporary file beside *target*, renamed onto *target* at the end."""

    def __init__(self, target: str) -> None:
        directory, base = os.path.split(os.path.abspath(target))
        with translated_errors(target, "cannot create a temporary file"):
            fd, self._temp = tempfile.mkstemp(
                prefix=f".{base}.", suffix=".tmp", dir=directory
            )
        self._file: BinaryIO = os.fdopen(fd, "wb")
        self._target = target
        self._cleanup = weakref.finalize(self, _discard_temp, self._file, self._temp)

    def write(self, data: memoryview) -> None:
        """Append *data* to the temporary file."""
        self._file.write(data)

    def finish(self) -> None:
        """Close the temporary file and move it onto the target in one rename."""
        self._file.close()
        os.chmod(self._temp, _default_file_mode())
        os.replace(self._temp, self._target)
        self._cleanup.detach()

    def discard(self) -> None:
        """Close and remove the temporary file; the target is left untouched."""
        self._cleanup()


class ArchiveWriter:
    """Write records into a new package archive, laid out as torch.package lays them.

    Records go under one folder: the target's base name without its last extension,
    or ``archive`` for a file object. A path target is written to a temporary file in
    the same directory and renamed onto the path by :meth:`close`, so a failed or
    aborted write leaves nothing behind. Not thread-safe.

    Example:
        >>> from hermetic._archive_reader import ArchiveReader
        >>> buffer = io.BytesIO()
        >>> with ArchiveWriter(buffer) as writer:
        ...     writer.write_record("res/hello.txt", b"hi")
        >>> ArchiveReader(io.BytesIO(buffer.getvalue())).read("res/hello.txt")
        b'hi'
    """

    name: str
    archive_name: str

    def __init__(
        self,
        target: str | os.PathLike[str] | BinaryIO,
        *,
        manifest: bool = False,
        progress: Progress | None = None,
    ) -> None:
        self._entries: dict[str, Entry] = {}
        self._progress = progress  # told of every byte written (hermetic.progress)
        # With a manifest, each record's SHA-256 is taken while it is written.
        self._manifest = manifest
        self._digests: dict[str, str] = {}
        self._batch: DigestBatch | None = None  # see deferred_digests()
        self._offset = 0
        self._closed = False
        self._broken = False
        self._output: _StreamOutput | _TempFileOutput
        if isinstance(target, (str, os.PathLike)):
            self.name = as_str_path(target, "ArchiveWriter")
            self.archive_name = self._archive_name_for(self.name)
            self._check_target(self.name)
            self._output = _TempFileOutput(self.name)
        else:
            self._output = _StreamOutput(target)
            self.name = BINARY_NAME
            self.archive_name = BUFFER_ARCHIVE_NAME
        if progress is not None:
            progress.start(f"writing {self.name}", None)

    @staticmethod
    def _archive_name_for(path: str) -> str:
        """Return the archive folder for *path*, refusing names torch would mangle."""
        archive_name = archive_name_for_path(path)
        if archive_name in ("", ".", ".."):
            raise ArchiveFormatError(
                f"cannot derive an archive folder name from {path!r} "
                "(the base name without its extension is empty, '.' or '..')",
                archive=path,
            )
        return archive_name

    @staticmethod
    def _check_target(path: str) -> None:
        """Raise ArchiveError unless a file can be created at *path*."""
        if os.path.isdir(path):
            raise ArchiveError("the target is a directory", archive=path)
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise ArchiveError(f"directory {parent!r} does not exist", archive=path)

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def has_record(self, name: str) -> bool:
        """Return whether a record called *name* has been written."""
        return name in self._entries

    def record_names(self) -> list[str]:
        """Return the names of the written records, in write order."""
        return list(self._entries)

    def write_record(self, name: str, data: bytes | bytearray | memoryview) -> None:
        """Write *data* as record *name* (relative to the archive folder)."""
        view = _byte_view(data)
        self._write_entry(name, (view,), view.nbytes)

    @contextlib.contextmanager
    def deferred_digests(self) -> Iterator[None]:
        """Let large records written in the block finish their SHA-256 later.

        Hashing one record then overlaps writing the next. The caller must leave the
        buffers it passes unchanged until the block ends; every digest is done then.
        """
        if not self._manifest or self._batch is not None:
            yield
            return
        self._batch = DigestBatch(self._digests)
        try:
            yield
        finally:
            batch, self._batch = self._batch, None
            batch.finish()

    def write_record_stream(
        self, name: str, chunks: Iterable[bytes | bytearray | memoryview], size: int
    ) -> None:
        """Write record *name* from *chunks* totalling exactly *size* bytes.

        The chunks are written as they come, never joined. If they add up to anything
        but *size* an ArchiveError is raised and the writer can only be aborted.
        """
        size = operator.index(size)
        if size < 0:
            raise ArchiveFormatError(
                f"size must be a non-negative int, got {size!r}",
                archive=self.name,
                record=name,
            )
        self._write_entry(name, (_byte_view(chunk) for chunk in chunks), size)

    def _write_entry(self, name: str, views: Iterable[memoryview], size: int) -> None:
        """Validate *name*, then write its header, data and descriptor."""
        self._check_writable()
        entry = self._new_entry(name, size)
        try:
            self._entries[name] = self._write_header_and_data(entry, views, name)
        except BaseException:
            self._broken = True
            raise

    def _check_writable(self) -> None:
        """Raise ArchiveError if the writer is closed or left broken by a failure."""
        if self._closed:
            raise ArchiveError("archive is closed", archive=self.name)
        if self._broken:
            raise ArchiveError(
                "an earlier write failed, so the archive is incomplete; abort it",
                archive=self.name,
            )

    def _new_entry(self, name: str, size: int) -> Entry:
        """Return the entry for a new record, refusing bad and duplicate names."""
        if not isinstance(name, str):
            raise TypeError(f"record name must be str, got {type(name).__name__}")
        check_record_name(name, self.name)
        if name in self._entries:
            raise ArchiveFormatError(
                "a record with this name was already written",
                archive=self.name,
                record=name,
            )
        with translated_errors(self.name, "record name is not encodable", record=name):
            encoded = f"{self.archive_name}/{name}".encode()
        if len(encoded) > 0xFFFF:
            raise ArchiveFormatError(
                "record name is longer than 65535 bytes", archive=self.name, record=name
            )
        flags = FLAGS if size else FLAGS_EMPTY
        return Entry(encoded, self._offset, size, 0, flags)

    def _write_header_and_data(
        self, entry: Entry, views: Iterable[memoryview], name: str
    ) -> Entry:
        """Write *entry*'s local header, data and descriptor; return it with its CRC."""
        extra = local_extra(entry.offset, len(entry.encoded_name), entry.size)
        self._emit(memoryview(local_header(entry, extra)), name)
        total = 0
        sums = Checksums(
            sha256=self._manifest,
            background=entry.size >= BACKGROUND_SIZE,
            batch=self._batch,
        )
        try:
            for view in pieces_of(views):
                total += view.nbytes
                if total > entry.size:
                    raise self._size_error(name, entry.size, f"more than {entry.size}")
                sums.update(view)
                self._emit(view, name)
        finally:
            crc = sums.finish(name, self._digests)
        if total != entry.size:
            raise self._size_error(name, entry.size, str(total))
        entry = entry._replace(crc=crc)
        if entry.size:
            self._emit(memoryview(data_descriptor(entry)), name)
        return entry

    def _size_error(self, name: str, size: int, got: str) -> ArchiveError:
        """Return the error for a stream that did not deliver its declared size."""
        return ArchiveError(
            f"expected {size} bytes but the chunks held {got}",
            archive=self.name,
            record=name,
        )

    def _emit(self, data: memoryview, record: str | None = None) -> None:
        """Write *data* to the output and advance the offset."""
        with translated_errors(self.name, "cannot write to the archive", record=record):
            self._output.write(data)
        self._offset += data.nbytes
        if self._progress is not None:
            self._progress.advance(data.nbytes)

    def close(self) -> None:
        """Write the trailing records and the central directory, then publish the file.

        A second call does nothing. If anything fails the archive is aborted.
        """
        if self._closed:
            return
        try:
            self._check_writable()
            self._write_trailer_records()
            self._write_manifest()
            self._write_central_directory()
            with translated_errors(self.name, "cannot finish the archive"):
                self._output.finish()
        except BaseException:
            self.abort()
            raise
        self._closed = True
        if self._progress is not None:
            self._progress.stop()

    def _write_trailer_records(self) -> None:
        """Write the version, byte order and serialization id records if missing."""
        if VERSION_RECORD not in self._entries:
            self.write_record(VERSION_RECORD, f"{FORMAT_VERSION}\n".encode("ascii"))
        if BYTEORDER_RECORD not in self._entries:
            self.write_record(BYTEORDER_RECORD, sys.byteorder.encode("ascii"))
        if SERIALIZATION_ID_RECORD not in self._entries:
            ident = serialization_id(self._entries.values())
            self.write_record(SERIALIZATION_ID_RECORD, ident)

    def _write_manifest(self) -> None:
        """Write the manifest of every record so far, if this writer keeps one.

        It comes after the trailer records, so it covers them too; only the manifest
        itself and a signature added later are not listed.
        """
        if not self._manifest or MANIFEST_RECORD in self._entries:
            return
        records = [
            (name, Digest(entry.size, self._digests[name]))
            for name, entry in self._entries.items()
            if name not in EXEMPT_RECORDS
        ]
        self.write_record(MANIFEST_RECORD, encode_manifest(records))

    def _write_central_directory(self) -> None:
        """Write the central directory and the end records after the last record."""
        cd_offset = self._offset
        for entry in self._entries.values():
            self._emit(memoryview(central_entry(entry)))
        cd_size = self._offset - cd_offset
        count = len(self._entries)
        self._emit(memoryview(end_records(count, cd_offset, cd_size)))

    def abort(self) -> None:
        """Discard the archive, leaving nothing at a path target; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._output.discard()
        if self._progress is not None:
            self._progress.stop()
