"""ArchiveWriter and ArchiveReader: layout, round trips, hostile ZIPs, torch interop."""

from __future__ import annotations

import array
import gc
import io
import os
import struct
import sys
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor

import pytest

from hermetic._archive_reader import ArchiveReader
from hermetic._archive_writer import ArchiveWriter
from hermetic._zip_layout import (
    Entry,
    central_entry,
    data_descriptor,
    end_records,
    local_extra,
    zip64_central,
)
from hermetic.errors import ArchiveError, ArchiveFormatError

LOCAL = struct.Struct("<4sHHHHHIIIHH")
CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")

RECORDS = {
    "res/a.txt": b"hello",
    "res/empty.bin": b"",
    ".data/0.storage": bytes(range(256)) * 40,
    "mypkg/sub/leaf.py": "x = 'ünï'\n".encode(),
    ".data/extern_modules": b"collections\n",
}

BAD_RECORD_NAMES = ["", "/abs", "a\\b", "a//b", "a/", "./a", "a/../b", "..", "a\0b"]

HOSTILE_ENTRIES = [
    pytest.param(["top.txt"], "not in a subdirectory", id="no-folder"),
    pytest.param(["p/.data/version", "q/x"], "outside the archive folder", id="mixed"),
    pytest.param(["p/.data/version", "p/../evil"], "'..' segment", id="dotdot"),
    pytest.param(["/abs/x", "/abs/.data/version"], "invalid archive folder", id="abs"),
    pytest.param(["../p/x"], "invalid archive folder", id="dotdot-prefix"),
    pytest.param(["p/.data/version", "p/a\\b"], "backslash", id="backslash"),
    pytest.param(["p/.data/version", "p/a//x"], "empty path segment", id="empty-seg"),
]


def write_archive(target, records=RECORDS):
    """Write *records* with ArchiveWriter to *target* and return the target."""
    with ArchiveWriter(target) as writer:
        for name, data in records.items():
            writer.write_record(name, data)
    return target


def build_zip(path, names, data=b"6\n", compression=zipfile.ZIP_STORED):
    """Write a plain CPython zipfile archive whose entries are *names*."""
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name in names:
            zf.writestr(name, data)
    return path


def local_data_offsets(path):
    """Map each entry to its data offset, parsed from zipfile plus local headers."""
    raw = path.read_bytes()
    offsets = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            fields = LOCAL.unpack_from(raw, info.header_offset)
            assert fields[0] == b"PK\x03\x04"
            offsets[info.filename] = info.header_offset + LOCAL.size + sum(fields[9:])
    return offsets


def central_entries(raw):
    """Return (name, position, fields, extra) for every central-directory entry."""
    entries, pos = [], struct.unpack_from("<Q", raw, len(raw) - 98 + 48)[0]
    while raw[pos : pos + 4] == b"PK\x01\x02":
        fields = CENTRAL.unpack_from(raw, pos)
        name_end = pos + CENTRAL.size + fields[10]
        extra = raw[name_end : name_end + fields[11]]
        entries.append((raw[pos + CENTRAL.size : name_end], pos, fields, extra))
        pos = name_end + fields[11] + fields[12]
    return entries


# -- writing and reading back ----------------------------------------------------------


def test_round_trip_preserves_every_record(tmp_path):
    """Every record reads back byte for byte, including empty and binary ones."""
    path = write_archive(tmp_path / "p.pt")
    with ArchiveReader(path) as reader:
        assert reader.record_names()[: len(RECORDS)] == list(RECORDS)
        for name, data in RECORDS.items():
            assert reader.read(name) == data
            assert reader.record_size(name) == len(data)
        assert reader.version == 6
        assert reader.path == os.path.abspath(path)
        assert not reader.is_directory


def test_round_trip_through_a_buffer():
    """A BytesIO target gets records under 'archive' and reads back from bytes."""
    buffer = io.BytesIO()
    write_archive(buffer)
    with ArchiveReader(io.BytesIO(buffer.getvalue())) as reader:
        assert (reader.name, reader.archive_name, reader.path) == (
            "<binary>",
            "archive",
            None,
        )
        assert reader.record_span("res/a.txt") is None
        assert all(reader.read(n) == d for n, d in RECORDS.items())


