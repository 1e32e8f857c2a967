"""Checksums computed beside the writes are the checksums of what was written."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
import zlib

import pytest

from hermetic._archive_reader import ArchiveReader
from hermetic._archive_writer import ArchiveWriter
from hermetic._checksums import BACKGROUND_SIZE, Checksums, DigestBatch
from hermetic._integrity import verify_archive

MANIFEST = ".data/hermetic/manifest.json"
# Sizes below, at and above the helper-thread threshold, and many pieces.
SIZES = [0, 1, 4096, BACKGROUND_SIZE - 1, BACKGROUND_SIZE, 3 * (16 << 20) + 5]


def _records() -> dict[str, bytes]:
    return {
        f"data/{i}.storage": bytes([i + 1]) * size + bytes(range(i % 7))
        for i, size in enumerate(SIZES)
    }


@pytest.mark.parametrize("deferred", [False, True], ids=["in-line", "deferred"])
def test_manifest_and_crcs_match_the_written_bytes(tmp_path, deferred):
    """Whether digests finish in line or after the batch, they hash each record."""
    path = tmp_path / "sums.pt"
    records = _records()
    with ArchiveWriter(path, manifest=True) as writer:
        if deferred:
            with writer.deferred_digests():
                for name, data in records.items():
                    writer.write_record(name, memoryview(data))
        else:
            for name, data in records.items():
                writer.write_record(name, data)
    verify_archive(path)  # every record against its digest
    reader = ArchiveReader(path)
    manifest = json.loads(reader.read(MANIFEST))["records"]
    with zipfile.ZipFile(path) as archive:
        crcs = {
            info.filename.partition("/")[2]: info.CRC for info in archive.infolist()
        }
    for name, data in records.items():
        assert reader.read(name) == data
        assert manifest[name] == {
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
        }
        assert crcs[name] == zlib.crc32(data)


def test_deferred_digests_without_a_manifest_hash_nothing():
    """A writer that keeps no manifest has nothing to defer; records still land."""
    buffer = io.BytesIO()
    with ArchiveWriter(buffer) as writer, writer.deferred_digests():
        writer.write_record("res/big.bin", b"x" * BACKGROUND_SIZE)
    reader = ArchiveReader(io.BytesIO(buffer.getvalue()))
    assert not reader.has_record(MANIFEST)
    assert reader.read("res/big.bin") == b"x" * BACKGROUND_SIZE


def test_an_error_on_a_helper_thread_reaches_the_caller():
    """A failing call on a hashing thread is raised by finish(), not lost."""
    batch = DigestBatch({})
    batch.next_worker().put(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        batch.finish()


def test_batched_digest_is_stored_only_when_the_batch_finishes():
    """A record's digest from a batch lands by finish(), equal to an in-line one."""
    data = memoryview(b"abc" * BACKGROUND_SIZE)
    digests: dict[str, str] = {}
    batch = DigestBatch(digests)
    sums = Checksums(sha256=True, background=True, batch=batch)
    sums.update(data)
    crc = sums.finish("record", digests)
    batch.finish()
    assert crc == zlib.crc32(data)
    assert digests == {"record": hashlib.sha256(data).hexdigest()}
