"""Sign an archive's manifest with ed25519, and verify such a signature.

A signature covers the manifest's SHA-256, and the manifest covers every record, so
one signature vouches for the whole archive; checking it also checks every record.
The signature is a small JSON document in canonical form (keys sorted, no spaces)::

    {"algorithm":"ed25519","format":"hermetic-signature/1",
     "manifest_sha256":"<64 hex>","public_key":"<64 hex>","signature":"<128 hex>"}

The signed message is ``b"hermetic-signature/1\\0"`` followed by the manifest's raw
SHA-256 digest. Embedded, the document is the record ``.data/hermetic/signature.json``
(written after the manifest, which does not list it, so signing leaves the manifest
and every other record byte for byte as they were); detached, it is ``<archive>.sig``.

``public_key`` in the document only names the key for messages: verification uses
the key the caller passes, never one the archive supplies.

It does not: decide which keys to trust, keep a key list, or talk to a transparency
log (sigstore); and it needs the ``cryptography`` package (``hermetic[crypto]``),
which is imported only when signing or verifying.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ._archive_reader import ArchiveReader
from ._archive_writer import ArchiveWriter
from ._format import (
    BYTEORDER_RECORD,
    MANIFEST_RECORD,
    SERIALIZATION_ID_RECORD,
    SIGNATURE_RECORD,
    SIGNATURE_SUFFIX,
    VERSION_RECORD,
)
from ._integrity import check_every_record, read_manifest
from .errors import ArchiveError, MissingDependencyError, SignatureError

__all__ = ["sign", "verify"]

SIGNATURE_FORMAT = "hermetic-signature/1"
_MESSAGE_PREFIX = SIGNATURE_FORMAT.encode("ascii") + b"\0"
_MAX_SIGNATURE_SIZE = 4096
_TRAILER_RECORDS = (VERSION_RECORD, BYTEORDER_RECORD, SERIALIZATION_ID_RECORD)

KeySource = Any  # a cryptography key object, PEM bytes, or a path to a PEM file


def sign(
    path: str | os.PathLike[str], private_key: KeySource, *, detached: bool = False
) -> Path:
    """Sign the archive at *path* with ed25519 *private_key*; return the file written.

    Every record is checked against the manifest first, so a damaged archive is
    never signed. Embedded (the default), the archive is rewritten with the
    signature record added (replacing an earlier signature); detached, the archive
    is left alone and the signature goes to ``<path>.sig``.

    Args:
        private_key: an ``Ed25519PrivateKey``, unencrypted PEM bytes, or the path
            of an unencrypted PEM file.

    Raises:
        IntegrityError: the archive has no manifest or does not match it.
        SignatureError: the key is not an ed25519 private key.
        MissingDependencyError: ``cryptography`` is not installed.

    Example:
        >>> hermetic.sign("model.pt", "signing-key.pem")  # doctest: +SKIP
    """
    key = _private_key(private_key)
    target = Path(os.fspath(path))
    with ArchiveReader(target) as reader:
        manifest = _checked_manifest(reader)
        document = _signature_document(key, manifest)
        if detached:
            sig_path = Path(f"{target}{SIGNATURE_SUFFIX}")
            _write_atomically(sig_path, document)
            return sig_path
        if reader.is_directory:
            raise ArchiveError(
                "cannot embed a signature in an unzipped package: sign it with "
                "detached=True",
                archive=reader.name,
            )
        _rewrite_with_signature(reader, target, document)
    return target


def verify(
    path: str | os.PathLike[str],
    public_key: KeySource,
    signature: str | os.PathLike[str] | bytes | None = None,
) -> None:
    """Check that the archive at *path* was signed with *public_key* and is unchanged.

    Args:
        public_key: an ``Ed25519PublicKey``, PEM bytes, or the path of a PEM file.
        signature: the signature document (bytes) or its path; None uses the
            embedded signature, else ``<path>.sig`` if it exists.

    Raises:
        SignatureError: no signature, a malformed one, one for another manifest, or
            one the key does not verify (a wrong key, or an altered manifest).
        IntegrityError: a record differs from the signed manifest (named).
        MissingDependencyError: ``cryptography`` is not installed.

    Example:
        >>> hermetic.verify("model.pt", "publisher.pub.pem")  # doctest: +SKIP
    """
    key = _public_key(public_key)
    from cryptography.exceptions import InvalidSignature

    with ArchiveReader(path) as reader:
        found = read_manifest(reader)
        if found is None:
            raise SignatureError(
                "the archive has no manifest, so it carries no signature",
                archive=reader.name,
                record=MANIFEST_RECORD,
            )
        manifest, digests = found
        document = _load_signature(reader, path, signature)
        raw_signature = _parse_signature(document, reader.name, manifest)
        manifest_digest = hashlib.sha256(manifest).digest()
        try:
            key.verify(raw_signature, _MESSAGE_PREFIX + manifest_digest)
        except InvalidSignature:
            raise SignatureError(
                f"the signature does not verify with key {_fingerprint(key)}: it was "
                "made with another key, or the manifest was altered",
                archive=reader.name,
            ) from None
        check_every_record(reader, digests)


# -- keys -----------------------------------------------------------------------------


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives import serialization
    except ImportError:
        raise MissingDependencyError(
            "cryptography", "crypto", "signing and verifying archives"
        ) from None
    return serialization


def _key_bytes(source: object) -> bytes:
    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    if isinstance(source, (str, os.PathLike)):
        return Path(os.fspath(source)).read_bytes()
    raise TypeError(
        "a key must be a cryptography ed25519 key object, PEM bytes or a path, "
        f"not {type(source).__name__}"
    )


def _private_key(source: KeySource) -> Any:
    serialization = _crypto()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if isinstance(source, Ed25519PrivateKey):
        return source
    try:
        key = serialization.load_pem_private_key(_key_bytes(source), password=None)
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"cannot load the private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError(
            f"an ed25519 private key is needed, not {type(key).__name__}"
        )
    return key


def _public_key(source: KeySource) -> Any:
    serialization = _crypto()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

    if isinstance(source, Ed25519PublicKey):
        return source
    if isinstance(source, Ed25519PrivateKey):
        raise TypeError("verify() takes the public key, not the private key")
    try:
        key = serialization.load_pem_public_key(_key_bytes(source))
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"cannot load the public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError(
            f"an ed25519 public key is needed, not {type(key).__name__}"
        )
    return key


def _raw_public(key: Any) -> bytes:
    serialization = _crypto()
    raw: bytes = key.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return raw


def _fingerprint(key: Any) -> str:
    """Name a public key by the first 16 hex digits of its raw bytes' SHA-256."""
    return hashlib.sha256(_raw_public(key)).hexdigest()[:16]