def test_writer_accepts_memoryviews_of_any_format(tmp_path):
    """Typed and bytearray buffers are written as their raw bytes."""
    floats = array.array("f", [1.5, -2.0, 3.25])
    records = {
        "f": memoryview(floats),
        "ba": bytearray(b"xyz"),
        "mv": memoryview(b"ab"),
    }
    path = write_archive(tmp_path / "m.pt", records)
    with ArchiveReader(path) as reader:
        assert reader.read("f") == floats.tobytes()
        assert reader.read("ba") == b"xyz"
        assert reader.read("mv") == b"ab"


def test_writer_needs_only_a_write_method():
    """A file object with nothing but write() is enough for the writer."""

    class Sink:
        def __init__(self):
            self.parts = []

        def write(self, data):
            self.parts.append(bytes(data))

    sink = Sink()
    write_archive(sink)
    with ArchiveReader(io.BytesIO(b"".join(sink.parts))) as reader:
        assert reader.read(".data/0.storage") == RECORDS[".data/0.storage"]


def test_streamed_record_equals_joined_chunks(tmp_path):
    """write_record_stream writes the concatenation of its chunks."""
    chunks = [b"abc", bytearray(b""), memoryview(b"defg"), b"h" * 1000]
    with ArchiveWriter(tmp_path / "s.pt") as writer:
        writer.write_record_stream("big", iter(chunks), 1007)
        writer.write_record_stream("none", iter([]), 0)
    with ArchiveReader(tmp_path / "s.pt") as reader:
        assert reader.read("big") == b"".join(chunks)
        assert reader.read("none") == b""


def test_identical_input_gives_identical_bytes(tmp_path):
    """The same records written to two paths with one base name are byte-identical."""
    (tmp_path / "d1").mkdir()
    (tmp_path / "d2").mkdir()
    first = write_archive(tmp_path / "d1" / "p.pt").read_bytes()
    second = write_archive(tmp_path / "d2" / "p.pt").read_bytes()
    assert first == second


@pytest.mark.parametrize(
    ("file_name", "archive_name"),
    [("p.pt", "p"), ("my.model.v1.pt", "my.model.v1"), ("noext", "noext")],
)
def test_archive_name_is_the_base_name_without_extension(
    tmp_path, file_name, archive_name
):
    """A path target's records go under its base name minus the last extension."""
    writer = ArchiveWriter(tmp_path / file_name)
    assert writer.archive_name == archive_name
    writer.write_record("x", b"1")
    writer.close()
    with zipfile.ZipFile(tmp_path / file_name) as zf:
        assert {n.split("/")[0] for n in zf.namelist()} == {archive_name}
    with ArchiveReader(tmp_path / file_name) as reader:
        assert reader.archive_name == archive_name


def test_buffer_target_uses_archive_as_folder():
    """A file-object target's records go under 'archive'."""
    buffer = io.BytesIO()
    writer = ArchiveWriter(buffer)
    assert (writer.name, writer.archive_name) == ("<binary>", "archive")
    writer.close()
    with zipfile.ZipFile(buffer) as zf:
        assert all(n.startswith("archive/") for n in zf.namelist())


@pytest.mark.parametrize("file_name", [".hidden", "sub/", ".", "..pt"])
def test_path_without_usable_base_name_is_refused(tmp_path, file_name):
    """Paths whose base name leaves no folder name raise ArchiveFormatError."""
    with pytest.raises(ArchiveFormatError, match="archive folder name"):
        ArchiveWriter(os.path.join(tmp_path, file_name))


def test_trailer_records_come_last_with_torch_contents(tmp_path):
    """close() appends .data/version, byteorder and a 40-digit serialization id."""
    path = write_archive(tmp_path / "p.pt")
    with ArchiveReader(path) as reader:
        names = reader.record_names()
        assert names[-3:] == [".data/version", "byteorder", ".data/serialization_id"]
        assert reader.read(".data/version") == b"6\n"
        assert reader.read("byteorder") == sys.byteorder.encode()
        ident = reader.read(".data/serialization_id")
        assert len(ident) == 40
        assert ident.isdigit()


def test_trailer_records_are_not_written_twice():
    """Trailer records the caller already wrote are kept and not repeated."""
    buffer = io.BytesIO()
    with ArchiveWriter(buffer) as writer:
        writer.write_record(".data/version", b"6\n")
        writer.write_record("byteorder", b"little")
    with ArchiveReader(io.BytesIO(buffer.getvalue())) as reader:
        assert reader.record_names() == [
            ".data/version",
            "byteorder",
            ".data/serialization_id",
        ]


