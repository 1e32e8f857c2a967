"""The manifest record: the SHA-256 digest and size of every record of an archive.

``.data/hermetic/manifest.json`` holds one JSON object in canonical form (keys sorted,
no spaces, ASCII only, one final newline)::

    {"algorithm":"sha256","format":"hermetic-manifest/1",
     "records":{"<record>":{"sha256":"<64 hex digits>","size":<bytes>},...},
     "sha256":"<64 hex digits>"}

``records`` lists every record of the archive but the manifest itself and the
signature record (``.data/hermetic/signature.json``), which is written after it. The
last ``sha256`` is the digest of the canonical encoding of the object without that
key, so a change to any byte of the manifest is detected and blamed on the manifest.

A manifest detects accidents and edits; it cannot tell an honest archive from one
whose records and manifest were rewritten together. Signatures do that.

This module only encodes and decodes; it reads no archive.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from ._format import MANIFEST_RECORD, SIGNATURE_RECORD
from .errors import IntegrityError

__all__ = [
    "EXEMPT_RECORDS",
    "MANIFEST_FORMAT",
    "MAX_MANIFEST_SIZE",
    "Digest",
    "decode_manifest",
    "encode_manifest",
]

MANIFEST_FORMAT = "hermetic-manifest/1"
#: A manifest longer than this is refused unread (about 500,000 records).
MAX_MANIFEST_SIZE = 64 << 20
#: Records the manifest cannot list: itself, and the signature written after it.
EXEMPT_RECORDS = frozenset({MANIFEST_RECORD, SIGNATURE_RECORD})

_HEX64 = re.compile(r"[0-9a-f]{64}")


class Digest(NamedTuple):
    """What the manifest says about one record."""

    size: int
    sha256: str


def _canonical(obj: object) -> bytes:
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True
    ).encode("ascii")


def _body(records: Mapping[str, Digest]) -> dict[str, object]:
    return {
        "algorithm": "sha256",
        "format": MANIFEST_FORMAT,
        "records": {
            name: {"sha256": digest.sha256, "size": digest.size}
            for name, digest in records.items()
        },
    }


def encode_manifest(records: Iterable[tuple[str, Digest]]) -> bytes:
    """Return the manifest bytes for *records* (name, digest) pairs.

    >>> record = ("a.txt", Digest(1, hashlib.sha256(b"A").hexdigest()))
    >>> decode_manifest(encode_manifest([record]), archive="p.pt")["a.txt"].size
    1
    """
    body = _body(dict(records))
    body["sha256"] = hashlib.sha256(_canonical(body)).hexdigest()
    return _canonical(body) + b"\n"


def decode_manifest(data: bytes, *, archive: str) -> dict[str, Digest]:
    """Return the digests a manifest lists, refusing anything but canonical form.

    Raises:
        IntegrityError: the manifest is not one :func:`encode_manifest` wrote, or it
            was changed after it was written.
    """
    try:
        parsed = json.loads(data.decode("ascii"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _damaged(archive, f"it is not JSON ({exc})") from exc
    if not isinstance(parsed, dict) or set(parsed) != {
        "algorithm",
        "format",
        "records",
        "sha256",
    }:
        raise _damaged(archive, "its keys are not those of a hermetic manifest")
    if parsed["format"] != MANIFEST_FORMAT or parsed["algorithm"] != "sha256":
        raise _damaged(
            archive,
            f"format {parsed['format']!r} with {parsed['algorithm']!r} is not "
            f"supported (this hermetic reads {MANIFEST_FORMAT!r} with 'sha256')",
        )
    records = _records(parsed["records"], archive)
    if encode_manifest(records.items()) != data:
        raise _damaged(archive, "its content does not match its own digest")
    return records


def _records(raw: object, archive: str) -> dict[str, Digest]:
    if not isinstance(raw, dict):
        raise _damaged(archive, "'records' is not an object")
    records: dict[str, Digest] = {}
    for name, entry in raw.items():
        if (
            name in EXEMPT_RECORDS
            or not isinstance(entry, dict)
            or set(entry) != {"sha256", "size"}
            or type(entry["size"]) is not int
            or entry["size"] < 0
            or not isinstance(entry["sha256"], str)
            or not _HEX64.fullmatch(entry["sha256"])
        ):
            raise _damaged(archive, f"its entry for {name!r} is malformed")
        records[name] = Digest(entry["size"], entry["sha256"])
    return records


def _damaged(archive: str, why: str) -> IntegrityError:
    return IntegrityError(
        f"the manifest is damaged: {why}", archive=archive, record=MANIFEST_RECORD
    )
