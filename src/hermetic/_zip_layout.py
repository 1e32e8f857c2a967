"""The byte layout of the ZIP records torch's ``PyTorchFileWriter`` writes.

Local headers whose ``FB`` padding extra puts every record's data on a 64-byte
boundary, data descriptors after the data, central-directory entries, ZIP64 extras
past 4 GiB and the ZIP64 end records: pure functions from a record's name, offset,
size and CRC to bytes. :mod:`._archive_writer` writes them; the reader checks them.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from typing import NamedTuple

from ._format import ALIGNMENT

__all__ = [
    "FLAGS",
    "FLAGS_EMPTY",
    "LOCAL",
    "LOCAL_SIG",
    "Entry",
    "central_entry",
    "data_descriptor",
    "end_records",
    "local_extra",
    "local_header",
    "serialization_id",
    "zip64_central",
    "zip64_local",
]

#: Sizes and offsets at or past this value move into a ZIP64 extra field.
_ZIP64_LIMIT = 0xFFFFFFFF
_MAX_ENTRIES_16 = 0xFFFF
_ZIP64_EXTRA_ID = 0x0001
_PAD_EXTRA_ID = b"FB"
_PAD_BYTE = b"Z"
#: Bit 3 (sizes in a data descriptor) and bit 11 (UTF-8 name); torch drops bit 3 and
#: the descriptor for empty records (miniz stores those without one).
FLAGS = 0x0808
FLAGS_EMPTY = 0x0800
_ZIP64_MADE_BY = 0x031E
_ZIP64_NEEDED = 45

LOCAL = struct.Struct("<4sHHHHHIIIHH")
LOCAL_SIG = b"PK\x03\x04"
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
_CENTRAL_SIG = b"PK\x01\x02"
_DESCRIPTOR_SIG = b"PK\x07\x08"
_DESCRIPTOR32 = struct.Struct("<4sIII")
_DESCRIPTOR64 = struct.Struct("<4sIQQ")
_EOCD64 = struct.Struct("<4sQHHIIQQQQ")
_EOCD64_LOCATOR = struct.Struct("<4sIQI")
_EOCD = struct.Struct("<4sHHHHIIH")


def zip64_local(offset: int, size: int) -> bytes:
    """Return the local ZIP64 extra block torch writes for a record, or b"" if none.

    As in miniz, the compressed size is still 0 when the local header is written.

    >>> zip64_local(0, 5)
    b''
    >>> zip64_local(0x1_0000_0000, 5).hex()
    '010008000000000001000000'
    >>> zip64_local(0, 0x1_0000_0000).hex()
    '0100100000000000010000000000000000000000'
    """
    fields = [size, 0] if size >= _ZIP64_LIMIT else []
    if offset >= _ZIP64_LIMIT:
        fields.append(offset)
    return _zip64_block(fields)


def zip64_central(offset: int, size: int) -> bytes:
    """Return the central-directory ZIP64 extra block for a record, or b"" if none.

    >>> zip64_central(0x1_0000_0000, 5).hex()
    '010008000000000001000000'
    """
    fields = [size, size] if size >= _ZIP64_LIMIT else []
    if offset >= _ZIP64_LIMIT:
        fields.append(offset)
    return _zip64_block(fields)


def _zip64_block(fields: list[int]) -> bytes:
    """Pack *fields* as a ZIP64 extended-information extra block (b"" when empty)."""
    if not fields:
        return b""
    count = len(fields)
    return struct.pack(f"<HH{count}Q", _ZIP64_EXTRA_ID, 8 * count, *fields)


def local_extra(offset: int, name_size: int, size: int) -> bytes:
    """Return the local extra field that makes a record's data start on an ALIGNMENT.

    *offset* is where the local header starts and *name_size* the encoded name length.

    >>> extra = local_extra(0, 3, 5)
    >>> (30 + 3 + len(extra)) % 64, extra[:4]
    (0, b'FB\\x1b\\x00')
    """
    zip64 = zip64_local(offset, size)
    start = offset + LOCAL.size + name_size + len(zip64) + 4
    pad = -start % ALIGNMENT
    return zip64 + _PAD_EXTRA_ID + struct.pack("<H", pad) + _PAD_BYTE * pad


def _clamp32(value: int) -> int:
    """Return *value*, or the ZIP64 marker 0xFFFFFFFF when it does not fit."""
    return min(value, _ZIP64_LIMIT)


class Entry(NamedTuple):
    """What the central directory needs to know about one written record."""

    encoded_name: bytes
    offset: int
    size: int
    crc: int
    flags: int


def local_header(entry: Entry, extra: bytes) -> bytes:
    """Return the local file header of *entry*; CRC and sizes follow in a descriptor."""
    name = entry.encoded_name
    fixed = LOCAL.pack(
        LOCAL_SIG, 0, entry.flags, 0, 0, 0, 0, 0, 0, len(name), len(extra)
    )
    return fixed + name + extra


def data_descriptor(entry: Entry) -> bytes:
    """Return the data descriptor after *entry*'s data (8-byte sizes past 4 GiB)."""
    if entry.size >= _ZIP64_LIMIT or entry.offset >= _ZIP64_LIMIT:
        return _DESCRIPTOR64.pack(_DESCRIPTOR_SIG, entry.crc, entry.size, entry.size)
    return _DESCRIPTOR32.pack(_DESCRIPTOR_SIG, entry.crc, entry.size, entry.size)


def central_entry(entry: Entry) -> bytes:
    """Return the central-directory record of *entry*."""
    extra = zip64_central(entry.offset, entry.size)
    size = _clamp32(entry.size)
    name = entry.encoded_name
    fixed = _CENTRAL.pack(
        _CENTRAL_SIG, 0, 0, entry.flags, 0, 0, 0, entry.crc, size, size,
        len(name), len(extra), 0, 0, 0, 0, _clamp32(entry.offset),
    )  # fmt: skip
    return fixed + name + extra


def end_records(count: int, cd_offset: int, cd_size: int) -> bytes:
    """Return the ZIP64 end record, its locator and the classic end record."""
    eocd64_offset = cd_offset + cd_size
    eocd64 = _EOCD64.pack(
        b"PK\x06\x06", _EOCD64.size - 12, _ZIP64_MADE_BY, _ZIP64_NEEDED, 0, 0,
        count, count, cd_size, cd_offset,
    )  # fmt: skip
    locator = _EOCD64_LOCATOR.pack(b"PK\x06\x07", 0, eocd64_offset, 1)
    count16 = min(count, _MAX_ENTRIES_16)
    eocd = _EOCD.pack(
        b"PK\x05\x06", 0, 0, count16, count16, _clamp32(cd_size), _clamp32(cd_offset), 0
    )
    return eocd64 + locator + eocd


def serialization_id(entries: Iterable[Entry]) -> bytes:
    """Return 40 ASCII digits derived from the records' names and CRCs only.

    torch combines C++ hashes, which cannot be reproduced; this keeps the shape (20
    digits from the names, 20 from the CRCs) and stays deterministic.
    """
    names, crcs = hashlib.sha256(), hashlib.sha256()
    for entry in entries:
        names.update(entry.encoded_name + b"\0")
        crcs.update(struct.pack("<I", entry.crc))
    high = int.from_bytes(names.digest(), "big") % 10**20
    low = int.from_bytes(crcs.digest(), "big") % 10**20
    return f"{high:020d}{low:020d}".encode("ascii")
