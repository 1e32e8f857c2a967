"""``hermetic sign ARCHIVE --key PRIV``: sign an archive's manifest with ed25519."""

from __future__ import annotations

import argparse

from ._common import open_reader
from ._output import Output
from ._security import require

__all__ = ["DESCRIPTION", "HELP", "JSON_DOC", "NAME", "add_arguments", "run"]

NAME = "sign"
HELP = "sign the archive's manifest with an ed25519 private key"
DESCRIPTION = (
    "Sign the archive with an ed25519 private key (an unencrypted PEM file). Every "
    "record is checked against the manifest first. The signature is embedded in the "
    "archive, or written to ARCHIVE.sig with --detached. Needs hermetic[crypto]."
)
#: The structure of ``--json`` output (a stable interface).
JSON_DOC = """\
{"archive": str, "signature": str, "detached": bool}
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """ARCHIVE --key --detached."""
    parser.add_argument("archive", metavar="ARCHIVE", help="a .pt archive")
    parser.add_argument(
        "--key",
        required=True,
        metavar="PRIV",
        help="a PEM file with the ed25519 private key",
    )
    parser.add_argument(
        "--detached",
        action="store_true",
        help="write the signature to ARCHIVE.sig and leave the archive unchanged",
    )


def run(args: argparse.Namespace, out: Output) -> int:
    """Sign."""
    open_reader(args.archive).close()  # a missing or unreadable file fails here
    sign = require("sign", NAME)
    written = sign(args.archive, args.key, detached=args.detached)
    if out.json_mode:
        out.emit_json(
            {
                "archive": args.archive,
                "signature": str(written),
                "detached": args.detached,
            }
        )
    else:
        where = f"to {written}" if args.detached else f"into {written}"
        out.line(f"signed {args.archive}: signature written {where}")
    return 0
