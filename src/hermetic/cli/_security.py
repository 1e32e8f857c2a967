"""The CLI's one door to hermetic's scanning, integrity and signing functions.

They are looked up on the :mod:`hermetic` package when a verb runs, so a build without
one of them still runs every other verb; the verb that needs it fails with one line
(exit status 2) instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, cast

from .._archive_reader import ArchiveReader
from .._format import MANIFEST_RECORD, SIGNATURE_RECORD, SIGNATURE_SUFFIX
from ..errors import IntegrityError
from ._common import CLIError

__all__ = ["integrity_status", "require"]


def require(name: str, verb: str) -> Callable[..., Any]:
    """Return ``hermetic.<name>``, or raise a CLIError: the verb is unavailable."""
    import hermetic

    function = getattr(hermetic, name, None)
    if not callable(function):
        raise CLIError(
            f"'{verb}' is not available in this build (it needs hermetic.{name}); "
            "upgrade hermetic",
            code=2,
        )
    return cast(Callable[..., Any], function)


def _signature_kind(reader: ArchiveReader) -> str | None:
    """Return 'embedded', 'detached' or None: where the archive's signature is."""
    if reader.has_record(SIGNATURE_RECORD):
        return "embedded"
    if os.path.isfile(reader.name + SIGNATURE_SUFFIX):
        return "detached"
    return None


def integrity_status(reader: ArchiveReader) -> dict[str, object]:
    """Check the archive's records against its manifest, for ``inspect``.

    Returns ``{"status", "detail", "manifest", "signature"}``; *status* is
    ``verified``, ``mismatch``, ``absent`` (no manifest) or ``unchecked`` (this build
    cannot check). Signatures are only reported: checking one needs a key.
    """
    result: dict[str, object] = {
        "status": "absent",
        "detail": "no manifest (torch.package and older hermetic write none)",
        "manifest": reader.has_record(MANIFEST_RECORD),
        "signature": _signature_kind(reader),
    }
    if not result["manifest"]:
        return result
    import hermetic

    verify_archive = getattr(hermetic, "verify_archive", None)
    if not callable(verify_archive):
        result.update(status="unchecked", detail="this build cannot check manifests")
        return result
    try:
        verify_archive(reader.name)
    except IntegrityError as exc:
        result.update(status="mismatch", detail=" ".join(str(exc).split()))
        return result
    detail = "every record matches the manifest"
    if result["signature"]:
        detail += f"; {result['signature']} signature (check it with 'hermetic verify')"
    result.update(status="verified", detail=detail)
    return result