# -- the signature document ------------------------------------------------------------


def _checked_manifest(reader: ArchiveReader) -> bytes:
    found = read_manifest(reader)
    if found is None:
        raise SignatureError(
            "the archive has no manifest to sign (torch.package writes none; "
            "re-export it with hermetic)",
            archive=reader.name,
            record=MANIFEST_RECORD,
        )
    check_every_record(reader, found[1])
    return found[0]


def _canonical(obj: object) -> bytes:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return text.encode("ascii") + b"\n"


def _signature_document(key: Any, manifest: bytes) -> bytes:
    digest = hashlib.sha256(manifest).digest()
    signature: bytes = key.sign(_MESSAGE_PREFIX + digest)
    return _canonical(
        {
            "algorithm": "ed25519",
            "format": SIGNATURE_FORMAT,
            "manifest_sha256": digest.hex(),
            "public_key": _raw_public(key.public_key()).hex(),
            "signature": signature.hex(),
        }
    )


def _load_signature(
    reader: ArchiveReader,
    path: str | os.PathLike[str],
    signature: str | os.PathLike[str] | bytes | None,
) -> bytes:
    if isinstance(signature, bytes):
        return signature
    if signature is not None:
        return _read_small(Path(os.fspath(signature)), reader.name)
    if reader.has_record(SIGNATURE_RECORD):
        return reader.read(SIGNATURE_RECORD, max_size=_MAX_SIGNATURE_SIZE)
    detached = Path(f"{os.fspath(path)}{SIGNATURE_SUFFIX}")
    if detached.is_file():
        return _read_small(detached, reader.name)
    raise SignatureError(
        f"the archive is not signed: it has no embedded signature and there is no "
        f"{detached.name}",
        archive=reader.name,
    )


def _read_small(path: Path, archive: str) -> bytes:
    try:
        with path.open("rb") as file:
            data = file.read(_MAX_SIGNATURE_SIZE + 1)
    except OSError as exc:
        raise SignatureError(
            f"cannot read the signature: {exc}", archive=archive
        ) from exc
    if len(data) > _MAX_SIGNATURE_SIZE:
        raise SignatureError("the signature file is too large", archive=archive)
    return data


def _parse_signature(document: bytes, archive: str, manifest: bytes) -> bytes:
    """Return the raw signature of *document*, which must be for *manifest*."""
    try:
        parsed = json.loads(document.decode("ascii"))
        fields = {
            key: parsed[key]
            for key in ("algorithm", "format", "manifest_sha256", "public_key")
        }
        raw = bytes.fromhex(parsed["signature"])
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise SignatureError(
            f"the signature is malformed: {exc!r}", archive=archive
        ) from exc
    if fields["algorithm"] != "ed25519" or fields["format"] != SIGNATURE_FORMAT:
        raise SignatureError(
            f"unsupported signature {fields['format']!r} with {fields['algorithm']!r}",
            archive=archive,
        )
    if fields["manifest_sha256"] != hashlib.sha256(manifest).hexdigest():
        raise SignatureError(
            "the signature is for a different manifest: the archive was changed "
            "after it was signed, or the signature belongs to another archive",
            archive=archive,
        )
    return raw


# -- writing ---------------------------------------------------------------------------


def _write_atomically(path: Path, data: bytes) -> None:
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _rewrite_with_signature(
    reader: ArchiveReader, target: Path, document: bytes
) -> None:
    """Copy every record of *reader* to *target* unchanged, then the signature.

    The copy keeps the archive folder name and record order; ArchiveWriter writes it
    to a temporary file renamed over *target* only once complete.
    """
    missing = [name for name in _TRAILER_RECORDS if not reader.has_record(name)]
    if missing:
        # The writer would add them after the manifest, which does not list them.
        raise ArchiveError(
            f"cannot embed a signature: the archive lacks {', '.join(missing)}; sign "
            "it with detached=True",
            archive=reader.name,
        )
    writer = ArchiveWriter(target)
    writer.archive_name = reader.archive_name
    with writer:
        for name in reader.record_names():
            if name == SIGNATURE_RECORD:
                continue
            writer.write_record_stream(
                name, reader.record_pieces(name), reader.record_size(name)
            )
        writer.write_record(SIGNATURE_RECORD, document)
