"""Integrity: a manifest of every record's SHA-256, checked on load; signatures.

The sample archive is drawn here; every record of it is changed by one byte in turn:

    package/
    ├── .data/0.storage            (NumPy array, when NumPy is installed)
    ├── res/obj.pkl  res/note.txt  res/blob.bin  res/empty.bin
    ├── intmod/__init__.py  intmod/util.py
    ├── .data/extern_modules  .data/python_version
    ├── .data/version  byteorder  .data/serialization_id
    └── .data/hermetic/manifest.json  (written last: lists all of the above)
"""

from __future__ import annotations

import importlib.util
import io
import zipfile

import pytest

import hermetic
from helpers import block_imports_prelude, run_python
from hermetic import (
    IntegrityError,
    PackageExporter,
    PackageImporter,
    SignatureError,
)
from hermetic._archive_reader import ArchiveReader
from hermetic._archive_writer import ArchiveWriter

MANIFEST = ".data/hermetic/manifest.json"
SIGNATURE = ".data/hermetic/signature.json"
HAS_NUMPY = importlib.util.find_spec("numpy") is not None

RECORDS = [
    *([".data/0.storage"] if HAS_NUMPY else []),
    "res/obj.pkl",
    "res/note.txt",
    "res/blob.bin",
    "res/empty.bin",
    "intmod/__init__.py",
    "intmod/util.py",
    ".data/extern_modules",
    ".data/python_version",
    ".data/hermetic/environment.json",
    ".data/version",
    "byteorder",
    ".data/serialization_id",
    MANIFEST,
]


def write_sample(path, src_tree) -> None:
    src_tree({"intmod/__init__.py": "", "intmod/util.py": "VALUE = 41\n"})
    payload: dict[str, object] = {"numbers": [1, 2.5], "text": "x"}
    if HAS_NUMPY:
        import numpy as np

        payload["array"] = np.arange(6, dtype="<i4")
    with PackageExporter(path) as exporter:
        exporter.save_pickle("res", "obj.pkl", payload)
        exporter.save_text("res", "note.txt", "a note")
        exporter.save_binary("res", "blob.bin", b"\x00\x01\x02")
        exporter.save_binary("res", "empty.bin", b"")
        exporter.intern("intmod.**")
        exporter.save_module("intmod.util")


@pytest.fixture
def sample(archive, src_tree):
    write_sample(archive, src_tree)
    return archive


