"""Write and read the ZIP container of a package, byte for byte as torch.package does.

The writer lays records out as torch's ``PyTorchFileWriter`` does: stored, 64-byte
aligned through an ``FB`` padding extra, sizes in data descriptors, ZIP64 end records.
The reader also takes plain ``zipfile`` output (deflated members, directory entries) and
unzipped package directories.

This module knows nothing about pickles, modules or storages; it does not compress on
write, never extracts to disk, and reads no multi-disk, encrypted, bzip2 or lzma ZIPs.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import mmap
import operator
import os
import re
import struct
import sys
import tempfile
import threading
import weakref
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO

from ._checksums import BACKGROUND_SIZE, Checksums, DigestBatch, pieces_of
from ._format import (
    BUFFER_ARCHIVE_NAME,
    BYTEORDER_RECORD,
    FORMAT_VERSION,
    LEGACY_VERSION_RECORD,
    MANIFEST_RECORD,
    MAX_READ_VERSION,
    MIN_READ_VERSION,
    SERIALIZATION_ID_RECORD,
    VERSION_RECORD,
    archive_name_for_path,
)
from ._manifest import EXEMPT_RECORDS, Digest, encode_manifest
from ._zip_layout import (
    FLAGS,
    FLAGS_EMPTY,
    LOCAL,
    LOCAL_SIG,
    Entry,
    central_entry,
    data_descriptor,
    end_records,
    local_extra,
    local_header,
    serialization_id,
)
from .errors import ArchiveError, ArchiveFormatError, HermeticError

if TYPE_CHECKING:
    from .progress import Progress

__all__ = ["ArchiveReader", "ArchiveWriter"]

_BINARY_NAME = "<binary>"
_FLAG_ENCRYPTED = 0x0001
_SUPPORTED_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_MAX_VERSION_RECORD_SIZE = 32
#: Deflate cannot expand data much more than 1032 to 1; a record that declares more
#: lies about its size (a ZIP bomb's header, or corruption).
_MAX_DEFLATE_RATIO = 1032
_DEFLATE_SLACK = 1024
#: os.pread may return less than asked for; this keeps each call well below 2 GiB.
_PREAD_CHUNK = 1 << 30
_VERSION_TEXT = re.compile(rb"\s*[0-9]+\s*")

#: Everything the stdlib may raise on a malformed archive or a failing disk.
_FOREIGN_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    struct.error,
    OSError,
    EOFError,
    UnicodeError,
    KeyError,
    IndexError,
    zlib.error,
    ValueError,
    OverflowError,
    NotImplementedError,
)


@contextlib.contextmanager
def _translated(archive: str, action: str, record: str | None = None) -> Iterator[None]:
    """Re-raise any stdlib error from the block as an ArchiveError naming *archive*."""
    try:
        yield
    except HermeticError:
        raise
    except _FOREIGN_ERRORS as exc:
        detail = str(exc) or type(exc).__name__
        raise ArchiveError(
            f"{action}: {detail}", archive=archive, record=record
        ) from exc


def _record_name_problem(name: str) -> str | None:
    """Say why *name* cannot be a record name relative to the archive folder, or None.

    >>> _record_name_problem("res/a.txt") is None
    True
    >>> _record_name_problem("a//b")
    'it has an empty path segment'
    >>> _record_name_problem("../evil")
    "it has a '.' or '..' segment"
    """
    if not name:
        return "it is empty"
    if name.startswith("/"):
        return "it is absolute"
    if "\\" in name:
        return "it contains a backslash"
    if "\0" in name:
        return "it contains a NUL character"
    segments = name.split("/")
    if "" in segments:
        return "it has an empty path segment"
    if "." in segments or ".." in segments:
        return "it has a '.' or '..' segment"
    return None


def _check_record_name(name: str, archive: str) -> None:
    """Raise ArchiveFormatError unless *name* is a safe, addressable record name."""
    problem = _record_name_problem(name)
    if problem is not None:
        raise ArchiveFormatError(
            f"invalid record name: {problem}", archive=archive, record=name
        )


def _byte_view(data: bytes | bytearray | memoryview) -> memoryview:
    """Return a flat unsigned-byte view of *data*, copying only if it is scattered."""
    view = memoryview(data)
    if view.format == "B" and view.ndim == 1 and view.c_contiguous:
        return view
    if view.c_contiguous:
        return view.cast("B")
    return memoryview(view.tobytes())


def _fspath(path: str | os.PathLike[str], owner: str) -> str:
    """Return *path* as a str, refusing bytes paths with a TypeError."""
    name = os.fspath(path)
    if not isinstance(name, str):
        raise TypeError(f"{owner} expected a str path, got {type(name).__name__}")
    return name


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
        with _translated(target, "cannot create a temporary file"):
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
            self.name = _fspath(target, "ArchiveWriter")
            self.archive_name = self._archive_name_for(self.name)
            self._check_target(self.name)
            self._output = _TempFileOutput(self.name)
        else:
            self._output = _StreamOutput(target)
            self.name = _BINARY_NAME
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
        _check_record_name(name, self.name)
        if name in self._entries:
            raise ArchiveFormatError(
                "a record with this name was already written",
                archive=self.name,
                record=name,
            )
        with _translated(self.name, "record name is not encodable", record=name):
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
        with _translated(self.name, "cannot write to the archive", record=record):
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
            with _translated(self.name, "cannot finish the archive"):
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


def _archive_prefix(first: str, archive: str) -> str:
    """Return the archive folder named by the first central-directory entry *first*."""
    prefix, slash, _ = first.partition("/")
    if not slash:
        raise ArchiveFormatError(
            "entry is not in a subdirectory (torch.package puts every record under "
            "one top-level folder)",
            archive=archive,
            record=first,
        )
    if prefix in ("", ".", "..") or "\\" in prefix or "\0" in prefix:
        raise ArchiveFormatError(
            f"invalid archive folder {prefix!r}", archive=archive, record=first
        )
    return prefix


def _relative_name(info: zipfile.ZipInfo, prefix: str, archive: str) -> str | None:
    """Return *info*'s name inside the archive folder, or None for a directory entry."""
    full = info.orig_filename
    rest = full[len(prefix) + 1 :]
    if not full.startswith(prefix + "/"):
        raise ArchiveFormatError(
            f"entry is outside the archive folder {prefix!r}",
            archive=archive,
            record=full,
        )
    if full.endswith("/") and info.file_size == 0:
        directory = rest[:-1]
        if directory:
            _check_record_name(directory, archive)
        return None
    _check_record_name(rest, archive)
    return rest


