"""Read the ZIP container of a package, as torch.package or ``zipfile`` writes it.

The reader takes torch.package's layout, plain ``zipfile`` output (deflated members,
directory entries) and unzipped package directories. :mod:`._central_directory`
checks every entry of a ZIP before any record is read.

This module knows nothing about pickles, modules or storages; it never extracts to
disk, reads no multi-disk, encrypted, bzip2 or lzma ZIPs, and writes nothing
(:mod:`._archive_writer` does).
"""

from __future__ import annotations

import contextlib
import io
import mmap
import os
import re
import threading
import weakref
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import BinaryIO

from ._archive import BINARY_NAME, as_str_path, check_record_name, translated_errors
from ._central_directory import check_layout, index_entries
from ._format import (
    LEGACY_VERSION_RECORD,
    MAX_READ_VERSION,
    MIN_READ_VERSION,
    VERSION_RECORD,
)
from ._zip_layout import LOCAL, LOCAL_SIG
from .errors import ArchiveError, ArchiveFormatError

__all__ = ["ArchiveReader"]

_MAX_VERSION_RECORD_SIZE = 32
#: os.pread may return less than asked for; this keeps each call well below 2 GiB.
_PREAD_CHUNK = 1 << 30
_VERSION_TEXT = re.compile(rb"\s*[0-9]+\s*")


def _parse_version(raw: bytes, archive: str, record: str) -> int:
    """Return the format version written in *raw*, refusing what torch refuses.

    >>> _parse_version(b"6\\n", "p.pt", ".data/version")
    6
    """
    supported = f"supported versions are {MIN_READ_VERSION} to {MAX_READ_VERSION}"
    if not _VERSION_TEXT.fullmatch(raw):
        text = raw.decode("ascii", "backslashreplace").strip()
        raise ArchiveFormatError(
            f"version {text!r} is not an integer; {supported}",
            archive=archive,
            record=record,
        )
    version = int(raw)
    if not MIN_READ_VERSION <= version <= MAX_READ_VERSION:
        raise ArchiveFormatError(
            f"version {version} is not supported; {supported}",
            archive=archive,
            record=record,
        )
    return version


def _scan_directory(root: str, archive: str) -> list[str]:
    """Return every file below *root* as a sorted list of '/'-separated record names."""
    names: list[str] = []
    with translated_errors(archive, "cannot list the package directory"):
        for directory, _, files in os.walk(root, onerror=_raise):
            relative = os.path.relpath(directory, root)
            parts = [] if relative == os.curdir else relative.split(os.sep)
            names.extend(
                "/".join([*parts, file])
                for file in files
                if os.path.isfile(os.path.join(directory, file))
            )
    for name in names:
        check_record_name(name, archive)
    return sorted(names)


def _read_file(path: str) -> bytes:
    """Return the contents of the file at *path*."""
    with open(path, "rb") as file:
        return file.read()


def _raise(exc: OSError) -> None:
    """Make os.walk raise instead of skipping unreadable directories."""
    raise exc