def test_serialization_id_follows_the_content():
    """The serialization id changes with record content and repeats for equal input."""

    def ident(records):
        buffer = io.BytesIO()
        write_archive(buffer, records)
        with ArchiveReader(buffer) as reader:
            return reader.read(".data/serialization_id")

    assert ident({"a": b"1"}) == ident({"a": b"1"})
    assert ident({"a": b"1"}) != ident({"a": b"2"})
    assert ident({"a": b"1"}) != ident({"b": b"1"})


# -- byte layout -----------------------------------------------------------------------


def test_every_record_starts_on_a_64_byte_boundary(tmp_path):
    """record_span and an independent local-header parse both give aligned offsets."""
    path = write_archive(tmp_path / "p.pt")
    offsets = local_data_offsets(path)
    raw = path.read_bytes()
    with ArchiveReader(path) as reader:
        for name in reader.record_names():
            start, size = reader.record_span(name)
            assert start % 64 == 0
            assert offsets[f"p/{name}"] == start
            assert raw[start : start + size] == reader.read(name)


def test_cpython_zipfile_reads_every_record(tmp_path):
    """CPython's zipfile finds no CRC errors and reads every record."""
    path = write_archive(tmp_path / "p.pt")
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        for name, data in RECORDS.items():
            assert zf.read(f"p/{name}") == data


def test_headers_match_torch_file_writer_layout(tmp_path):
    """Local headers, descriptors, central entries and end records follow torch."""
    path = write_archive(tmp_path / "p.pt", {"a": b"hello", "e": b""})
    raw = path.read_bytes()
    head = LOCAL.unpack_from(raw, 0)
    assert head == (b"PK\x03\x04", 0, 0x0808, 0, 0, 0, 0, 0, 0, 3, 31)
    assert raw[33:64] == b"FB\x1b\x00" + b"Z" * 27
    assert raw[69:85] == struct.pack("<4sIII", b"PK\x07\x08", 0x3610A686, 5, 5)
    empty = LOCAL.unpack_from(raw, 85)
    assert empty == (b"PK\x03\x04", 0, 0x0800, 0, 0, 0, 0, 0, 0, 3, 10)
    assert raw[118:132] == b"FB\x06\x00ZZZZZZPK\x03\x04"  # no descriptor after it
    entries = central_entries(raw)
    assert [e[0] for e in entries][:2] == [b"p/a", b"p/e"]
    fields = entries[0][2]
    assert fields[1:10] == (0, 0, 0x0808, 0, 0, 0, 0x3610A686, 5, 5)
    assert fields[11:] == (0, 0, 0, 0, 0, 0)
    assert entries[1][2][3] == 0x0800
    tail = raw[-98:]
    eocd64 = struct.unpack_from("<4sQHHIIQQ", tail)
    assert eocd64 == (b"PK\x06\x06", 44, 0x031E, 45, 0, 0, 5, 5)
    assert struct.unpack_from("<4sIQI", tail, 56) == (
        b"PK\x06\x07",
        0,
        len(raw) - 98,
        1,
    )
    assert tail[76:84] == b"PK\x05\x06\x00\x00\x00\x00"
    assert tail[-2:] == b"\x00\x00"


def test_zip64_helpers_reproduce_torch_bytes_past_4_gib():
    """ZIP64 extras, descriptors and end records match a real torch >4 GiB archive."""
    big = 4 * 1024**3 + 100
    assert local_extra(85, 5, big) == (
        bytes.fromhex("0100100064000000010000000000000000000000")
        + b"FB0\x00"
        + b"Z" * 48
    )
    beyond = 4294967612
    assert local_extra(beyond, 3, 0) == (
        bytes.fromhex("010008003c01000001000000") + b"FB\x13\x00" + b"Z" * 19
    )
    assert zip64_central(85, big) == bytes.fromhex(
        "0100100064000000010000006400000001000000"
    )
    assert data_descriptor(Entry(b"g/b", 4294967680, 6, 0x718498E8, 0x0808)) == (
        bytes.fromhex("504b0708e898847106000000000000000600000000000000")
    )
    assert data_descriptor(Entry(b"g/a", 0, 5, 0x3610A686, 0x0808)) == (
        bytes.fromhex("504b070886a610360500000005000000")
    )
    assert end_records(7, 4294968192, 466).hex() == (
        "504b06062c000000000000001e032d000000000000000000070000000000000007000000"
        "00000000d2010000000000008003000001000000504b0607000000005205000001000000"
        "01000000504b05060000000007000700d2010000ffffffff0000"
    )