def _check_entry(info: zipfile.ZipInfo, name: str, archive: str) -> None:
    """Refuse encrypted entries and compression methods torch cannot read either."""
    if info.flag_bits & _FLAG_ENCRYPTED:
        raise ArchiveFormatError(
            "encrypted records are not supported", archive=archive, record=name
        )
    if info.compress_type not in _SUPPORTED_METHODS:
        raise ArchiveFormatError(
            f"compression method {info.compress_type} is not supported "
            "(only stored and deflated records are)",
            archive=archive,
            record=name,
        )


def _index_entries(
    infos: list[zipfile.ZipInfo], archive: str
) -> tuple[str, dict[str, zipfile.ZipInfo]]:
    """Return the archive folder and the file entries by relative name, in order."""
    if not infos:
        raise ArchiveFormatError("the ZIP archive has no entries", archive=archive)
    prefix = _archive_prefix(infos[0].orig_filename, archive)
    index: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = _relative_name(info, prefix, archive)
        if name is None:
            continue
        if name in index:
            raise ArchiveFormatError(
                "duplicate record in the archive", archive=archive, record=name
            )
        _check_entry(info, name, archive)
        index[name] = info
    return prefix, index


def _check_layout(
    infos: list[zipfile.ZipInfo], central_offset: int, archive: str
) -> dict[int, int]:
    """Refuse entries that overlap, lie about their sizes, or follow foreign bytes.

    Checked from the central directory alone: each entry's local header, name and
    data must end before the next entry starts, and the last before the central
    directory, so no byte belongs to two records (the "quoted overlap" ZIP bomb).
    Returns where each entry's bytes must end, by local header offset.
    """
    ordered = sorted(infos, key=operator.attrgetter("header_offset"))
    position = 0
    previous = "the start of the file"
    for index, info in enumerate(ordered):
        name = info.orig_filename
        _check_sizes(info, archive)
        if index == 0 and info.header_offset > 0:
            raise ArchiveFormatError(
                f"{info.header_offset} bytes precede the first record (a file that is "
                "also something else, e.g. a pickle with a ZIP appended)",
                archive=archive,
            )
        if info.header_offset < position:
            raise ArchiveFormatError(
                f"the record overlaps {previous} (overlapping records are how "
                "ZIP bombs reuse data)",
                archive=archive,
                record=name,
            )
        encoding = "utf-8" if info.flag_bits & 0x800 else "cp437"
        name_size = len(name.encode(encoding, "surrogateescape"))
        position = info.header_offset + LOCAL.size + name_size + info.compress_size
        previous = f"record {name!r}"
    if position > central_offset:
        raise ArchiveFormatError(
            f"{previous} runs into the central directory", archive=archive
        )
    starts = [info.header_offset for info in ordered] + [central_offset]
    return dict(itertools.pairwise(starts))


