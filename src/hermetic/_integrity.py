"""Check an archive's records against its manifest: as they are read, or all at once.

A :class:`PackageImporter` checks lazily. When it opens an archive with a manifest it
compares record names and sizes with the manifest (no hashing), then hashes each record
the first time it is read or mapped, before anything parses it; a 1 GiB archive of
which one pickle is loaded costs one pickle's hash. :func:`verify_archive` hashes every
record up front.

It does not: check ZIP metadata outside the records (the folder name, entry order,
timestamps, extra fields: none of them changes what loads); notice a file changed on
disk after a record was checked (storages are mapped once, then used); or say who wrote
the archive (a manifest is rewritten as easily as a record: see :mod:`._signing`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from typing import Literal

from ._archive_reader import ArchiveReader
from ._format import LEGACY_VERSION_RECORD, MANIFEST_RECORD, VERSION_RECORD
from ._manifest import EXEMPT_RECORDS, MAX_MANIFEST_SIZE, Digest, decode_manifest
from .errors import IntegrityError

__all__ = [
    "Integrity",
    "RecordChecker",
    "attach_checker",
    "check_every_record",
    "read_manifest",
    "verify_archive",
]

#: ``"checked"``: every record is checked against the manifest when first read.
#: ``"unverified"``: the archive has no manifest (torch wrote it), or checks are off.
Integrity = Literal["checked", "unverified"]


class RecordChecker:
    """Compare records' bytes with their manifest digests; raise IntegrityError."""

    def __init__(self, archive: str, digests: Mapping[str, Digest]) -> None:
        self._archive = archive
        self._digests = digests
        #: Record name → hex SHA-256 of every record that passed the check.
        self.checked: dict[str, str] = {}

    def __call__(self, name: str, pieces: Iterable[bytes | memoryview]) -> None:
        expected = self._digests.get(name)
        if expected is None:
            if name in EXEMPT_RECORDS:
                return
            raise IntegrityError(
                "the record is not in the manifest: it was added after the archive "
                "was written",
                archive=self._archive,
                record=name,
            )
        digest, size = hashlib.sha256(), 0
        for piece in pieces:
            digest.update(piece)
            size += len(piece)
        if size != expected.size or digest.hexdigest() != expected.sha256:
            raise IntegrityError(
                "the record's SHA-256 differs from the manifest's: it changed after "
                "the archive was written",
                archive=self._archive,
                record=name,
            )
        self.checked[name] = expected.sha256


def read_manifest(reader: ArchiveReader) -> tuple[bytes, dict[str, Digest]] | None:
    """Return the manifest's bytes and digests, or None when there is none."""
    if not reader.has_record(MANIFEST_RECORD):
        return None
    size = reader.record_size(MANIFEST_RECORD)
    if size > MAX_MANIFEST_SIZE:
        raise IntegrityError(
            f"the manifest is {size} bytes, more than the {MAX_MANIFEST_SIZE} "
            "this reader accepts",
            archive=reader.name,
            record=MANIFEST_RECORD,
        )
    data = reader.read(MANIFEST_RECORD)
    return data, decode_manifest(data, archive=reader.name)


def _check_layout(reader: ArchiveReader, digests: Mapping[str, Digest]) -> None:
    """Compare record names and sizes with the manifest, without hashing."""
    for name in reader.record_names():
        if name not in digests and name not in EXEMPT_RECORDS:
            raise IntegrityError(
                "the record is not in the manifest: it was added after the archive "
                "was written",
                archive=reader.name,
                record=name,
            )
    for name, expected in digests.items():
        if not reader.has_record(name):
            raise IntegrityError(
                "the manifest lists this record but the archive lacks it",
                archive=reader.name,
                record=name,
            )
        size = reader.record_size(name)
        if size != expected.size:
            raise IntegrityError(
                f"the record holds {size} bytes but the manifest says "
                f"{expected.size}: it changed after the archive was written",
                archive=reader.name,
                record=name,
            )


def attach_checker(reader: ArchiveReader, *, verify: bool) -> Integrity:
    """Make *reader* check every record it hands out against the manifest.

    The version record, which the reader read while opening, is checked now.
    """
    if not verify:
        return "unverified"
    found = read_manifest(reader)
    if found is None:
        return "unverified"
    _, digests = found
    _check_layout(reader, digests)
    checker = RecordChecker(reader.name, digests)
    for name in (VERSION_RECORD, LEGACY_VERSION_RECORD):
        if reader.has_record(name):
            checker(name, reader.record_pieces(name))
    reader.check_record = checker
    return "checked"


def check_every_record(reader: ArchiveReader, digests: Mapping[str, Digest]) -> None:
    """Hash every record of *reader* and compare it with *digests*."""
    _check_layout(reader, digests)
    checker = RecordChecker(reader.name, digests)
    for name in reader.record_names():
        if name not in EXEMPT_RECORDS:
            checker(name, reader.record_pieces(name))


def verify_archive(path: str | os.PathLike[str]) -> None:
    """Check every record of the archive at *path* against its manifest.

    Raises:
        IntegrityError: a record was added, removed or changed (named in the error),
            the manifest is damaged, or the archive has no manifest (torch.package
            and hermetic before 0.2 write none), so nothing can be verified.

    Example:
        >>> hermetic.verify_archive("model.pt")  # doctest: +SKIP
    """
    with ArchiveReader(path) as reader:
        found = read_manifest(reader)
        if found is None:
            raise IntegrityError(
                "the archive has no manifest, so its records cannot be verified "
                "(torch.package writes none; re-export it with hermetic)",
                archive=reader.name,
                record=MANIFEST_RECORD,
            )
        check_every_record(reader, found[1])