class ArchiveReader:
    """Read the records of a package archive: a ZIP file, a file object or a directory.

    Lookups take names relative to the archive folder (the text before the first "/"
    of the first central-directory entry). Reads are thread-safe.

    Example:
        >>> from hermetic._archive_writer import ArchiveWriter
        >>> buffer = io.BytesIO()
        >>> with ArchiveWriter(buffer) as writer:
        ...     writer.write_record("a.txt", b"A")
        >>> reader = ArchiveReader(io.BytesIO(buffer.getvalue()))
        >>> reader.archive_name, reader.version, reader.record_names()[0]
        ('archive', 6, 'a.txt')
    """

    name: str
    archive_name: str
    path: str | None
    is_directory: bool
    version: int

    def __init__(self, source: str | os.PathLike[str] | BinaryIO) -> None:
        self._lock = threading.Lock()
        self._closed = False
        self._zip: zipfile.ZipFile | None = None
        self._file: BinaryIO | None = None
        self._own_file = False
        self._mapping: mmap.mmap | None = None
        self._checked: set[str] = set()  # records whose span check_record passed
        self._map_lock = threading.Lock()
        self._root = ""
        self._size = 0
        self._infos: dict[str, zipfile.ZipInfo] = {}
        self._limits: dict[int, int] = {}
        self._names: list[str] = []
        self._name_set: frozenset[str] = frozenset()
        self.path = None
        self.is_directory = False
        try:
            self._open(source)
            self.version = self._read_version()
        except BaseException:
            self.close()
            raise

    def _open(self, source: str | os.PathLike[str] | BinaryIO) -> None:
        """Open *source* as a directory, a ZIP path or a ZIP file object."""
        if isinstance(source, (str, os.PathLike)):
            self.name = as_str_path(source, "ArchiveReader")
            if os.path.isdir(self.name):
                self._open_directory(self.name)
            else:
                self._open_zip_path(self.name)
            return
        self.name = BINARY_NAME
        binary = not isinstance(source, io.TextIOBase)
        if not (binary and callable(getattr(source, "read", None))) or not callable(
            getattr(source, "seek", None)
        ):
            raise TypeError(
                "ArchiveReader expected a path or a seekable binary file object, "
                f"got {type(source).__name__}"
            )
        self._open_zip(source)

    def _open_directory(self, path: str) -> None:
        """Index an unzipped package whose folder is *path*."""
        self._root = os.path.abspath(path)
        self.is_directory = True
        self.archive_name = os.path.basename(os.path.normpath(self._root))
        self._names = _scan_directory(self._root, self.name)
        self._name_set = frozenset(self._names)

    def _open_zip_path(self, path: str) -> None:
        """Open the ZIP file at *path*, keeping its descriptor for positional reads."""
        with translated_errors(path, "cannot open the archive"):
            self._file = open(path, "rb")  # noqa: SIM115 (kept open until close())
            self._own_file = True
            # Readers are often dropped without close() (torch's have none): release
            # the descriptor quietly then, with no ResourceWarning.
            weakref.finalize(self, _close_quietly, self._file)
            self._size = os.fstat(self._file.fileno()).st_size
        self.path = os.path.abspath(path)
        self._open_zip(self._file)

    def _open_zip(self, file: BinaryIO) -> None:
        """Parse the central directory of the ZIP in *file* and check every entry."""
        with translated_errors(self.name, "not a readable ZIP archive"):
            self._zip = zipfile.ZipFile(file)
            infos = self._zip.infolist()
        self.archive_name, self._infos = index_entries(infos, self.name)
        self._limits = check_layout(infos, self._zip.start_dir, self.name)
        self._names = list(self._infos)

    def _read_version(self) -> int:
        """Return the format version from ``.data/version`` or top-level ``version``."""
        for record in (VERSION_RECORD, LEGACY_VERSION_RECORD):
            if self.has_record(record):
                if self.record_size(record) > _MAX_VERSION_RECORD_SIZE:
                    raise ArchiveFormatError(
                        "version record is too long to hold a version number",
                        archive=self.name,
                        record=record,
                    )
                return _parse_version(self.read(record), self.name, record)
        raise ArchiveFormatError(
            f"no {VERSION_RECORD!r} or top-level {LEGACY_VERSION_RECORD!r} record, so "
            "this is not a torch.package archive",
            archive=self.name,
        )

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the archive; a second call does nothing."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            if self._zip is not None:
                self._zip.close()
        if self._own_file and self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()

    def mapping(self) -> mmap.mmap | None:
        """Return a copy-on-write memory map of the open archive file, made once.

        It maps the file this reader opened (not whatever is at its path now), so
        record spans stay valid even if the path is later replaced. Writes to the
        map stay private to the process. None for file objects and folders.
        """
        if self._file is None or not self._own_file:
            return None
        with self._map_lock:
            if self._mapping is None:
                with translated_errors(self.name, "cannot map the archive"):
                    self._mapping = mmap.mmap(
                        self._file.fileno(), 0, access=mmap.ACCESS_COPY
                    )
            return self._mapping

    def record_names(self) -> list[str]:
        """Return the record names in central-directory order (sorted for a folder)."""
        return list(self._names)

    def has_record(self, name: str) -> bool:
        """Return whether the archive holds a record called *name*."""
        if self.is_directory:
            return name in self._name_set
        return name in self._infos

    def record_size(self, name: str) -> int:
        """Return the uncompressed size of record *name* in bytes."""
        if self.is_directory:
            with translated_errors(self.name, "cannot stat record", record=name):
                return os.stat(self._directory_path(name)).st_size
        return self._info(name).file_size

    #: Called with a record's name and its bytes (in pieces) before :meth:`read` or
    #: :meth:`record_span` hands them out; it raises to refuse them. Set by the
    #: importer when the archive has a manifest (see :mod:`hermetic._integrity`).
    check_record: Callable[[str, Iterable[bytes | memoryview]], None] | None = None
    #: Whether :meth:`record_span` checks the bytes it points at too. Hashing a
    #: mapped storage reads every byte of it, which zero-copy loading exists to avoid,
    #: so the importer turns this on only for ``verify="all"``.
    check_spans: bool = True

    def record_info(self, name: str) -> zipfile.ZipInfo | None:
        """Return the ZIP entry of record *name* (None in an unzipped package)."""
        self._check_open()
        if self.is_directory:
            self._directory_path(name)
            return None
        return self._info(name)

    def read(self, name: str, *, max_size: int | None = None) -> bytes:
        """Return the bytes of record *name*, checking its CRC-32 for ZIP archives.

        With *max_size*, a larger record raises ArchiveFormatError unread.
        """
        self._check_open()
        if max_size is not None and self.record_size(name) > max_size:
            raise ArchiveFormatError(
                f"record is {self.record_size(name)} bytes, more than the {max_size} "
                "such a record may have",
                archive=self.name,
                record=name,
            )
        data, crc = self._read_unchecked(name)
        if self.check_record is not None:
            # Before the CRC: a manifest says which record changed, and how.
            self.check_record(name, (data,))
        if crc is not None and zlib.crc32(data) != crc:
            raise ArchiveError(
                "CRC-32 mismatch: the record is corrupt", archive=self.name, record=name
            )
        return data

    def read_prefix(self, name: str, size: int) -> bytes:
        """Return at most the first *size* bytes of record *name* (no CRC check)."""
        self._check_open()
        if self.is_directory:
            path = self._directory_path(name)
            with (
                translated_errors(self.name, "cannot read record", record=name),
                open(path, "rb") as file,
            ):
                return file.read(size)
        info = self._info(name)
        span = self.record_span(name)
        if span is not None:
            return self._pread(span[0], min(size, span[1]), name)
        with (
            self._lock,
            translated_errors(self.name, "cannot read record", record=name),
            self._opened_zip().open(info) as stream,
        ):
            return stream.read(size)

    def record_span(self, name: str) -> tuple[int, int] | None:
        """Return (offset, size) of record *name*'s bytes in :attr:`path` if stored.

        Only stored records of a ZIP on disk have a span; others return None. With
        :attr:`check_record` set, the bytes are checked the first time, since the
        caller will map them rather than read them.
        """
        span = self._span(name)
        check = self.check_record if self.check_spans else None
        if span is not None and check is not None and name not in self._checked:
            check(name, self._pieces(*span, name))
            self._checked.add(name)
        return span

    def _read_unchecked(self, name: str) -> tuple[bytes, int | None]:
        """Return record *name*'s bytes and the CRC-32 they should have (None: done).

        Only bytes read straight from the file still need their CRC compared.
        """
        if self.is_directory:
            path = self._directory_path(name)
            with translated_errors(self.name, "cannot read record", record=name):
                return _read_file(path), None
        info = self._info(name)
        span = self._span(name)
        if span is None:
            with (
                self._lock,
                translated_errors(self.name, "cannot read record", record=name),
            ):
                return self._opened_zip().read(info), None
        return self._pread(*span, name), info.CRC

    def record_pieces(self, name: str) -> Iterator[bytes | memoryview]:
        """Yield the bytes of record *name* in pieces of at most 16 MiB, unchecked.

        Neither the CRC nor :attr:`check_record` is consulted: this is for callers
        that hash the bytes themselves. Stored records of a ZIP on disk come
        straight from the file's map, so a large record is never copied whole.
        """
        span = self._span(name)
        if span is None:
            yield self._read_unchecked(name)[0]
            return
        yield from self._pieces(*span, name)

    def _pieces(self, offset: int, size: int, name: str) -> Iterator[memoryview]:
        """Yield the bytes at *offset* in pieces, from the map when there is one."""
        mapped = self.mapping()
        step = 16 << 20
        for start in range(offset, offset + size, step):
            length = min(step, offset + size - start)
            if mapped is None:
                yield memoryview(self._pread(start, length, name))
                continue
            piece = memoryview(mapped)[start : start + length]
            try:
                yield piece
            finally:
                piece.release()  # an exported view would keep the map from closing

    def _span(self, name: str) -> tuple[int, int] | None:
        """Return the span of record *name*, as :meth:`record_span` does, unchecked."""
        self._check_open()
        if self.is_directory:
            self._directory_path(name)
            return None
        info = self._info(name)
        if self.path is None or info.compress_type != zipfile.ZIP_STORED:
            return None
        header = self._pread(info.header_offset, LOCAL.size, name)
        with translated_errors(self.name, "bad local file header", record=name):
            fields = LOCAL.unpack(header)
        if fields[0] != LOCAL_SIG:
            raise ArchiveError(
                "local file header has a bad signature", archive=self.name, record=name
            )
        start = info.header_offset + LOCAL.size + fields[9] + fields[10]
        if start + info.file_size > self._size:
            raise ArchiveError(
                "record data runs past the end of the file",
                archive=self.name,
                record=name,
            )
        if start + info.file_size > self._limits.get(info.header_offset, self._size):
            raise ArchiveFormatError(
                "record data runs into the next record (its local header lies)",
                archive=self.name,
                record=name,
            )
        return start, info.file_size

    def _check_open(self) -> None:
        """Raise ArchiveError once the reader is closed."""
        if self._closed:
            raise ArchiveError("archive is closed", archive=self.name)

    def _info(self, name: str) -> zipfile.ZipInfo:
        """Return the entry of record *name*, or raise an ArchiveError naming it."""
        info = self._infos.get(name)
        if info is None:
            raise ArchiveError(f"no record {name!r}", archive=self.name, record=name)
        return info

    def _directory_path(self, name: str) -> str:
        """Return the file path of record *name* in an unzipped package."""
        if not self.has_record(name):
            raise ArchiveError(f"no record {name!r}", archive=self.name, record=name)
        return os.path.join(self._root, *name.split("/"))

    def _opened_zip(self) -> zipfile.ZipFile:
        """Return the open ZipFile (raising if the reader is closed)."""
        if self._zip is None or self._closed:
            raise ArchiveError("archive is closed", archive=self.name)
        return self._zip

    def _opened_file(self) -> BinaryIO:
        """Return the open file of a ZIP on disk (raising if the reader is closed)."""
        if self._file is None or self._closed:
            raise ArchiveError("archive is closed", archive=self.name)
        return self._file

    def _pread(self, offset: int, size: int, name: str) -> bytes:
        """Return exactly *size* bytes at *offset* of the ZIP file without seeking."""
        pieces: list[bytes] = []
        with translated_errors(self.name, "cannot read record", record=name):
            while size > 0:
                piece = self._pread_once(offset, min(size, _PREAD_CHUNK))
                if not piece:
                    raise ArchiveError(
                        "record is truncated", archive=self.name, record=name
                    )
                pieces.append(piece)
                offset += len(piece)
                size -= len(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def _pread_once(self, offset: int, size: int) -> bytes:
        """Read up to *size* bytes at *offset* with os.pread (or a locked seek)."""
        file = self._opened_file()
        if hasattr(os, "pread"):
            return os.pread(file.fileno(), size, offset)
        with self._lock:
            file.seek(offset)
            return file.read(size)


def _close_quietly(file: BinaryIO) -> None:
    """Close *file*, ignoring errors (a finalizer must not raise)."""
    with contextlib.suppress(OSError):
        file.close()