def _check_sizes(info: zipfile.ZipInfo, archive: str) -> None:
    """Refuse an entry whose declared sizes cannot both be true."""
    stored = info.compress_type == zipfile.ZIP_STORED
    if stored and info.compress_size != info.file_size:
        raise ArchiveFormatError(
            f"stored record declares {info.file_size} bytes but holds "
            f"{info.compress_size}",
            archive=archive,
            record=info.orig_filename,
        )
    limit = _MAX_DEFLATE_RATIO * info.compress_size + _DEFLATE_SLACK
    if info.compress_type == zipfile.ZIP_DEFLATED and info.file_size > limit:
        raise ArchiveFormatError(
            f"record declares {info.file_size} bytes from {info.compress_size} "
            "compressed bytes, more than deflate can produce (a ZIP bomb's header?)",
            archive=archive,
            record=info.orig_filename,
        )


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
    with _translated(archive, "cannot list the package directory"):
        for directory, _, files in os.walk(root, onerror=_raise):
            relative = os.path.relpath(directory, root)
            parts = [] if relative == os.curdir else relative.split(os.sep)
            names.extend(
                "/".join([*parts, file])
                for file in files
                if os.path.isfile(os.path.join(directory, file))
            )
    for name in names:
        _check_record_name(name, archive)
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
            self.name = _fspath(source, "ArchiveReader")
            if os.path.isdir(self.name):
                self._open_directory(self.name)
            else:
                self._open_zip_path(self.name)
            return
        self.name = _BINARY_NAME
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
        with _translated(path, "cannot open the archive"):
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
        with _translated(self.name, "not a readable ZIP archive"):
            self._zip = zipfile.ZipFile(file)
            infos = self._zip.infolist()
        self.archive_name, self._infos = _index_entries(infos, self.name)
        self._limits = _check_layout(infos, self._zip.start_dir, self.name)
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
                with _translated(self.name, "cannot map the archive"):
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
            with _translated(self.name, "cannot stat record", record=name):
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
                _translated(self.name, "cannot read record", record=name),
                open(path, "rb") as file,
            ):
                return file.read(size)
        info = self._info(name)
        span = self.record_span(name)
        if span is not None:
            return self._pread(span[0], min(size, span[1]), name)
        with (
            self._lock,
            _translated(self.name, "cannot read record", record=name),
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
            with _translated(self.name, "cannot read record", record=name):
                return _read_file(path), None
        info = self._info(name)
        span = self._span(name)
        if span is None:
            with self._lock, _translated(self.name, "cannot read record", record=name):
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
        with _translated(self.name, "bad local file header", record=name):
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
        with _translated(self.name, "cannot read record", record=name):
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
