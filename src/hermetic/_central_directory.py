"""Check the central directory of a package ZIP before any record of it is read.

Every entry must lie under one archive folder with a safe record name, be stored or
deflated and unencrypted, declare sizes that can be true, and share no byte with
another entry (the "quoted overlap" ZIP bomb).

This module reads no record bytes and opens no files: it judges the ``ZipInfo`` list
that :mod:`._archive_reader` got from ``zipfile``.
"""

from __future__ import annotations

import itertools
import operator
import zipfile

from ._archive import check_record_name
from ._zip_layout import LOCAL
from .errors import ArchiveFormatError

__all__ = ["check_layout", "index_entries"]

_FLAG_ENCRYPTED = 0x0001
_SUPPORTED_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
#: Deflate cannot expand data much more than 1032 to 1; a record that declares more
#: lies about its size (a ZIP bomb's header, or corruption).
_MAX_DEFLATE_RATIO = 1032
_DEFLATE_SLACK = 1024


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
            check_record_name(directory, archive)
        return None
    check_record_name(rest, archive)
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


def index_entries(
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


def check_layout(
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
