"""Hostile archives built in code: each a named case with the outcome it must get.

Every case is data: a name, a family, an :class:`Outcome`, a builder that returns the
archive's bytes for a given *marker* path, and what ``scan`` must report. Payloads
never do harm: each one, if it ever ran, would create the marker file (or directory),
so a test proves that nothing ran by checking the marker is absent. No binary file is
committed; the ZIP containers are written byte by byte here (``zipfile`` cannot write
most of these lies).

Iterate :data:`CASES` (``from security.corpus import CASES``) to run the corpus
through any entry point::

    for case in CASES:
        data = case.archive(str(tmp_path / "marker"))

Families: ``zip`` (container tricks), ``path`` (member names), ``metadata``
(``.data/`` records), ``storage`` (persistent ids and storage records), ``malformed``
(broken pickles), ``resource`` (exhaustion), ``payload`` (pickles that run code),
``bypass`` (the scanner bypass classes of peers.md section 3.2), ``hidden`` (pickles
under other names), ``control`` (benign archives that must stay clean).
"""

from __future__ import annotations

import enum
import gzip
import io
import struct
import tarfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["CASES", "Case", "Outcome", "by_name"]


class Outcome(enum.Enum):
    """What every entry point must do with a case.

    REFUSED: opening the archive raises a HermeticError; ``scan`` raises one too or
    reports at least ``high``. MALFORMED: the archive opens, but loading the pickle
    raises a HermeticError and ``scan`` reports at least ``high``. FLAGGED: the archive
    opens; ``scan`` reports at least the case's severity, and no entry point ever runs
    the payload (loading may fail any way). TOLERATED: an oddity that loads or fails
    with a HermeticError; ``scan`` reports at least the case's severity, if any.
    BENIGN: everything works and ``scan`` says the data is safe to load.
    """

    REFUSED = "refused"
    MALFORMED = "malformed"
    FLAGGED = "flagged"
    TOLERATED = "tolerated"
    BENIGN = "benign"


@dataclass(frozen=True)
class Case:
    """One hostile archive and what it must get."""

    name: str
    family: str
    outcome: Outcome
    build: Callable[[str], bytes]
    description: str
    #: The least ``scan`` must report ("critical", "high", "medium"), if anything.
    severity: str | None = None
    #: A finding code ``scan`` must report, if any.
    finding: str | None = None
    #: ``(package, resource)`` that ``load_pickle``/``load_text`` read.
    pickle: tuple[str, str] | None = ("res", "data.pkl")
    #: A module ``import_module`` imports, if any.
    module: str | None = None
    #: A plain (not safe) load runs the payload by design, as torch.package's does:
    #: only ``scan`` and safe loading are asked about it.
    runs_on_load: bool = False
    #: Entry points that meet a MemoryError on this case, and why: the test runs
    #: them under a hard memory cap and accepts a typed error caused by MemoryError
    #: from them only. Anywhere else a MemoryError fails the test.
    memory_hazard: tuple[tuple[str, ...], str] | None = None
    #: Modules a load needs to succeed (without them it fails with a HermeticError).
    needs: tuple[str, ...] = ()

    def archive(self, marker: str) -> bytes:
        """Return the archive's bytes; *marker* is the path a payload would create."""
        return self.build(marker)


CASES: list[Case] = []


def case(
    name: str, family: str, outcome: Outcome, description: str, **options: object
) -> Callable[[Callable[[str], bytes]], Callable[[str], bytes]]:
    """Register the decorated builder as a case."""

    def register(build: Callable[[str], bytes]) -> Callable[[str], bytes]:
        CASES.append(Case(name, family, outcome, build, description, **options))  # type: ignore[arg-type]
        return build

    return register


def by_name(name: str) -> Case:
    """Return the case called *name*."""
    for item in CASES:
        if item.name == name:
            return item
    raise KeyError(name)


# -- pickles, opcode by opcode ---------------------------------------------------------

MARK, STOP, TUPLE, REDUCE, BUILD = b"(", b".", b"t", b"R", b"b"
STACK_GLOBAL, MEMOIZE, EMPTY_DICT, EMPTY_LIST = b"\x93", b"\x94", b"}", b"]"
TUPLE1, TUPLE2, NONE, BINPERSID = b"\x85", b"\x86", b"N", b"Q"


def proto(version: int) -> bytes:
    return b"\x80" + bytes([version])


