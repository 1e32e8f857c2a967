"""``hermetic verify ARCHIVE [--key PUB]``: check the manifest, and a signature."""

from __future__ import annotations

import argparse

from ..errors import IntegrityError
from ._common import open_reader
from ._output import Output
from ._security import require

__all__ = ["DESCRIPTION", "HELP", "JSON_DOC", "NAME", "add_arguments", "run"]

NAME = "verify"
HELP = "check every record against the manifest, and the signature with --key"
DESCRIPTION = (
    "Check every record of the archive against its manifest (SHA-256 and size). With "
    "--key, also check the archive's ed25519 signature (embedded, or ARCHIVE.sig, or "
    "--signature) with that public key. Exit status 1 when anything does not match."
)
#: The structure of ``--json`` output (a stable interface).
JSON_DOC = """\
{
  "archive": str, "ok": bool,
  "checked": "manifest" | "signature",
  "error": str | null
}
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """ARCHIVE --key --signature."""
    parser.add_argument("archive", metavar="ARCHIVE", help="a .pt archive")
    parser.add_argument(
        "--key", metavar="PUB", help="a PEM file with the ed25519 public key"
    )
    parser.add_argument(
        "--signature",
        metavar="SIG",
        help="a detached signature file (default: embedded, else ARCHIVE.sig)",
    )


def run(args: argparse.Namespace, out: Output) -> int:
    """Verify; 1 when the archive does not match."""
    open_reader(args.archive).close()  # a missing or unreadable file fails here
    checked = "manifest"
    try:
        if args.key is None:
            require("verify_archive", NAME)(args.archive)
        else:
            require("verify", NAME)(args.archive, args.key, args.signature)
            checked = "signature"
    except IntegrityError as exc:
        message = " ".join(str(exc).split())
        if out.json_mode:
            out.emit_json(
                {
                    "archive": args.archive,
                    "ok": False,
                    "checked": checked,
                    "error": message,
                }
            )
        else:
            out.line(f"FAILED: {message}", "bold red")
        return 1
    if out.json_mode:
        out.emit_json(
            {"archive": args.archive, "ok": True, "checked": checked, "error": None}
        )
    elif checked == "signature":
        out.line(
            f"OK {args.archive}: signed with the given key; every record matches",
            "green",
        )
    else:
        out.line(f"OK {args.archive}: every record matches the manifest", "green")
    return 0
