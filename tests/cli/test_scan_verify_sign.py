"""`scan`, `verify` and `sign`: findings and checks as exit codes."""

from __future__ import annotations

import os
import pickle
import shutil

import pytest

from cli_helpers import assert_one_line_error, run_cli
from hermetic._archive_writer import ArchiveWriter


class _RunsACommand:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.fixture
def hostile_archive(tmp_path):
    """An archive whose pickle would call os.system on load."""
    path = tmp_path / "hostile.pt"
    with ArchiveWriter(str(path)) as writer:
        writer.write_record("evil/evil.pkl", pickle.dumps(_RunsACommand(), protocol=3))
        writer.write_record(".data/extern_modules", b"\n")
    return path


def test_scan_passes_by_default_and_fails_on_medium(tiny_archive):
    """Packaged classes are medium findings: below the default --fail-on high."""
    result = run_cli("scan", tiny_archive)
    assert result.returncode == 0, result.stderr
    assert "tinypkg.model.Model" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("passed (--fail-on high)")
    strict = run_cli("scan", tiny_archive, "--fail-on", "medium")
    assert strict.returncode == 1
    assert strict.stdout.splitlines()[-1].startswith("FAILED (--fail-on medium)")


def test_scan_flags_a_pickle_that_runs_a_command(hostile_archive):
    """GLOBAL os.system is critical: exit 1, and the JSON says why."""
    result = run_cli("scan", hostile_archive)
    assert result.returncode == 1
    assert "critical" in result.stdout
    document = run_cli("scan", hostile_archive, "--json").json()
    assert document["failed"] is True
    assert document["fail_on"] == "high"
    assert document["max_severity"] == "critical"
    assert any(
        f["severity"] == "critical" and f["record"] == "evil/evil.pkl"
        for f in document["findings"]
    )


@pytest.mark.torch
def test_scan_a_torch_written_archive(tensor_archives):
    """A plain state dict written by torch.package scans clean."""
    document = run_cli("scan", tensor_archives["torch"], "--json").json()
    assert document["failed"] is False
    assert document["is_safe_to_load_data_only"] is True


def test_verify_a_hermetic_archive(tiny_archive):
    """Every record matches the manifest hermetic wrote."""
    result = run_cli("verify", tiny_archive)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK ")
    assert run_cli("verify", tiny_archive, "--json").json() == {
        "archive": str(tiny_archive),
        "ok": True,
        "checked": "manifest",
        "error": None,
    }


@pytest.mark.torch
def test_verify_an_archive_without_manifest_fails(tensor_archives):
    """torch.package writes no manifest: nothing can be verified, exit 1."""
    result = run_cli("verify", tensor_archives["torch"], "--json")
    assert result.returncode == 1
    document = result.json()
    assert document["ok"] is False
    assert "no manifest" in document["error"]


def test_verify_notices_a_changed_record(tiny_archive, tmp_path):
    """Flipping one byte of a record breaks the manifest check."""
    copy = tmp_path / "tiny.pt"
    shutil.copy(tiny_archive, copy)
    data = bytearray(copy.read_bytes())
    index = data.index(b"class Layer")
    data[index] = ord("K")
    copy.write_bytes(bytes(data))
    result = run_cli("verify", copy)
    assert result.returncode == 1
    assert result.stdout.startswith("FAILED: ")


def test_sign_then_verify_with_the_key(tiny_archive, tmp_path):
    """sign --key PRIV, then verify --key PUB; another key fails."""
    pytest.importorskip("cryptography", reason="signing needs hermetic[crypto]")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    def write_keys(name):
        key = Ed25519PrivateKey.generate()
        private = tmp_path / f"{name}.pem"
        public = tmp_path / f"{name}.pub.pem"
        private.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        public.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM,
                serialization.PublicFormat.SubjectPublicKeyInfo,
            )
        )
        return private, public

    private, public = write_keys("publisher")
    _, other = write_keys("other")
    archive = tmp_path / "signed.pt"
    shutil.copy(tiny_archive, archive)
    signed = run_cli("sign", archive, "--key", private, "--json")
    assert signed.returncode == 0, signed.stderr
    assert signed.json() == {
        "archive": str(archive),
        "signature": str(archive),
        "detached": False,
    }
    assert run_cli("verify", archive, "--key", public).returncode == 0
    wrong = run_cli("verify", archive, "--key", other)
    assert wrong.returncode == 1
    assert "does not verify" in wrong.stdout
    inspect = run_cli("inspect", archive, "--json").json()
    assert inspect["integrity"]["signature"] == "embedded"


def test_sign_with_a_missing_key_file_is_one_line(tiny_archive, tmp_path):
    """A key path that does not exist is reported in one line."""
    pytest.importorskip("cryptography", reason="signing needs hermetic[crypto]")
    archive = tmp_path / "a.pt"
    shutil.copy(tiny_archive, archive)
    result = run_cli("sign", archive, "--key", tmp_path / "nope.pem")
    assert result.returncode in (1, 2)
    assert_one_line_error(result, result.returncode, "nope.pem")


@pytest.mark.torch
def test_sign_refuses_an_archive_without_manifest(tensor_archives, tmp_path):
    """torch.package's archive has no manifest to sign: one line, exit 1."""
    pytest.importorskip("cryptography", reason="signing needs hermetic[crypto]")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = tmp_path / "key.pem"
    key.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    archive = tmp_path / "by_torch.pt"
    shutil.copy(tensor_archives["torch"], archive)
    result = run_cli("sign", archive, "--key", key)
    assert_one_line_error(result, 1, "no manifest")