@pytest.mark.parametrize(
    ("offset", "size", "zip64_size"),
    [
        (0, 0, 0),
        (100, 5, 0),
        (2**32 - 2, 7, 0),
        (2**32 - 1, 7, 12),
        (2**32 + 3, 0, 12),
        (5, 2**32 - 1, 20),
        (2**33, 2**32 + 9, 28),
    ],
)
def test_local_extra_aligns_data_for_any_offset_and_size(offset, size, zip64_size):
    """The FB block follows any ZIP64 block and pads the data to a multiple of 64."""
    extra = local_extra(offset, 11, size)
    assert (offset + 30 + 11 + len(extra)) % 64 == 0
    assert extra[zip64_size : zip64_size + 2] == b"FB"
    pad = struct.unpack_from("<H", extra, zip64_size + 2)[0]
    assert extra[zip64_size + 4 :] == b"Z" * pad


def test_central_entry_marks_zip64_fields():
    """Central entries put 0xFFFFFFFF in overflowing fields, the value in the extra."""
    entry = Entry(b"p/x", 2**32 + 1, 2**32, 7, 0x0808)
    fields = CENTRAL.unpack_from(central_entry(entry))
    assert (fields[8], fields[9], fields[16]) == (0xFFFFFFFF,) * 3
    extra = central_entry(entry)[CENTRAL.size + 3 :]
    assert struct.unpack("<HH3Q", extra) == (1, 24, 2**32, 2**32, 2**32 + 1)


# -- the reader's input variety --------------------------------------------------------


def test_reader_accepts_deflated_zipfile_with_directory_entries(tmp_path):
    """Plain zipfile output, deflated and with directory entries, reads fine."""
    path = tmp_path / "z.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("pkg/", b"")
        zf.writestr("pkg/.data/", b"")
        zf.writestr("pkg/.data/version", b"3\n")
        zf.writestr("pkg/mod.py", b"x = 1\n" * 100)
    with ArchiveReader(path) as reader:
        assert reader.archive_name == "pkg"
        assert reader.version == 3
        assert reader.record_names() == [".data/version", "mod.py"]
        assert reader.read("mod.py") == b"x = 1\n" * 100
        assert reader.record_span("mod.py") is None


def test_reader_accepts_an_unzipped_package_directory(tmp_path):
    """A directory holding .data/ reads like the archive it was extracted from."""
    path = write_archive(tmp_path / "p.pt")
    with zipfile.ZipFile(path) as zf:
        zf.extractall(tmp_path / "out")
    with ArchiveReader(tmp_path / "out" / "p") as reader:
        assert reader.is_directory
        assert reader.path is None
        assert reader.archive_name == "p"
        assert reader.record_names() == sorted(reader.record_names())
        assert set(reader.record_names()) == {
            *RECORDS,
            ".data/version",
            "byteorder",
            ".data/serialization_id",
        }
        for name, data in RECORDS.items():
            assert reader.read(name) == data
            assert reader.record_size(name) == len(data)
            assert reader.record_span(name) is None
        with pytest.raises(ArchiveError, match="no record 'nope'"):
            reader.read("nope")


def test_top_level_version_record_is_accepted(tmp_path):
    """A top-level 'version' record stands in for .data/version."""
    path = build_zip(tmp_path / "t.zip", ["t/version", "t/a"])
    with ArchiveReader(path) as reader:
        assert reader.version == 6


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"0\n", "version 0 is not supported; supported versions are 1 to 10"),
        (b"11", "version 11 is not supported; supported versions are 1 to 10"),
        (b"abc", "version 'abc' is not an integer; supported versions are 1 to 10"),
        (b"", "version '' is not an integer"),
        (b"9" * 100, "too long"),
    ],
)
def test_unsupported_version_is_refused(tmp_path, content, message):
    """Versions outside 1..10 or not integers raise ArchiveFormatError saying why."""
    path = build_zip(tmp_path / "v.zip", ["v/.data/version"], content)
    with pytest.raises(ArchiveFormatError) as info:
        ArchiveReader(path)
    assert message in str(info.value)
    assert info.value.record == ".data/version"


def test_missing_version_is_refused(tmp_path):
    """An archive with neither version record raises ArchiveFormatError."""
    path = build_zip(tmp_path / "v.zip", ["v/a.txt"])
    with pytest.raises(ArchiveFormatError, match=r"no '\.data/version'"):
        ArchiveReader(path)