def rewrite(source, target, *, change: str | None = None, add=None, drop=None):
    """Copy an archive record by record, changing one byte of record *change*.

    The copy has correct CRCs: it is a deliberate edit, not line noise.
    """
    with ArchiveReader(source) as reader:
        writer = ArchiveWriter(target)
        writer.archive_name = reader.archive_name
        with writer:
            for name in reader.record_names():
                if name == drop:
                    continue
                data = bytearray(reader.read(name))
                if name == change:
                    if data:
                        data[len(data) // 2] ^= 0x01
                    else:
                        data = bytearray(b"\x00")
                writer.write_record(name, bytes(data))
            for name, data in (add or {}).items():
                writer.write_record(name, data)
    return target


def flip_in_place(path, name):
    """Flip one byte of record *name* in the file itself (its CRC now lies)."""
    with ArchiveReader(path) as reader:
        offset, size = reader.record_span(name)
    with open(path, "r+b") as file:
        file.seek(offset + size // 2)
        byte = file.read(1)[0]
        file.seek(offset + size // 2)
        file.write(bytes([byte ^ 0x01]))


# -- the manifest ----------------------------------------------------------------------


def test_sample_has_every_record_listed_here(sample):
    """The parametrized record list is the sample's, manifest last."""
    with ArchiveReader(sample) as reader:
        assert sorted(reader.record_names()) == sorted(RECORDS)
        assert reader.record_names()[-1] == MANIFEST


def test_manifest_lists_every_other_record(sample):
    """The manifest has the size and SHA-256 of every record but itself."""
    import hashlib
    import json

    with ArchiveReader(sample) as reader:
        manifest = json.loads(reader.read(MANIFEST))
        assert set(manifest["records"]) == set(RECORDS) - {MANIFEST}
        for name, entry in manifest["records"].items():
            data = reader.read(name)
            assert entry == {
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
            }
    hermetic.verify_archive(sample)


def test_identical_input_gives_identical_bytes(tmp_path, src_tree):
    """The manifest keeps export deterministic: same saves, same bytes."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write_sample(tmp_path / "a" / "same.pt", src_tree)
    write_sample(tmp_path / "b" / "same.pt", src_tree)
    first = (tmp_path / "a" / "same.pt").read_bytes()
    assert first == (tmp_path / "b" / "same.pt").read_bytes()
    assert MANIFEST.encode() in first


@pytest.mark.parametrize("record", RECORDS)
def test_one_byte_change_to_any_record_fails_verification(sample, tmp_path, record):
    """Changing one byte of any record (CRCs fixed up) is caught, naming the record."""
    changed = rewrite(sample, tmp_path / "package.pt", change=record)
    with pytest.raises(IntegrityError) as info:
        hermetic.verify_archive(changed)
    assert info.value.record == record
    assert info.value.archive == str(changed)


EMPTY_RECORDS = {"res/empty.bin", "intmod/__init__.py"}


@pytest.mark.parametrize("record", [r for r in RECORDS if r not in EMPTY_RECORDS])
def test_one_byte_flipped_in_the_file_fails_verification(sample, record):
    """Flipping a byte on disk (stale CRC) is caught too, naming the record.

    The version record and the manifest are read with their CRC checked before any
    digest is compared, so for them the error is the CRC's ArchiveError.
    """
    flip_in_place(sample, record)
    with pytest.raises(hermetic.ArchiveError) as info:
        hermetic.verify_archive(sample)
    assert info.value.record == record
    if record not in (".data/version", MANIFEST):
        assert isinstance(info.value, IntegrityError)


@pytest.mark.parametrize(
    ("record", "load"),
    [
        ("res/obj.pkl", lambda imp: imp.load_pickle("res", "obj.pkl")),
        ("res/note.txt", lambda imp: imp.load_text("res", "note.txt")),
        ("intmod/util.py", lambda imp: imp.import_module("intmod.util")),
        ("intmod/util.py", lambda imp: imp.get_source("intmod.util")),
        (".data/python_version", lambda imp: imp.python_version()),
        (".data/extern_modules", lambda imp: None),
        (".data/version", lambda imp: None),
        *(
            [(".data/0.storage", lambda imp: imp.load_pickle("res", "obj.pkl"))]
            if HAS_NUMPY
            else []
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_importer_refuses_a_changed_record_when_it_reads_it(
    sample, tmp_path, record, load
):
    """The importer hashes each record when first read, before parsing it."""
    changed = rewrite(sample, tmp_path / "package.pt", change=record)
    with pytest.raises(IntegrityError) as info:
        open_and_load(changed, load)
    assert info.value.record == record


def open_and_load(path, load) -> None:
    # verify="all" so that storages mapped rather than read are hashed too.
    importer = PackageImporter(path, verify="all")  # names, sizes, version record
    assert importer.integrity == "checked"
    load(importer)


@pytest.mark.skipif(not HAS_NUMPY, reason="needs numpy for a storage record")
def test_mapped_storages_are_hashed_only_when_asked(sample, tmp_path):
    """A mapped storage is not read, so not hashed, unless verify="all"."""
    changed = rewrite(sample, tmp_path / "package.pt", change=".data/0.storage")
    assert PackageImporter(changed).load_pickle("res", "obj.pkl") is not None
    with pytest.raises(IntegrityError) as info:
        PackageImporter(changed, verify="all").load_pickle("res", "obj.pkl")
    assert info.value.record == ".data/0.storage"
    with pytest.raises(IntegrityError):
        hermetic.verify_archive(changed)


def test_unread_records_are_not_hashed_on_open(sample, tmp_path):
    """Opening checks names and sizes only: a changed record is found when read."""
    changed = rewrite(sample, tmp_path / "package.pt", change="res/blob.bin")
    importer = PackageImporter(changed)
    assert importer.load_text("res", "note.txt") == "a note"
    with pytest.raises(IntegrityError, match="SHA-256 differs"):
        importer.load_binary("res", "blob.bin")


def test_added_and_removed_records_are_named(sample, tmp_path):
    """A record added after export, or one missing, fails at open."""
    added = rewrite(sample, tmp_path / "added.pt", add={"res/extra.py": b"import os"})
    with pytest.raises(IntegrityError, match="not in the manifest") as info:
        PackageImporter(added)
    assert info.value.record == "res/extra.py"
    removed = rewrite(sample, tmp_path / "removed.pt", drop="res/blob.bin")
    with pytest.raises(IntegrityError, match="archive lacks it") as info:
        hermetic.verify_archive(removed)
    assert info.value.record == "res/blob.bin"


def test_verify_false_skips_the_checks(sample, tmp_path):
    """verify=False loads a changed archive, and says it is unverified."""
    changed = rewrite(sample, tmp_path / "package.pt", change="res/note.txt")
    importer = PackageImporter(changed, verify=False)
    assert importer.integrity == "unverified"
    assert importer.load_text("res", "note.txt") != "a note"


def test_archive_without_manifest_loads_unverified(tmp_path):
    """An archive laid out as torch writes it (no manifest) loads as before."""
    path = tmp_path / "plain.pt"
    with ArchiveWriter(path) as writer:
        writer.write_record("res/a.txt", b"hello")
        writer.write_record(".data/extern_modules", b"\n")
    importer = PackageImporter(path)
    assert importer.integrity == "unverified"
    assert importer.load_text("res", "a.txt") == "hello"
    with pytest.raises(IntegrityError, match="has no manifest"):
        hermetic.verify_archive(path)


def test_unzipped_package_is_checked_too(sample, tmp_path):
    """An unzipped folder with a manifest is checked file by file."""
    folder = tmp_path / "unzipped"
    with zipfile.ZipFile(sample) as zf:
        zf.extractall(folder)
    root = folder / "package"
    assert PackageImporter(root).integrity == "checked"
    (root / "res" / "note.txt").write_text("a nOte")
    with pytest.raises(IntegrityError) as info:
        PackageImporter(root).load_text("res", "note.txt")
    assert info.value.record == "res/note.txt"


def test_damaged_manifest_is_blamed_on_the_manifest(sample, tmp_path):
    """A manifest edited by one byte does not blame an innocent record."""
    changed = rewrite(sample, tmp_path / "package.pt", change=MANIFEST)
    with pytest.raises(IntegrityError, match="manifest is damaged") as info:
        PackageImporter(changed)
    assert info.value.record == MANIFEST


# -- torch.package ---------------------------------------------------------------------


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore:TypedStorage is deprecated")
def test_archives_with_a_manifest_load_in_torch_package(tmp_path):
    """torch.package ignores .data/hermetic/: manifest and signature are harmless."""
    torch = pytest.importorskip("torch", reason="loads with torch.package")
    package = pytest.importorskip(
        "torch.package", reason="needs torch==2.13.0 (hermetic[torch])"
    )

    path = tmp_path / "model.pt"
    state = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.ones(3)}
    with PackageExporter(path) as exporter:
        exporter.save_pickle("model", "state.pkl", state)
        exporter.save_text("model", "note.txt", "hi")
    if importlib.util.find_spec("cryptography") is not None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import (
            Ed25519PrivateKey,
        )

        hermetic.sign(path, Ed25519PrivateKey.generate())
    importer = package.PackageImporter(str(path))
    loaded = importer.load_pickle("model", "state.pkl")
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    assert importer.load_text("model", "note.txt") == "hi"


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore:TypedStorage is deprecated")
def test_torch_written_archive_loads_unverified(tmp_path):
    """An archive torch.package wrote has no manifest: it loads, unverified."""
    torch = pytest.importorskip("torch", reason="torch writes the archive")
    package = pytest.importorskip(
        "torch.package", reason="needs torch==2.13.0 (hermetic[torch])"
    )

    path = tmp_path / "theirs.pt"
    with package.PackageExporter(str(path)) as exporter:
        exporter.save_pickle("model", "state.pkl", {"w": torch.ones(2)})
    importer = PackageImporter(path)
    assert importer.integrity == "unverified"
    assert torch.equal(importer.load_pickle("model", "state.pkl")["w"], torch.ones(2))
    with pytest.raises(IntegrityError, match="has no manifest"):
        hermetic.verify_archive(path)


# -- signatures ------------------------------------------------------------------------


@pytest.fixture
def keys():
    """A key pair, and a second private key that is not the publisher's."""
    ed25519 = pytest.importorskip(
        "cryptography.hazmat.primitives.asymmetric.ed25519",
        reason="signatures need the crypto extra (pip install 'hermetic[crypto]')",
    )
    private = ed25519.Ed25519PrivateKey.generate()
    return private, private.public_key(), ed25519.Ed25519PrivateKey.generate()


def pem(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    if hasattr(key, "private_bytes"):
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def records_of(path) -> dict[str, bytes]:
    with ArchiveReader(path) as reader:
        return {name: reader.read(name) for name in reader.record_names()}


def test_embedded_signature_verifies_and_keeps_every_record(sample, keys):
    """Signing adds one record; all others, manifest included, stay byte for byte."""
    private, public, _ = keys
    before = records_of(sample)
    assert hermetic.sign(sample, private) == sample
    after = records_of(sample)
    assert set(after) - set(before) == {SIGNATURE}
    assert all(after[name] == data for name, data in before.items())
    hermetic.verify(sample, public)
    hermetic.verify_archive(sample)
    importer = PackageImporter(sample)
    assert importer.integrity == "checked"
    assert importer.load_text("res", "note.txt") == "a note"


def test_detached_signature_leaves_the_archive_alone(sample, keys, tmp_path):
    """detached=True writes <archive>.sig; verify finds it, or takes it explicitly."""
    private, public, _ = keys
    before = sample.read_bytes()
    sig = hermetic.sign(sample, pem(private), detached=True)
    assert sig == sample.with_name(sample.name + ".sig")
    assert sample.read_bytes() == before
    hermetic.verify(sample, pem(public))
    key_file = tmp_path / "publisher.pem"
    key_file.write_bytes(pem(public))
    hermetic.verify(sample, key_file, signature=sig)
    hermetic.verify(sample, public, signature=sig.read_bytes())


def test_wrong_key_fails_signature_verification(sample, keys):
    """A signature made with another key fails with SignatureError."""
    private, _, other = keys
    hermetic.sign(sample, private)
    with pytest.raises(SignatureError, match="does not verify with key"):
        hermetic.verify(sample, other.public_key())


def test_altered_record_with_a_rebuilt_manifest_fails_the_signature(
    sample, keys, tmp_path
):
    """Weights edited and the manifest rebuilt to match: the signature catches it."""
    private, public, _ = keys
    hermetic.sign(sample, private, detached=True)
    signature = (tmp_path / "package.pt.sig").read_bytes()
    tampered = tmp_path / "tampered" / "package.pt"
    tampered.parent.mkdir()
    records = records_of(sample)
    with ArchiveWriter(tampered, manifest=True) as writer:
        for name, data in records.items():
            if name == MANIFEST:
                continue
            if name == "res/blob.bin":
                data = b"\x00\x01\x03"
            writer.write_record(name, data)
    hermetic.verify_archive(tampered)  # self-consistent...
    with pytest.raises(SignatureError, match="different manifest"):
        hermetic.verify(tampered, public, signature=signature)  # ...but not signed


def test_altered_record_fails_verify_naming_it(sample, keys, tmp_path):
    """A record changed after signing (manifest untouched) fails, named."""
    private, public, _ = keys
    hermetic.sign(sample, private)
    changed = rewrite(sample, tmp_path / "package.pt", change="res/obj.pkl")
    with pytest.raises(IntegrityError) as info:
        hermetic.verify(changed, public)
    assert info.value.record == "res/obj.pkl"


def test_unsigned_archive_fails_verify(sample, keys):
    """No embedded signature and no .sig file: SignatureError."""
    _, public, _ = keys
    with pytest.raises(SignatureError, match="not signed"):
        hermetic.verify(sample, public)


def test_torch_style_archive_cannot_be_signed(tmp_path, keys):
    """Without a manifest there is nothing to sign."""
    private, _, _ = keys
    path = tmp_path / "plain.pt"
    with ArchiveWriter(path) as writer:
        writer.write_record(".data/extern_modules", b"\n")
    with pytest.raises(SignatureError, match="no manifest"):
        hermetic.sign(path, private)


def test_signing_needs_the_crypto_extra(sample):
    """Without cryptography, sign() says which extra to install."""
    code = block_imports_prelude("cryptography") + (
        "import hermetic\n"
        "try:\n"
        f"    hermetic.sign({str(sample)!r}, b'key')\n"
        "except hermetic.errors.MissingDependencyError as exc:\n"
        "    print(exc)\n"
    )
    assert "pip install 'hermetic[crypto]'" in run_python(code)


def test_buffers_and_reexports_keep_their_manifest():
    """An archive written to a buffer carries a manifest and verifies on load."""
    buffer = io.BytesIO()
    with PackageExporter(buffer) as exporter:
        exporter.save_text("res", "a.txt", "A")
    importer = PackageImporter(io.BytesIO(buffer.getvalue()))
    assert importer.integrity == "checked"
    assert importer.load_text("res", "a.txt") == "A"


def test_exporter_can_skip_the_manifest(tmp_path):
    """manifest=False writes no manifest; the archive loads, unverified."""
    path = tmp_path / "plain.pt"
    with hermetic.PackageExporter(path, manifest=False) as exporter:
        exporter.save_text("res", "a.txt", "x")
    importer = PackageImporter(path)
    assert importer.integrity == "unverified"
    assert not importer.zip_reader.has_record(".data/hermetic/manifest.json")
    assert importer.load_text("res", "a.txt") == "x"