def glob(module: str, name: str) -> bytes:
    """GLOBAL: protocol 0's text form."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def text(value: str) -> bytes:
    raw = value.encode("utf-8", "surrogatepass")
    if len(raw) < 256:
        return b"\x8c" + bytes([len(raw)]) + raw
    return b"X" + struct.pack("<I", len(raw)) + raw


def binary(value: bytes) -> bytes:
    if len(value) < 256:
        return b"C" + bytes([len(value)]) + value
    return b"B" + struct.pack("<I", len(value)) + value


def integer(value: int) -> bytes:
    if 0 <= value < 256:
        return b"K" + bytes([value])
    return b"\x8a" + bytes([8]) + value.to_bytes(8, "little", signed=True)


def put(index: int) -> bytes:
    return b"q" + bytes([index])


def get(index: int) -> bytes:
    return b"h" + bytes([index])


def stack_global(module: str, name: str) -> bytes:
    return text(module) + text(name) + STACK_GLOBAL


def call(callee: bytes, *args: bytes) -> bytes:
    """Call *callee* (opcodes that push a callable) with *args* (each pushes one)."""
    return callee + MARK + b"".join(args) + TUPLE + REDUCE


def touch(marker: str) -> str:
    """Python source that creates the marker file."""
    return f"open({marker!r}, 'w').close()"


def pickled(*body: bytes, version: int = 4) -> bytes:
    return proto(version) + b"".join(body) + STOP


def storage_id(storage_type: bytes, key: bytes, numel: bytes) -> bytes:
    """A torch.package storage persistent id, as BINPERSID."""
    return MARK + text("storage") + storage_type + key + text("cpu") + numel + TUPLE


def tensor(storage_type: str, key: int, numel: int) -> bytes:
    """``_rebuild_tensor_v2(storage, 0, (numel,), (1,), False, OrderedDict())``."""
    module, _, name = storage_type.rpartition(".")
    return call(
        glob("torch._utils", "_rebuild_tensor_v2"),
        storage_id(glob(module, name), integer(key), integer(numel)) + BINPERSID,
        integer(0),
        integer(numel) + TUPLE1,
        integer(1) + TUPLE1,
        b"\x89",
        call(glob("collections", "OrderedDict")),
    )


# -- ZIP containers, byte by byte ------------------------------------------------------


@dataclass
class Member:
    """One ZIP entry, with every field a case may want to falsify."""

    name: str | bytes
    data: bytes = b""
    method: int = 0
    flags: int = 0x0800
    external_attr: int = 0
    crc: int | None = None
    compressed_size: int | None = None
    file_size: int | None = None
    payload: bytes | None = None
    local_extra: bytes = b""
    header_offset: int | None = None


def deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


def deflated_repeat(chunk: bytes, count: int) -> tuple[bytes, int]:
    """Return (raw deflate stream, CRC-32) of *chunk* repeated *count* times, quickly.

    Each chunk is compressed with a full flush, so its compressed form is the same
    every time and can simply be repeated.
    """
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    piece = packer.compress(chunk) + packer.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(chunk, crc)
    return piece * count + b"\x03\x00", crc


def make_zip(
    members: Iterable[Member],
    *,
    before: bytes = b"",
    after: bytes = b"",
    central_offset: int | None = None,
    central_size: int | None = None,
) -> bytes:
    """Write *members* as a ZIP, with any field a lie."""
    out = bytearray(before)
    central = bytearray()
    count = 0
    for member in members:
        count += 1
        name = member.name if isinstance(member.name, bytes) else member.name.encode()
        if member.payload is not None:
            payload = member.payload
        elif member.method == 8:
            payload = deflate(member.data)
        else:
            payload = member.data
        crc = zlib.crc32(member.data) if member.crc is None else member.crc
        csize = (
            len(payload) if member.compressed_size is None else member.compressed_size
        )
        usize = len(member.data) if member.file_size is None else member.file_size
        offset = len(out) - len(before)
        out += struct.pack(
            "<4sHHHHHIIIHH", b"PK\x03\x04", 20, member.flags, member.method, 0, 0x21,
            crc, csize, usize, len(name), len(member.local_extra),
        )  # fmt: skip
        out += name + member.local_extra + payload
        header = offset if member.header_offset is None else member.header_offset
        central += struct.pack(
            "<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, member.flags, member.method,
            0, 0x21, crc, csize, usize, len(name), 0, 0, 0, 0, member.external_attr,
            header,
        )  # fmt: skip
        central += name
    start = len(out) - len(before) if central_offset is None else central_offset
    size = len(central) if central_size is None else central_size
    out += central
    out += struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, count, count, size, start, 0)
    return bytes(out + after)


BENIGN = pickled(EMPTY_DICT, text("answer"), integer(42), b"s")


def package(
    records: dict[str, bytes] | None = None,
    *,
    pickle: bytes = BENIGN,
    externs: bytes = b"",
    folder: str = "archive",
) -> list[Member]:
    """Members of a minimal package: version, externs, ``res/data.pkl`` and more."""
    base = {
        ".data/version": b"6\n",
        ".data/extern_modules": externs,
        "res/data.pkl": pickle,
        **(records or {}),
    }
    return [Member(f"{folder}/{name}", data) for name, data in base.items()]


def archive_with(
    records: dict[str, bytes] | None = None,
    *,
    pickle: bytes = BENIGN,
    externs: bytes = b"",
) -> bytes:
    return make_zip(package(records, pickle=pickle, externs=externs))


def payload_archive(body: bytes, *, externs: bytes = b"", version: int = 4) -> bytes:
    return archive_with(pickle=pickled(body, version=version), externs=externs)


# -- zip: container tricks -------------------------------------------------------------

R, M, F, T, B = (
    Outcome.REFUSED,
    Outcome.MALFORMED,
    Outcome.FLAGGED,
    Outcome.TOLERATED,
    Outcome.BENIGN,
)


@case("duplicate-record", "zip", R, "two entries named res/data.pkl, benign then evil")
def _duplicate(marker: str) -> bytes:
    evil = pickled(call(glob("builtins", "exec"), text(touch(marker))))
    members = package()
    members.append(Member("archive/res/data.pkl", evil))
    return make_zip(members)


@case("duplicate-version", "zip", R, "two .data/version entries that disagree")
def _duplicate_version(marker: str) -> bytes:
    return make_zip([*package(), Member("archive/.data/version", b"3\n")])


@case("overlap-same-offset", "zip", R, "two names whose entries share one local header")
def _overlap_same(marker: str) -> bytes:
    members = package()
    members.append(Member("archive/res/data.pkx", header_offset=0))
    return make_zip(members)


@case(
    "overlap-quoted",
    "zip",
    R,
    "an entry whose deflate stream quotes the next entry's header and data (the "
    "quoted-overlap bomb)",
)
def _overlap_quoted(marker: str) -> bytes:
    members = package()
    head = make_zip(members)
    central_start = struct.unpack_from("<I", head, len(head) - 6)[0]
    inner = Member("archive/res/b.bin", b"B" * 200)
    inner_entry = make_zip([inner])[: 30 + len("archive/res/b.bin") + 200]
    # A stored deflate block holding B's whole local entry, then an empty last block.
    quote = b"\x00" + struct.pack("<HH", len(inner_entry), len(inner_entry) ^ 0xFFFF)
    a_name = "archive/res/a.bin"
    outer = Member(
        a_name, inner_entry, method=8, payload=quote + inner_entry + b"\x03\x00"
    )
    b_offset = central_start + 30 + len(a_name) + len(quote)
    raw = make_zip([*members, outer])
    return _add_central_entry(
        raw, Member(inner.name, inner.data, header_offset=b_offset)
    )


def _add_central_entry(raw: bytes, member: Member) -> bytes:
    """Append a central-directory entry for *member* to the ZIP *raw* (no local
    data)."""
    eocd = raw[-22:]
    _, _, _, count, _, size, start, _ = struct.unpack("<4sHHHHIIH", eocd)
    name = member.name if isinstance(member.name, bytes) else member.name.encode()
    entry = struct.pack(
        "<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, member.flags, member.method, 0,
        0x21, zlib.crc32(member.data), len(member.data), len(member.data), len(name),
        0, 0, 0, 0, 0, member.header_offset or 0,
    ) + name  # fmt: skip
    body = raw[: start + size] + entry
    tail = struct.pack(
        "<4sHHHHIIH", b"PK\x05\x06", 0, 0, count + 1, count + 1, size + len(entry),
        start, 0,
    )  # fmt: skip
    return body + tail


@case(
    "local-extra-lie",
    "zip",
    M,
    "a stored record whose local header claims a huge extra field, moving its data "
    "into the next record",
    finding="unreadable",
)
def _local_extra_lie(marker: str) -> bytes:
    raw = bytearray(make_zip(package()))
    header = raw.find(b"archive/res/data.pkl") - 30
    struct.pack_into("<H", raw, header + 28, 0xFFFF)
    return bytes(raw)


@case("stored-size-lie", "zip", R, "a stored record that declares 1 GiB but holds 5")
def _stored_size_lie(marker: str) -> bytes:
    members = package()
    members.append(Member("archive/res/big.bin", b"small", file_size=1 << 30))
    return make_zip(members)


@case(
    "deflate-ratio-lie",
    "zip",
    R,
    "a deflated record that declares 4,000,000,000 bytes from 20 compressed bytes",
)
def _ratio_lie(marker: str) -> bytes:
    members = package()
    members.append(
        Member("archive/res/big.bin", b"x" * 100, method=8, file_size=4_000_000_000)
    )
    return make_zip(members)


@case(
    "size-lie-smaller",
    "zip",
    M,
    "a stored pickle whose central sizes are smaller than its data (CRC of the whole)",
    finding="unreadable",
)
def _size_lie_smaller(marker: str) -> bytes:
    members = package()
    evil = pickled(call(glob("builtins", "exec"), text(touch(marker))))
    members[2] = Member("archive/res/data.pkl", evil, crc=zlib.crc32(evil))
    members[2].compressed_size = members[2].file_size = 5
    return make_zip(members)


@case("crc-mismatch", "zip", M, "the pickle's CRC-32 is wrong", finding="unreadable")
def _crc_mismatch(marker: str) -> bytes:
    members = package()
    members[2].crc = 0xDEADBEEF
    return make_zip(members)


@case(
    "zip-bomb-extern-modules",
    "zip",
    R,
    "the extern list, read on open, is 256 MiB of newlines deflated to 256 KiB",
    severity="high",
)
def _bomb_externs(marker: str) -> bytes:
    stream, crc = deflated_repeat(b"\n" * (1 << 20), 256)
    members = package()
    members[1] = Member(
        "archive/.data/extern_modules",
        method=8,
        payload=stream,
        crc=crc,
        file_size=256 << 20,
    )
    return make_zip(members)


@case(
    "zip-bomb-pickle",
    "zip",
    M,
    "the pickle is 128 MiB of zeros deflated to 130 KiB",
    finding="not-scanned",
)
def _bomb_pickle(marker: str) -> bytes:
    stream, crc = deflated_repeat(bytes(1 << 20), 128)
    members = package()
    members[2] = Member(
        "archive/res/data.pkl", method=8, payload=stream, crc=crc, file_size=128 << 20
    )
    return make_zip(members)


@case(
    "zip-bomb-resource",
    "zip",
    T,
    "a 64 MiB resource deflated 1000:1",
    severity="medium",
    finding="compression-bomb",
    pickle=("res", "blob.bin"),
)
def _bomb_resource(marker: str) -> bytes:
    stream, crc = deflated_repeat(bytes(1 << 20), 64)
    members = package()
    members.append(
        Member(
            "archive/res/blob.bin",
            method=8,
            payload=stream,
            crc=crc,
            file_size=64 << 20,
        )
    )
    return make_zip(members)


@case("truncated-central-directory", "zip", R, "the central directory is cut short")
def _truncated_cd(marker: str) -> bytes:
    raw = make_zip(package())
    eocd = raw[-22:]
    size, start = struct.unpack_from("<II", eocd, 12)
    return raw[: start + size // 2] + eocd


@case("truncated-file", "zip", R, "the archive is cut in half")
def _truncated_file(marker: str) -> bytes:
    raw = make_zip(package())
    return raw[: len(raw) // 2]


@case("no-central-directory", "zip", R, "local entries only, no directory, no end")
def _no_cd(marker: str) -> bytes:
    raw = make_zip(package())
    start = struct.unpack_from("<I", raw, len(raw) - 6)[0]
    return raw[:start]


@case(
    "central-directory-loop",
    "zip",
    R,
    "the end record points the central directory at the first local header",
)
def _cd_loop(marker: str) -> bytes:
    raw = make_zip(package())
    size = struct.unpack_from("<I", raw, len(raw) - 10)[0]
    return make_zip(package(), central_offset=0, central_size=size)


@case("central-directory-size-lie", "zip", R, "the end record's directory size is huge")
def _cd_size_lie(marker: str) -> bytes:
    return make_zip(package(), central_size=0xFFFFFFF0)


@case(
    "zip64-locator-loop",
    "zip",
    R,
    "a ZIP64 locator that points at itself instead of a ZIP64 end record",
)
def _zip64_loop(marker: str) -> bytes:
    raw = make_zip(package())
    body, eocd = raw[:-22], raw[-22:]
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, len(body), 1)
    return body + locator + eocd


@case("bad-utf8-name", "zip", R, "a name flagged UTF-8 that is not UTF-8")
def _bad_utf8(marker: str) -> bytes:
    return make_zip([*package(), Member(b"archive/res/\xff\xfe.pkl", b"x")])


@case("encrypted-member", "zip", R, "the pickle is flagged as encrypted")
def _encrypted(marker: str) -> bytes:
    members = package()
    members[2].flags |= 1
    return make_zip(members)


@case("bzip2-member", "zip", R, "a bzip2-compressed record (torch refuses it too)")
def _bzip2(marker: str) -> bytes:
    members = package()
    members[2].method = 12
    return make_zip(members)


@case("lzma-member", "zip", R, "an LZMA-compressed record")
def _lzma(marker: str) -> bytes:
    members = package()
    members[2].method = 14
    return make_zip(members)


@case(
    "prepended-pickle-polyglot",
    "zip",
    R,
    "a pickle before the ZIP: the file is both an archive and a legacy torch.load "
    "pickle",
)
def _polyglot(marker: str) -> bytes:
    evil = pickled(call(glob("builtins", "exec"), text(touch(marker))), version=2)
    return make_zip(package(), before=evil)


@case("seven-zip-container", "zip", R, "a 7z archive instead of a ZIP")
def _seven_zip(marker: str) -> bytes:
    return b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(64)


@case("tar-container", "zip", R, "a tar file holding the package")
def _tar(marker: str) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        data = make_zip(package())
        info = tarfile.TarInfo("model.pt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@case("gzip-wrapped-zip", "zip", R, "a gzip file holding the package")
def _gzip_zip(marker: str) -> bytes:
    return gzip.compress(make_zip(package()), mtime=0)


@case("empty-file", "zip", R, "zero bytes")
def _empty(marker: str) -> bytes:
    return b""


@case("directory-entry-with-data", "zip", R, "a directory entry that holds bytes")
def _dir_with_data(marker: str) -> bytes:
    return make_zip([*package(), Member("archive/res/", b"hidden")])


@case(
    "symlink-member",
    "zip",
    T,
    "an entry whose attributes make it a symbolic link to /etc/passwd",
    severity="medium",
    finding="link-member",
)
def _symlink(marker: str) -> bytes:
    link = Member("archive/res/link", b"/etc/passwd", external_attr=0o120777 << 16)
    return make_zip([*package(), link])


@case(
    "case-colliding-names",
    "zip",
    T,
    "res/Data.pkl and res/data.pkl",
    severity="medium",
    finding="case-collision",
)
def _case_collision(marker: str) -> bytes:
    evil = pickled(call(glob("builtins", "exec"), text(touch(marker))))
    return archive_with({"res/Data.pkl": evil})


# -- path: member names ----------------------------------------------------------------


def _named(name: bytes) -> Callable[[str], bytes]:
    def build(marker: str) -> bytes:
        return make_zip([*package(), Member(name, b"payload")])

    return build


for _name, _raw, _why in (
    ("zip-slip-dotdot", b"archive/../../evil.py", "'..' climbing out of the folder"),
    ("zip-slip-inner", b"archive/res/../../../etc/cron.d/x", "'..' inside a path"),
    ("absolute-inner-path", b"archive//etc/passwd", "an empty segment (absolute)"),
    ("backslash-traversal", b"archive/res\\..\\..\\evil.py", "backslashes"),
    ("nul-in-name", b"archive/res/a\x00.pkl", "a NUL character"),
    ("dot-segment", b"archive/./res/x", "a '.' segment"),
):
    case(_name, "path", R, f"a member name with {_why}")(_named(_raw))


@case("absolute-first-name", "path", R, "the first entry is /etc/passwd")
def _absolute_first(marker: str) -> bytes:
    return make_zip([Member("/etc/passwd", b"root"), *package()])


@case("no-folder", "path", R, "records not under one top-level folder")
def _no_folder(marker: str) -> bytes:
    return make_zip([Member("data.pkl", BENIGN), *package()])


@case(
    "control-chars-in-name",
    "path",
    T,
    "a name with a terminal escape sequence",
    severity="medium",
    finding="bad-name",
)
def _control_chars(marker: str) -> bytes:
    return archive_with({"res/\x1b[2J\x1b]0;pwned\x07.txt": b"hi"})


@case("deep-path", "path", T, "a module 5,000 folders deep")
def _deep_path(marker: str) -> bytes:
    return archive_with({"a/" * 5000 + "x.py": b"X = 1\n"})


# -- metadata --------------------------------------------------------------------------


@case("version-not-a-number", "metadata", R, ".data/version holds 'abc'")
def _version_text(marker: str) -> bytes:
    members = package()
    members[0].data = b"abc\n"
    return make_zip(members)


@case("version-huge", "metadata", R, ".data/version is 1 MiB")
def _version_huge(marker: str) -> bytes:
    members = package()
    members[0].data = b"6" + b" " * (1 << 20)
    return make_zip(members)


@case(
    "missing-extern-modules",
    "metadata",
    R,
    "no .data/extern_modules",
    severity="high",
)
def _no_externs(marker: str) -> bytes:
    members = package()
    del members[1]
    return make_zip(members)


@case(
    "extern-modules-not-utf8",
    "metadata",
    R,
    "the extern list is not UTF-8",
    severity="high",
)
def _externs_not_utf8(marker: str) -> bytes:
    return archive_with(externs=b"os\n\xff\xfe\n")


@case(
    "extern-self-grant",
    "metadata",
    F,
    "the extern list grants os, subprocess, builtins and ctypes, and the pickle "
    "calls os.system",
    severity="critical",
    finding="extern-grant",
    runs_on_load=True,
)
def _self_grant(marker: str) -> bytes:
    body = call(glob("os", "system"), text(f"touch {marker}"))
    return payload_archive(body, externs=b"os\nsubprocess\nbuiltins\nctypes\n")


# -- storage ---------------------------------------------------------------------------


#: What torch.package lists for a pickle of tensors.
TENSOR_EXTERNS = b"collections\ntorch._utils\ntorch\n"


def _storage_archive(body: bytes, storages: dict[str, bytes]) -> bytes:
    return archive_with(
        storages, pickle=pickled(body, version=2), externs=TENSOR_EXTERNS
    )


@case(
    "storage-numel-mismatch",
    "storage",
    M,
    "a float storage of 1,000 elements whose record holds 16 bytes",
    finding="storage-size",
)
def _numel_mismatch(marker: str) -> bytes:
    return _storage_archive(
        tensor("torch.FloatStorage", 0, 1000), {".data/0.storage": bytes(16)}
    )


@case(
    "storage-missing-record",
    "storage",
    M,
    "a storage id whose record does not exist",
    finding="missing-storage",
)
def _storage_missing(marker: str) -> bytes:
    return _storage_archive(tensor("torch.FloatStorage", 7, 4), {})


@case(
    "storage-negative-numel",
    "storage",
    M,
    "a storage of -1 elements",
    finding="bad-storage-id",
)
def _negative_numel(marker: str) -> bytes:
    pid = storage_id(glob("torch", "FloatStorage"), integer(0), integer(-1)) + BINPERSID
    return _storage_archive(pid, {".data/0.storage": bytes(16)})


@case(
    "storage-huge-numel",
    "storage",
    M,
    "a storage of 2**62 elements over a 16-byte record",
    finding="storage-size",
)
def _huge_numel(marker: str) -> bytes:
    return _storage_archive(
        tensor("torch.FloatStorage", 0, 1 << 62), {".data/0.storage": bytes(16)}
    )


@case(
    "storage-type-os-system",
    "storage",
    F,
    "a storage whose type is os.system",
    severity="critical",
)
def _storage_type_evil(marker: str) -> bytes:
    pid = storage_id(glob("os", "system"), integer(0), integer(4)) + BINPERSID
    return _storage_archive(pid, {".data/0.storage": bytes(16)})


@case(
    "storage-key-traversal",
    "storage",
    M,
    "a storage key '../../../etc/passwd'",
    finding="bad-storage-id",
)
def _storage_key_traversal(marker: str) -> bytes:
    pid = storage_id(
        glob("torch", "ByteStorage"), text("../../../etc/passwd"), integer(4)
    )
    return _storage_archive(pid + BINPERSID, {})


@case(
    "storage-aliasing",
    "storage",
    T,
    "one storage named as 4 floats and as 2 longs",
    severity="medium",
    finding="storage-aliasing",
)
def _aliasing(marker: str) -> bytes:
    body = (
        MARK
        + tensor("torch.FloatStorage", 0, 4)
        + tensor("torch.LongStorage", 0, 2)
        + b"l"
    )
    return _storage_archive(body, {".data/0.storage": bytes(16)})


@case(
    "storage-many-ids",
    "storage",
    T,
    "20,000 storage ids over one empty record (metadata exhaustion)",
)
def _many_ids(marker: str) -> bytes:
    pid = storage_id(get(0), integer(0), integer(0)) + BINPERSID
    first = storage_id(glob("torch", "FloatStorage") + put(0), integer(0), integer(0))
    body = EMPTY_LIST + MARK + first + BINPERSID + pid * 19_999 + b"e"
    return _storage_archive(body, {".data/0.storage": b""})


# -- malformed pickles -----------------------------------------------------------------

#: Known loader behaviour: CPython's C unpickler allocates a declared length before
#: reading it, so the allocator, not a check, refuses 2**62 bytes.
_ALLOCATES = (
    ("load_pickle",),
    "the C unpickler allocates the declared length before reading; the allocation "
    "fails at once (MemoryError), so no memory is used",
)
#: A real hazard in hermetic's plain loader (not torch's, whose memo is a dict).
_MEMO_HAZARD = (
    ("load_pickle",),
    "hermetic's plain loader uses CPython's C unpickler, which sizes its memo array "
    "by the largest index it is given (16 GiB and a minute of page faults for 2**30)",
)


def _raw_pickle(data: bytes) -> Callable[[str], bytes]:
    def build(marker: str) -> bytes:
        return archive_with(pickle=data)

    return build


for _name, _data, _why, *_hazard in (
    ("truncated-pickle", BENIGN[: len(BENIGN) // 2], "a pickle cut in half"),
    ("unknown-opcode", b"\x80\x04\xff.", "an opcode byte no protocol has"),
    ("protocol-6", b"\x80\x06N.", "PROTO 6"),
    ("stack-global-at-offset-0", b"\x93.", "STACK_GLOBAL on an empty stack"),
    ("stack-global-non-str", b"\x80\x04K\x01K\x02\x93.", "STACK_GLOBAL of two ints"),
    ("memo-get-unset", b"\x80\x04h\x09.", "BINGET of a slot never stored"),
    (
        "memo-poison-none",
        b"\x80\x04Nq\x00h\x00h\x00\x93.",
        "STACK_GLOBAL of None from the memo",
    ),
    (
        "huge-binunicode8",
        b"\x80\x04\x8d" + struct.pack("<Q", 1 << 62) + b"os.",
        "BINUNICODE8 claiming 2**62 bytes",
        _ALLOCATES,
    ),
    (
        "huge-binbytes8",
        b"\x80\x04\x8e" + struct.pack("<Q", (1 << 63) - 1) + b"x.",
        "BINBYTES8 claiming 2**63-1 bytes",
        _ALLOCATES,
    ),
    (
        "huge-bytearray8",
        b"\x80\x05\x96" + struct.pack("<Q", 1 << 40) + b"x.",
        "BYTEARRAY8 claiming 1 TiB",
        (("load_pickle",), _ALLOCATES[1]),
    ),
    (
        "bytearray8-2gib",
        b"\x80\x05\x96" + struct.pack("<Q", 2 << 30) + b"x.",
        "BYTEARRAY8 claiming 2 GiB, an allocation that succeeds",
        (
            ("load_pickle",),
            "the C unpickler (and pure-Python pickle, as in torch.package) makes a "
            "zeroed bytearray of the declared length before reading: 2 GiB resident "
            "for an 18-byte pickle; the safe loader reads first and refuses",
        ),
    ),
    (
        "negative-binstring",
        b"T\xff\xff\xff\xffx.",
        "BINSTRING with length -1 (4 GiB to an unsigned reader)",
        _ALLOCATES,
    ),
    ("long-text-int", b"I" + b"9" * 100_000 + b"\n.", "a 100,000-digit INT"),
    ("out-of-band-buffer", b"\x80\x05\x97.", "NEXT_BUFFER without buffers"),
    ("pop-mark-without-mark", b"\x80\x041N.", "POP_MARK with no MARK"),
    ("setitems-odd", b"\x80\x04}(K\x01u.", "SETITEMS with an odd item count"),
    ("ext-code-zero", b"\x80\x02\x82\x00.", "EXT1 0"),
):
    hazard = _hazard[0] if _hazard else None
    case(_name, "malformed", M, _why, memory_hazard=hazard)(_raw_pickle(_data))


@case(
    "long-global-name",
    "malformed",
    M,
    "a GLOBAL whose module name is 100,000 characters",
)
def _long_global(marker: str) -> bytes:
    return archive_with(pickle=b"c" + b"a" * 100_000 + b"\nb\n.")


@case(
    "frame-length-lie",
    "malformed",
    F,
    "a FRAME claiming 2**60 bytes before a valid pickle",
    severity="medium",
    finding="frame-mismatch",
    memory_hazard=_ALLOCATES,
)
def _frame_lie(marker: str) -> bytes:
    return archive_with(pickle=b"\x80\x04\x95" + struct.pack("<Q", 1 << 60) + b"N.")


@case(
    "persistent-id-text",
    "malformed",
    F,
    "a protocol 0 persistent id 'foo'",
    severity="medium",
    finding="persistent-id",
)
def _persid_text(marker: str) -> bytes:
    return archive_with(pickle=b"Pfoo\n.")


@case(
    "trailing-garbage",
    "malformed",
    T,
    "junk after STOP",
    severity="medium",
    finding="trailing-data",
)
def _trailing_garbage(marker: str) -> bytes:
    return archive_with(pickle=BENIGN + b"\x00\xffjunk")


# -- resource exhaustion ---------------------------------------------------------------


@case(
    "memo-bomb-long-binput",
    "resource",
    F,
    "LONG_BINPUT 2**30: CPython's C unpickler allocates 16 GiB for the memo",
    severity="high",
    finding="memo-bomb",
    memory_hazard=_MEMO_HAZARD,
)
def _memo_bomb(marker: str) -> bytes:
    return archive_with(pickle=b"\x80\x02Nr" + struct.pack("<I", 1 << 30) + b".")


@case(
    "memo-bomb-text-put",
    "resource",
    F,
    "PUT 1073741824 (protocol 0)",
    severity="high",
    finding="memo-bomb",
    memory_hazard=_MEMO_HAZARD,
)
def _memo_bomb_text(marker: str) -> bytes:
    return archive_with(pickle=b"Np1073741824\n.")


@case("recursion-bomb-lists", "resource", T, "100,000 nested lists")
def _nested_lists(marker: str) -> bytes:
    depth = 100_000
    return archive_with(
        pickle=b"\x80\x04" + EMPTY_LIST * depth + b"a" * (depth - 1) + STOP
    )


@case("mark-bomb", "resource", T, "500,000 MARKs before STOP")
def _marks(marker: str) -> bytes:
    return archive_with(pickle=b"\x80\x04" + MARK * 500_000 + b"N.")


@case("dup-bomb", "resource", T, "500,000 DUPs of one value")
def _dups(marker: str) -> bytes:
    return archive_with(pickle=b"\x80\x04N" + b"2" * 500_000 + b".")


@case(
    "billion-laughs-memo",
    "resource",
    T,
    "30 levels of lists holding ten references to the level below",
)
def _laughs(marker: str) -> bytes:
    body = bytearray(EMPTY_LIST + b"r" + struct.pack("<I", 0))
    for level in range(1, 31):
        body += EMPTY_LIST + MARK + (b"j" + struct.pack("<I", level - 1)) * 10 + b"e"
        body += b"r" + struct.pack("<I", level)
    return archive_with(pickle=b"\x80\x04" + bytes(body) + STOP)


@case("many-members", "resource", T, "10,000 tiny records")
def _many_members(marker: str) -> bytes:
    return archive_with({f"res/r{i}.txt": b"x" for i in range(10_000)})


# -- payloads: pickles that run code ---------------------------------------------------


def _payload(body: Callable[[str], bytes], **options: object) -> Callable[[str], bytes]:
    def build(marker: str) -> bytes:
        return payload_archive(body(marker), **options)  # type: ignore[arg-type]

    return build


def _shell(marker: str) -> bytes:
    return text(f"touch {marker}")


_PAYLOADS: list[tuple[str, str, Callable[[str], bytes], bool, str]] = [
    (
        "global-os-system",
        "GLOBAL os system",
        lambda m: call(glob("os", "system"), _shell(m)),
        False,
        "critical",
    ),
    (
        "stack-global-posix-system",
        "STACK_GLOBAL posix system",
        lambda m: call(stack_global("posix", "system"), _shell(m)),
        False,
        "critical",
    ),
    (
        "inst-nt-system",
        "INST nt system",
        lambda m: MARK + _shell(m) + b"int\nsystem\n",
        False,
        "critical",
    ),
    (
        "obj-subprocess-popen",
        "OBJ subprocess.Popen",
        lambda m: MARK + glob("subprocess", "Popen") + text("touch") + b"o",
        False,
        "critical",
    ),
    (
        "builtins-eval-memo-indirection",
        "builtins.eval through STACK_GLOBAL with its names stored and read via the "
        "memo",
        lambda m: (
            text("builtins")
            + put(1)
            + text("eval")
            + put(2)
            + b"0"
            + b"0"
            + get(1)
            + get(2)
            + STACK_GLOBAL
            + MARK
            + text(touch(m))
            + TUPLE
            + REDUCE
        ),
        True,
        "critical",
    ),
    (
        "builtins-exec",
        "GLOBAL builtins exec",
        lambda m: call(glob("builtins", "exec"), text(touch(m))),
        True,
        "critical",
    ),
    (
        "builtins-compile",
        "exec(compile(...))",
        lambda m: call(
            glob("builtins", "exec"),
            call(
                glob("builtins", "compile"), text(touch(m)), text("<x>"), text("exec")
            ),
        ),
        True,
        "critical",
    ),
    (
        "import-getattr-chain",
        "getattr(__import__('os'), 'system')('touch ...')",
        lambda m: call(
            call(
                glob("builtins", "getattr"),
                call(glob("builtins", "__import__"), text("os")),
                text("system"),
            ),
            _shell(m),
        ),
        True,
        "critical",
    ),
    (
        "python2-builtin-eval",
        "GLOBAL __builtin__ eval (protocol 2 maps it to builtins.eval)",
        lambda m: call(glob("__builtin__", "eval"), text(touch(m))),
        False,
        "critical",
    ),
    (
        "python2-commands",
        "GLOBAL commands getoutput (mapped to subprocess)",
        lambda m: call(glob("commands", "getoutput"), _shell(m)),
        False,
        "critical",
    ),
    (
        "setitem-os-environ",
        "SETITEM on os.environ",
        lambda m: glob("os", "environ") + text("HERMETIC_PWNED") + text("1") + b"s",
        False,
        "critical",
    ),
    (
        "build-on-global",
        "BUILD on a class: setattr on the class itself",
        lambda m: (
            glob("collections", "OrderedDict")
            + NONE
            + EMPTY_DICT
            + text("__repr__")
            + glob("builtins", "exec")
            + b"s"
            + TUPLE2
            + BUILD
        ),
        False,
        "critical",
    ),
    (
        "setitems-on-list",
        "SETITEMS on a list (an index assignment)",
        lambda m: EMPTY_LIST + MARK + integer(0) + text("x") + b"u",
        False,
        "high",
    ),
    (
        "appends-on-dict",
        "APPENDS on a dict",
        lambda m: EMPTY_DICT + MARK + text("x") + b"e",
        False,
        "high",
    ),
    (
        "appends-on-global",
        "APPENDS on an imported object calls its extend/append",
        lambda m: glob("sys", "path") + MARK + text("/tmp/evil") + b"e",
        False,
        "critical",
    ),
    (
        "reduce-package-exec-loader",
        "a reduce_package persistent id whose loader is builtins.exec",
        lambda m: (
            MARK
            + text("reduce_package")
            + integer(1)
            + glob("builtins", "exec")
            + text(touch(m))
            + TUPLE1
            + TUPLE
            + BINPERSID
        ),
        True,
        "critical",
    ),
    (
        "reduce-package-computed-loader",
        "a reduce_package id whose loader is getattr(...)'s result",
        lambda m: (
            MARK
            + text("reduce_package")
            + integer(1)
            + call(
                glob("builtins", "getattr"), glob("builtins", "__builtins__"), text("x")
            )
            + EMPTY_DICT
            + TUPLE
            + BINPERSID
        ),
        True,
        "critical",
    ),
    (
        "exception-oriented",
        "exec runs, then the pickle breaks on purpose",
        lambda m: call(glob("builtins", "exec"), text(touch(m))) + b"\xff",
        True,
        "critical",
    ),
]

for _name, _why, _body, _runs, _severity in _PAYLOADS:
    case(_name, "payload", F, _why, severity=_severity, runs_on_load=_runs)(
        _payload(_body)
    )


@case(
    "trailing-evil-pickle",
    "payload",
    F,
    "a benign pickle, STOP, then a second pickle calling exec",
    severity="critical",
    finding="trailing-data",
)
def _trailing_evil(marker: str) -> bytes:
    evil = pickled(call(glob("builtins", "exec"), text(touch(marker))))
    return archive_with(pickle=BENIGN + evil)


@case(
    "interned-source-runs-on-import",
    "payload",
    F,
    "packaged module-level code creates the marker; the pickle names its class",
    severity="medium",
    finding="source-import",
    module="evilmod",
    runs_on_load=True,
)
def _source_payload(marker: str) -> bytes:
    source = f"import os\nos.mkdir({marker!r})\nclass Thing:\n    pass\n".encode()
    body = call(glob("evilmod", "Thing"))
    return archive_with({"evilmod.py": source}, pickle=pickled(body), externs=b"os\n")


@case(
    "reduce-package-packaged-loader",
    "payload",
    F,
    "a reduce_package id whose loader is packaged code that runs on import",
    severity="high",
    finding="reduce-package",
    module="evilpkg",
    runs_on_load=True,
)
def _packaged_loader(marker: str) -> bytes:
    source = f"import os\nos.mkdir({marker!r})\ndef load(importer, *a):\n    return a\n"
    body = (
        MARK + text("reduce_package") + integer(1) + glob("evilpkg", "load")
        + EMPTY_DICT + TUPLE1 + TUPLE + BINPERSID
    )  # fmt: skip
    return archive_with(
        {"evilpkg/__init__.py": source.encode()}, pickle=pickled(body), externs=b"os\n"
    )


# -- bypass: the scanner bypass classes ------------------------------------------------

_PRIMITIVES = [
    # (case, module, name, argument builder, severity): denylist gaps (3.2.1)
    ("importlib-import-module", "importlib", "import_module", "os", "critical"),
    ("inspect-getattr-static", "inspect", "getattr_static", None, "critical"),
    ("marshal-loads", "marshal", "loads", b"\xe3", "critical"),
    ("types-function-type", "types", "FunctionType", None, "critical"),
    ("codeop-compile-command", "codeop", "compile_command", "x = 1", "critical"),
    ("cprofile-run", "cProfile", "run", "x = 1", "critical"),
    ("profile-run", "profile", "run", "x = 1", "critical"),
    ("timeit-timeit", "timeit", "timeit", "x = 1", "critical"),
    ("ctypes-cdll", "ctypes", "CDLL", "libc.so.6", "critical"),
    ("zipimport-zipimporter", "zipimport", "zipimporter", "/tmp/x.zip", "critical"),
    ("operator-methodcaller", "operator", "methodcaller", "system", "critical"),
    ("operator-attrgetter", "operator", "attrgetter", "system", "critical"),
    ("functools-partial", "functools", "partial", None, "high"),
    ("atexit-register", "atexit", "register", None, "high"),
    ("threading-thread", "threading", "Thread", None, "high"),
    ("posixsubprocess-fork-exec", "_posixsubprocess", "fork_exec", None, "critical"),
    ("spawnv-passfds", "multiprocessing.util", "spawnv_passfds", "touch", "critical"),
    ("pkgutil-resolve-name", "pkgutil", "resolve_name", "os:system", "critical"),
    ("runpy-run-path", "runpy", "run_path", "/tmp/x.py", "critical"),
    ("code-interactive", "code", "InteractiveInterpreter", None, "critical"),
    ("pydoc-locate", "pydoc", "locate", "os.system", "critical"),
    ("site-addsitedir", "site", "addsitedir", "/tmp", "critical"),
    ("torch-collect-env-run", "torch.utils.collect_env", "run", "touch", "critical"),
    ("pandas-read-csv", "pandas", "read_csv", "http://127.0.0.1:9/x", "high"),
    ("webbrowser-open", "webbrowser", "open", "file:///etc/passwd", "critical"),
    ("shutil-rmtree", "shutil", "rmtree", "/tmp/nothing-here", "high"),
    ("socket-connection", "socket", "create_connection", None, "high"),
    (
        "asyncio-subprocess-shell",
        "asyncio",
        "create_subprocess_shell",
        "touch",
        "critical",
    ),
    ("sys-modules", "sys", "modules", None, "critical"),
    ("builtins-open", "builtins", "open", "/tmp/hermetic-corpus-never", "critical"),
    ("builtins-breakpoint", "builtins", "breakpoint", None, "critical"),
    ("scanner-tamper-hermetic", "hermetic._scan_rules", "rate_global", None, "high"),
    ("scanner-tamper-fickling", "fickling", "load", None, "high"),
    ("scanner-tamper-picklescan", "picklescan.scanner", "scan_bytes", None, "high"),
    ("nested-torch-load", "torch", "load", b"\x80\x02N.", "critical"),
    ("nested-numpy-load", "numpy", "load", "/nonexistent.npy", "critical"),
    ("nested-dill-loads", "dill", "loads", b"\x80\x02N.", "critical"),
]


def _primitive(
    module: str, name: str, argument: str | bytes | None
) -> Callable[[str], bytes]:
    def build(marker: str) -> bytes:
        if argument is None:
            body = glob(module, name)
        elif isinstance(argument, bytes):
            body = call(glob(module, name), binary(argument))
        else:
            body = call(glob(module, name), text(argument))
        return payload_archive(body)

    return build


for _name, _module, _attr, _argument, _severity in _PRIMITIVES:
    case(
        _name,
        "bypass",
        F,
        f"a denylist gap: {_module}.{_attr}",
        severity=_severity,
        # builtins and numpy are implicitly extern in hermetic and torch.package.
        runs_on_load=_module in ("numpy", "builtins"),
    )(_primitive(_module, _attr, _argument))


@case(
    "attribute-walk-subclasses",
    "bypass",
    F,
    "GLOBAL 'builtins print.__class__.__base__.__subclasses__': every name is "
    "builtins, the walk reaches any class",
    severity="critical",
    runs_on_load=True,
)
def _attribute_walk(marker: str) -> bytes:
    return payload_archive(
        call(glob("builtins", "print.__class__.__base__.__subclasses__"))
    )


@case(
    "memo-confusion-binput-memoize",
    "bypass",
    F,
    "BINPUT 1 then MEMOIZE: MEMOIZE stores at len(memo) == 1, overwriting 'print' "
    "with 'eval'; a scanner counting MEMOIZEs sees builtins.print",
    severity="critical",
    runs_on_load=True,
)
def _memo_confusion(marker: str) -> bytes:
    body = (
        text("print") + put(1) + text("eval") + MEMOIZE + b"0" + b"0"
        + text("builtins") + get(1) + STACK_GLOBAL
        + MARK + text(touch(marker)) + TUPLE + REDUCE
    )  # fmt: skip
    return payload_archive(body)


@case(
    "memo-overwrite-put",
    "bypass",
    F,
    "a memo slot written twice: a scanner tracking the first PUT's text sees print",
    severity="critical",
    runs_on_load=True,
)
def _memo_overwrite(marker: str) -> bytes:
    body = (
        text("print") + put(3) + b"0" + text("eval") + put(3) + b"0"
        + text("builtins") + get(3) + STACK_GLOBAL
        + MARK + text(touch(marker)) + TUPLE + REDUCE
    )  # fmt: skip
    return payload_archive(body)


@case(
    "stack-global-computed-rot13",
    "bypass",
    F,
    "STACK_GLOBAL whose names come from codecs.decode(..., 'rot13')",
    severity="critical",
    finding="computed-global",
)
def _rot13(marker: str) -> bytes:
    decode = glob("codecs", "decode")
    body = call(
        call(decode, text("bf"), text("rot13"))
        + call(decode, text("flfgrz"), text("rot13"))
        + STACK_GLOBAL,
        _shell(marker),
    )
    return payload_archive(body)


@case(
    "stack-global-computed-str",
    "bypass",
    F,
    "STACK_GLOBAL whose names are str(b'builtins', 'ascii') and str(b'exec', 'ascii')",
    severity="critical",
    finding="computed-global",
    runs_on_load=True,
)
def _computed_str(marker: str) -> bytes:
    make = glob("builtins", "str")
    body = call(
        call(make, binary(b"builtins"), text("ascii"))
        + call(make, binary(b"exec"), text("ascii"))
        + STACK_GLOBAL,
        text(touch(marker)),
    )
    return payload_archive(body)


@case(
    "stack-global-from-global",
    "bypass",
    F,
    "STACK_GLOBAL whose module name is the value of the global builtins.__name__",
    severity="critical",
    finding="computed-global",
    runs_on_load=True,
)
def _from_global(marker: str) -> bytes:
    body = call(
        glob("builtins", "__name__") + text("exec") + STACK_GLOBAL, text(touch(marker))
    )
    return payload_archive(body)


@case(
    "escaped-string-operands",
    "bypass",
    F,
    "protocol 0 STRING operands with escapes ('o\\x73') feeding STACK_GLOBAL",
    severity="critical",
)
def _escaped(marker: str) -> bytes:
    body = (
        b"S'o\\x73'\nS'sy\\x73tem'\n"
        + STACK_GLOBAL
        + MARK
        + _shell(marker)
        + TUPLE
        + REDUCE
    )
    return payload_archive(body)


@case(
    "binstring-operands",
    "bypass",
    F,
    "SHORT_BINSTRING operands (decoded as str by loaders) feeding STACK_GLOBAL",
    severity="critical",
    runs_on_load=True,
)
def _binstring(marker: str) -> bytes:
    body = (
        b"U\x08builtins" + b"U\x04exec" + STACK_GLOBAL
        + MARK + text(touch(marker)) + TUPLE + REDUCE
    )  # fmt: skip
    return payload_archive(body, version=2)


for _name, _opcode in (("ext1-code", b"\x82\x01"), ("ext2-code", b"\x83\x01\x02")):
    case(
        _name,
        "bypass",
        F,
        "a copyreg extension code",
        severity="high",
        finding="ext-code",
    )(_payload(lambda m, op=_opcode: call(op, _shell(m)), version=2))


@case(
    "ext4-after-add-extension",
    "bypass",
    F,
    "copyreg.add_extension('builtins', 'exec', 0xF00) then EXT4 0xF00",
    severity="critical",
    finding="ext-code",
)
def _ext4(marker: str) -> bytes:
    register = call(
        glob("copyreg", "add_extension"), text("builtins"), text("exec"), b"M\x00\x0f"
    )
    body = (
        register + b"0" + call(b"\x84" + struct.pack("<i", 0xF00), text(touch(marker)))
    )
    return payload_archive(body, version=2)


@case(
    "nested-pickle-loads",
    "bypass",
    F,
    "pickle.loads of bytes that call os.system",
    severity="critical",
    finding="nested-pickle",
)
def _nested(marker: str) -> bytes:
    inner = pickled(call(glob("os", "system"), _shell(marker)), version=2)
    return payload_archive(call(glob("pickle", "loads"), binary(inner)))


@case(
    "nested-underscore-pickle",
    "bypass",
    F,
    "_pickle.loads of bytes that call builtins.exec",
    severity="critical",
    finding="nested-pickle",
)
def _nested_c(marker: str) -> bytes:
    inner = pickled(call(glob("builtins", "exec"), text(touch(marker))), version=2)
    return payload_archive(call(glob("_pickle", "loads"), binary(inner)))


@case(
    "nested-embedded-bytes",
    "bypass",
    F,
    "a bytes value that holds a pickle calling exec, stored for a later gadget",
    severity="critical",
    finding="nested-pickle",
)
def _embedded(marker: str) -> bytes:
    inner = pickled(call(glob("builtins", "exec"), text(touch(marker))), version=4)
    return payload_archive(EMPTY_DICT + text("blob") + binary(inner) + b"s")


@case(
    "unicode-confusable-module",
    "bypass",
    F,
    "a GLOBAL naming 'os' spelled with a Cyrillic o",
    severity="medium",
)
def _confusable(marker: str) -> bytes:
    return payload_archive(call(glob("\u043es", "system"), _shell(marker)))


# -- hidden: pickles under other names -------------------------------------------------


def _os_system_pickle(marker: str) -> bytes:
    return pickled(call(glob("os", "system"), _shell(marker)), version=2)


@case(
    "hidden-pickle-extensionless",
    "hidden",
    F,
    "res/config, no extension, holds a pickle calling os.system",
    severity="critical",
    finding="hidden-pickle",
)
def _hidden_plain(marker: str) -> bytes:
    return archive_with({"res/config": _os_system_pickle(marker)})


@case(
    "hidden-pickle-in-storage",
    "hidden",
    F,
    ".data/0.storage holds a pickle calling os.system",
    severity="critical",
    finding="hidden-pickle",
)
def _hidden_storage(marker: str) -> bytes:
    return archive_with({".data/0.storage": _os_system_pickle(marker)})


@case(
    "gzip-compressed-pickle",
    "hidden",
    F,
    "res/model.bin is a gzip-compressed pickle calling os.system",
    severity="critical",
    finding="hidden-pickle",
)
def _gzip_pickle(marker: str) -> bytes:
    return archive_with(
        {"res/model.bin": gzip.compress(_os_system_pickle(marker), mtime=0)}
    )


@case(
    "protocol0-text-resource",
    "hidden",
    F,
    "res/notes.txt is a protocol 0 pickle calling os.system",
    severity="critical",
    finding="hidden-pickle",
)
def _text_pickle(marker: str) -> bytes:
    return archive_with(
        {"res/notes.txt": f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()}
    )


@case(
    "shadowed-stdlib-module",
    "hidden",
    F,
    "the archive packages its own 'os' whose system() runs code",
    severity="medium",
    finding="shadowed-module",
    runs_on_load=True,
)
def _shadow(marker: str) -> bytes:
    source = f"def system(cmd):\n    open({marker!r}, 'w').close()\n".encode()
    return archive_with(
        {"os.py": source}, pickle=pickled(call(glob("os", "system"), text("x")))
    )


# -- control: benign archives ----------------------------------------------------------


@case("benign-dict", "control", B, "a dict of str to int")
def _benign(marker: str) -> bytes:
    return archive_with()


@case(
    "benign-tensor",
    "control",
    B,
    "a float tensor over a storage of the right size, plus an OrderedDict",
    needs=("numpy",),  # the corpus runs without torch: tensors load as arrays
)
def _benign_tensor(marker: str) -> bytes:
    return _storage_archive(
        tensor("torch.FloatStorage", 0, 4), {".data/0.storage": bytes(16)}
    )