# -- broken and hostile input ----------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [b"", b"definitely not a zip", b"PK\x03\x04" + b"\0" * 40],
    ids=["empty", "text", "header-only"],
)
def test_unreadable_file_raises_archive_error(tmp_path, content):
    """Empty files and non-ZIP bytes raise ArchiveError naming the file."""
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(ArchiveError, match=r"bad\.pt: not a readable ZIP archive"):
        ArchiveReader(path)


def test_truncated_archive_raises_archive_error(tmp_path):
    """A ZIP cut short loses its central directory and raises ArchiveError."""
    raw = write_archive(tmp_path / "p.pt").read_bytes()
    for cut in (len(raw) - 10, len(raw) // 2, 100):
        (tmp_path / "cut.pt").write_bytes(raw[:cut])
        with pytest.raises(ArchiveError, match=r"cut\.pt"):
            ArchiveReader(tmp_path / "cut.pt")


def test_missing_path_raises_archive_error_with_cause(tmp_path):
    """A path that does not exist raises ArchiveError from FileNotFoundError."""
    missing = tmp_path / "nope.pt"
    with pytest.raises(ArchiveError) as info:
        ArchiveReader(missing)
    assert str(missing) in str(info.value)
    assert isinstance(info.value.__cause__, FileNotFoundError)


@pytest.mark.parametrize("source", [123, io.StringIO("x"), None, b"p.pt"])
def test_reader_refuses_non_files(source):
    """Objects that are neither paths nor binary file objects raise TypeError."""
    with pytest.raises(TypeError, match="ArchiveReader expected"):
        ArchiveReader(source)


@pytest.mark.parametrize(("names", "message"), HOSTILE_ENTRIES)
def test_hostile_entry_names_are_refused(tmp_path, names, message):
    """Entries outside one safe folder raise ArchiveFormatError naming the entry."""
    path = build_zip(tmp_path / "h.zip", names)
    with pytest.raises(ArchiveFormatError, match=message):
        ArchiveReader(path)


def test_duplicate_entries_are_refused(tmp_path):
    """Two entries with the same name raise ArchiveFormatError naming it."""
    path = tmp_path / "d.zip"
    with pytest.warns(UserWarning, match="Duplicate name"):
        build_zip(path, ["d/.data/version", "d/a", "d/a"])
    with pytest.raises(ArchiveFormatError, match="record 'a': duplicate record"):
        ArchiveReader(path)


def test_unsupported_compression_is_refused(tmp_path):
    """bzip2 entries raise ArchiveFormatError, as torch refuses them."""
    path = build_zip(tmp_path / "b.zip", ["b/.data/version"], b"6", zipfile.ZIP_BZIP2)
    with pytest.raises(ArchiveFormatError, match="compression method 12"):
        ArchiveReader(path)


def test_encrypted_entries_are_refused(tmp_path):
    """Entries flagged as encrypted raise ArchiveFormatError."""
    raw = bytearray(build_zip(tmp_path / "e.zip", ["e/.data/version"]).read_bytes())
    for _, pos, _, _ in central_entries_plain(raw):
        raw[pos + 8] |= 1
    (tmp_path / "e.zip").write_bytes(raw)
    with pytest.raises(ArchiveFormatError, match="encrypted"):
        ArchiveReader(tmp_path / "e.zip")


def central_entries_plain(raw):
    """Return central entries of a small non-ZIP64 archive via its classic end."""
    cd_offset = struct.unpack_from("<I", raw, len(raw) - 6)[0]
    out, pos = [], cd_offset
    while raw[pos : pos + 4] == b"PK\x01\x02":
        fields = CENTRAL.unpack_from(raw, pos)
        out.append((None, pos, fields, None))
        pos += CENTRAL.size + fields[10] + fields[11] + fields[12]
    return out


def test_corrupt_record_fails_its_crc_check(tmp_path):
    """A flipped data byte raises ArchiveError naming the record on read."""
    path = write_archive(tmp_path / "p.pt")
    with ArchiveReader(path) as reader:
        start, _ = reader.record_span("res/a.txt")
    raw = bytearray(path.read_bytes())
    raw[start] ^= 0xFF
    path.write_bytes(raw)
    with ArchiveReader(path) as reader:
        with pytest.raises(ArchiveError, match=r"record 'res/a\.txt': CRC-32 mismatch"):
            reader.read("res/a.txt")
        assert reader.read("mypkg/sub/leaf.py") == RECORDS["mypkg/sub/leaf.py"]


def test_record_span_checks_header_and_bounds(tmp_path):
    """A bad local signature or data past the end raises ArchiveError naming it."""
    path = write_archive(tmp_path / "p.pt", {"a": b"hello", "b": b"world"})
    raw = bytearray(path.read_bytes())
    entries = central_entries(bytes(raw))
    raw[0:4] = b"XXXX"
    # A local extra length that lies moves b's data past the end of the file; sizes
    # that lie in the central directory are refused when the archive is opened.
    b_local = entries[1][2][16]
    struct.pack_into("<H", raw, b_local + 28, 0xFFFF)
    path.write_bytes(raw)
    with ArchiveReader(path) as reader:
        with pytest.raises(ArchiveError, match="record 'a': local file header"):
            reader.record_span("a")
        with pytest.raises(ArchiveError, match="record 'b': record data runs past"):
            reader.read("b")


def test_missing_record_raises_archive_error_not_key_error(tmp_path):
    """Reading an absent record raises ArchiveError carrying the record name."""
    with ArchiveReader(write_archive(tmp_path / "p.pt")) as reader:
        for call in (reader.read, reader.record_size, reader.record_span):
            with pytest.raises(ArchiveError) as info:
                call("missing.txt")
            assert info.value.record == "missing.txt"
            assert not isinstance(info.value, KeyError)
        assert not reader.has_record("missing.txt")


def test_closed_reader_refuses_reads(tmp_path):
    """read() after close() raises ArchiveError; close() twice is fine."""
    reader = ArchiveReader(write_archive(tmp_path / "p.pt"))
    reader.close()
    reader.close()
    with pytest.raises(ArchiveError, match="archive is closed"):
        reader.read("res/a.txt")


@pytest.mark.parametrize("deflated", [False, True], ids=["stored", "deflated"])
def test_concurrent_reads_return_correct_bytes(tmp_path, deflated):
    """Eight threads reading every record at once all get the right bytes."""
    records = {f"r{i}": os.urandom(1000 * i + 7) for i in range(16)}
    path = tmp_path / "c.pt"
    if deflated:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("c/.data/version", b"6\n")
            for name, data in records.items():
                zf.writestr(f"c/{name}", data)
    else:
        write_archive(path, records)
    start = threading.Barrier(8)

    def read_all(_):
        start.wait()
        return all(
            reader.read(name) == data
            for _ in range(20)
            for name, data in records.items()
        )

    with ArchiveReader(path) as reader, ThreadPoolExecutor(8) as pool:
        assert all(pool.map(read_all, range(8)))


# -- writer failures -------------------------------------------------------------------


def test_exception_inside_with_leaves_nothing_behind(tmp_path):
    """An error inside `with ArchiveWriter(path)` leaves no file and no temp file."""

    def write_then_fail():
        with ArchiveWriter(tmp_path / "p.pt") as writer:
            writer.write_record("a", b"data")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_then_fail()
    assert os.listdir(tmp_path) == []


def test_failed_write_keeps_an_existing_target(tmp_path):
    """Aborting leaves a file already at the target untouched."""
    target = tmp_path / "p.pt"
    target.write_bytes(b"old")
    writer = ArchiveWriter(target)
    writer.write_record("a", b"new")
    writer.abort()
    writer.abort()
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["p.pt"]


def test_temp_file_lives_beside_the_target_until_close(tmp_path):
    """Records go to a '.tmp' file in the target's directory, renamed at close()."""
    target = tmp_path / "p.pt"
    writer = ArchiveWriter(target)
    writer.write_record("a", b"x")
    (temp,) = os.listdir(tmp_path)
    assert temp.endswith(".tmp")
    assert not target.exists()
    writer.close()
    assert os.listdir(tmp_path) == ["p.pt"]


def test_abandoned_writer_removes_its_temp_file(tmp_path):
    """A writer dropped without close() or abort() deletes its temp file at GC."""
    writer = ArchiveWriter(tmp_path / "p.pt")
    writer.write_record("a", b"x")
    del writer
    gc.collect()
    assert os.listdir(tmp_path) == []


def test_partial_writes_are_completed():
    """A raw-style file object that takes a few bytes per call still gets everything."""

    class Trickle(io.RawIOBase):
        def __init__(self):
            self.data = bytearray()

        def writable(self):
            return True

        def write(self, data):
            piece = bytes(data[:7])
            self.data += piece
            return len(piece)

    sink = Trickle()
    write_archive(sink)
    with ArchiveReader(io.BytesIO(bytes(sink.data))) as reader:
        assert all(reader.read(n) == d for n, d in RECORDS.items())


def test_missing_parent_directory_raises_archive_error(tmp_path):
    """A target in a directory that does not exist raises ArchiveError naming it."""
    missing = tmp_path / "no" / "p.pt"
    with pytest.raises(ArchiveError, match="does not exist") as info:
        ArchiveWriter(missing)
    assert str(tmp_path / "no") in str(info.value)


def test_directory_target_raises_archive_error(tmp_path):
    """A target that is an existing directory raises ArchiveError."""
    (tmp_path / "d.pt").mkdir()
    with pytest.raises(ArchiveError, match="is a directory"):
        ArchiveWriter(tmp_path / "d.pt")


@pytest.mark.parametrize("target", [123, None, io.StringIO(), object()])
def test_non_writable_target_raises_type_error(target):
    """Objects without a binary write() raise TypeError naming their type."""
    expected = f"got {type(target).__name__}"
    with pytest.raises(TypeError, match="writable binary file object") as info:
        ArchiveWriter(target)
    assert str(info.value).endswith(expected)


def test_write_after_close_or_abort_raises():
    """Writing to a closed or aborted writer raises 'archive is closed'."""
    for finish in ("close", "abort"):
        writer = ArchiveWriter(io.BytesIO())
        getattr(writer, finish)()
        getattr(writer, finish)()
        with pytest.raises(ArchiveError, match="archive is closed"):
            writer.write_record("a", b"")


@pytest.mark.parametrize("chunks", [[b"abc"], [b"abcdef", b"gh"], []])
def test_stream_with_wrong_size_breaks_the_writer(tmp_path, chunks):
    """A stream that misses its declared size raises and leaves only abort()."""
    target = tmp_path / "p.pt"
    writer = ArchiveWriter(target)
    with pytest.raises(ArchiveError, match="record 'big': expected 5 bytes"):
        writer.write_record_stream("big", iter(chunks), 5)
    with pytest.raises(ArchiveError, match="earlier write failed"):
        writer.write_record("other", b"x")
    with pytest.raises(ArchiveError, match="earlier write failed"):
        writer.close()
    assert os.listdir(tmp_path) == []


def test_error_from_a_chunk_source_breaks_the_writer():
    """An exception raised by the chunk iterator propagates and breaks the writer."""

    def chunks():
        yield b"ab"
        raise ValueError("source failed")

    writer = ArchiveWriter(io.BytesIO())
    with pytest.raises(ValueError, match="source failed"):
        writer.write_record_stream("x", chunks(), 4)
    with pytest.raises(ArchiveError, match="earlier write failed"):
        writer.write_record("y", b"")


@pytest.mark.parametrize("name", BAD_RECORD_NAMES)
def test_invalid_record_names_are_refused(name):
    """Unsafe or unaddressable record names raise ArchiveFormatError."""
    writer = ArchiveWriter(io.BytesIO())
    with pytest.raises(ArchiveFormatError, match="invalid record name"):
        writer.write_record(name, b"x")
    writer.write_record("still/usable", b"x")


def test_duplicate_record_name_is_refused():
    """Writing a record name twice raises ArchiveFormatError naming it."""
    writer = ArchiveWriter(io.BytesIO())
    writer.write_record("a/b", b"1")
    with pytest.raises(ArchiveFormatError, match="record 'a/b': a record with this"):
        writer.write_record("a/b", b"2")
    assert writer.has_record("a/b")
    assert writer.record_names() == ["a/b"]


def test_failing_file_object_raises_archive_error():
    """An OSError from the target's write() becomes an ArchiveError."""

    class Full:
        def write(self, data):
            raise OSError(28, "No space left on device")

    writer = ArchiveWriter(Full())
    with pytest.raises(ArchiveError, match="record 'a': cannot write") as info:
        writer.write_record("a", b"x")
    assert isinstance(info.value.__cause__, OSError)


# -- torch interop ---------------------------------------------------------------------


@pytest.mark.torch
def test_torch_reader_reads_hermetic_archives_aligned(tmp_path):
    """torch's PyTorchFileReader reads every record at a 64-aligned offset."""
    torch = pytest.importorskip("torch", reason="interop needs torch")
    path = write_archive(tmp_path / "p.pt")
    reader = torch._C.PyTorchFileReader(str(path))
    assert set(reader.get_all_records()) >= set(RECORDS)
    for name, data in RECORDS.items():
        assert bytes(reader.get_record(name)) == data
        assert reader.get_record_offset(name) % 64 == 0


@pytest.mark.torch
def test_bytes_match_torch_writer_except_serialization_id(tmp_path):
    """Only the serialization id and its CRC differ from torch's PyTorchFileWriter."""
    torch = pytest.importorskip("torch", reason="interop needs torch")
    (tmp_path / "t").mkdir()
    (tmp_path / "h").mkdir()
    theirs_path = tmp_path / "t" / "p.pt"
    torch_writer = torch._C.PyTorchFileWriter(str(theirs_path))
    torch_writer.set_min_version(6)
    for name, data in RECORDS.items():
        torch_writer.write_record(name, data, len(data))
    torch_writer.write_end_of_file()
    del torch_writer
    ours = write_archive(tmp_path / "h" / "p.pt").read_bytes()
    theirs = theirs_path.read_bytes()
    assert len(ours) == len(theirs)
    with ArchiveReader(tmp_path / "h" / "p.pt") as reader:
        start, size = reader.record_span(".data/serialization_id")
    cd_pos = central_entries(ours)[-1][1]
    allowed = {*range(start, start + size + 8), *range(cd_pos + 16, cd_pos + 20)}
    diff = {i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b}
    assert diff <= allowed


@pytest.mark.torch
def test_reader_reads_torch_package_exporter_output(tmp_path):
    """ArchiveReader reads an archive written by torch.package.PackageExporter."""
    package = pytest.importorskip("torch.package", reason="interop needs torch")
    path = tmp_path / "exported.pt"
    with package.PackageExporter(str(path)) as exporter:
        exporter.save_text("res", "a.txt", "hello")
        exporter.save_binary("res", "b.bin", b"\x00\x01binary")
    with ArchiveReader(path) as reader:
        assert reader.archive_name == "exported"
        assert reader.version == 6
        assert reader.read("res/a.txt") == b"hello"
        assert reader.read("res/b.bin") == b"\x00\x01binary"
        assert reader.read(".data/extern_modules") == b"\n"
        for name in reader.record_names():
            assert reader.record_span(name)[0] % 64 == 0


# -- layout checks against hostile containers (issue 7) --------------------------------


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("overlap-quoted", "overlaps record"),
        ("overlap-same-offset", "overlaps record"),
        ("deflate-ratio-lie", "more than deflate can produce"),
        ("stored-size-lie", "declares 1073741824 bytes but holds 5"),
        ("prepended-pickle-polyglot", "precede the first record"),
    ],
)
def test_reader_refuses_overlaps_size_lies_and_prepended_bytes(tmp_path, case, message):
    """Overlapping records, impossible sizes and foreign leading bytes are refused."""
    from security.corpus import by_name

    path = tmp_path / "hostile.pt"
    path.write_bytes(by_name(case).archive(str(tmp_path / "marker")))
    for source in (path, io.BytesIO(path.read_bytes())):
        with pytest.raises(ArchiveFormatError, match=message):
            ArchiveReader(source)


def test_read_max_size_refuses_large_records_unread(tmp_path):
    """read(max_size=...) raises before reading a record that is too large."""
    with ArchiveReader(write_archive(tmp_path / "p.pt")) as reader:
        assert reader.read("res/a.txt", max_size=5) == b"hello"
        with pytest.raises(ArchiveFormatError, match="more than the 4"):
            reader.read("res/a.txt", max_size=4)


def test_read_prefix_and_record_info(tmp_path):
    """read_prefix gives the first bytes; record_info the entry (None in folders)."""
    path = write_archive(tmp_path / "p.pt")
    with ArchiveReader(path) as reader:
        assert reader.read_prefix(".data/0.storage", 3) == b"\x00\x01\x02"
        assert reader.read_prefix("res/a.txt", 100) == b"hello"
        assert reader.record_info("res/a.txt").file_size == 5
    deflated = io.BytesIO()
    with zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("p/.data/version", "6\n")
        zf.writestr("p/x", "ab" * 500)
    with ArchiveReader(deflated) as reader:
        assert reader.read_prefix("x", 3) == b"aba"
    with zipfile.ZipFile(path) as zf:
        zf.extractall(tmp_path / "out")
    with ArchiveReader(tmp_path / "out" / "p") as reader:
        assert reader.record_info("res/a.txt") is None
        assert reader.read_prefix("res/a.txt", 2) == b"he"
