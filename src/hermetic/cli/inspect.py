"""``hermetic inspect ARCHIVE``: what an archive holds, in one screen."""

from __future__ import annotations

import argparse
import os
from typing import Any, cast

from ._common import open_reader
from ._contents import Contents, load_contents
from ._output import Output, human_size
from ._security import integrity_status

__all__ = ["DESCRIPTION", "HELP", "JSON_DOC", "NAME", "add_arguments", "run"]

NAME = "inspect"
HELP = "summarise an archive: format, Python version, modules, pickles, storages"
DESCRIPTION = (
    "Summarise an archive without running it: its format version, the Python it was "
    "made with, counts and sizes of modules, pickles, storages and resources, its "
    "externs and mocks, and whether its records match its manifest."
)
#: The structure of ``--json`` output (a stable interface).
JSON_DOC = """\
{
  "archive": str, "archive_name": str, "format_version": int,
  "python_version": str | null, "byteorder": "little" | "big" | null,
  "file_size": int | null,              # null for an unzipped folder
  "records":   {"count": int, "bytes": int},
  "modules":   {"count": int, "bytes": int, "names": [str]},
  "pickles":   {"count": int, "bytes": int, "records": [str]},
  "storages":  {"count": int, "bytes": int},
  "resources": {"count": int, "bytes": int, "records": [str]},
  "metadata":  {"count": int, "bytes": int, "records": [str]},
  "externs": [str], "mocks": [str],
  "integrity": {"status": "verified" | "mismatch" | "absent" | "unchecked",
                "detail": str, "manifest": bool,
                "signature": "embedded" | "detached" | null}
}
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """ARCHIVE."""
    parser.add_argument(
        "archive", metavar="ARCHIVE", help="a .pt archive or unzipped folder"
    )


def run(args: argparse.Namespace, out: Output) -> int:
    """Print the summary."""
    with open_reader(args.archive) as reader:
        contents = load_contents(reader)
        document = summarise(args.archive, contents)
    if out.json_mode:
        out.emit_json(document)
    else:
        _print(out, document)
    return 0


def _group(contents: Contents, records: list[str], key: str) -> dict[str, object]:
    return {"count": len(records), "bytes": contents.size_of(records), key: records}


def summarise(path: str, contents: Contents) -> dict[str, object]:
    """Return the ``inspect`` JSON document for the archive at *path*."""
    reader = contents.reader
    modules = [m for m in contents.modules.values() if not m.mocked]
    return {
        "archive": path,
        "archive_name": reader.archive_name,
        "format_version": reader.version,
        "python_version": contents.python_version,
        "byteorder": contents.byteorder,
        "file_size": os.path.getsize(path) if os.path.isfile(path) else None,
        "records": {
            "count": len(contents.sizes),
            "bytes": sum(contents.sizes.values()),
        },
        "modules": {
            "count": len(modules),
            "bytes": sum(m.size for m in modules),
            "names": [m.name for m in modules],
        },
        "pickles": _group(contents, contents.pickles, "records"),
        "storages": {
            "count": len(contents.storages),
            "bytes": contents.size_of(contents.storages),
        },
        "resources": _group(contents, contents.resources, "records"),
        "metadata": _group(contents, contents.metadata, "records"),
        "externs": contents.externs,
        "mocks": [m.name for m in contents.modules.values() if m.mocked],
        "integrity": integrity_status(reader),
    }


def _count(document: dict[str, object], key: str) -> tuple[int, int]:
    group = cast(dict[str, Any], document[key])
    return int(group["count"]), int(group["bytes"])


def _print(out: Output, document: dict[str, object]) -> None:
    integrity = cast(dict[str, Any], document["integrity"])
    records, total = _count(document, "records")
    file_size = document["file_size"]
    size = f"{human_size(total)} in {records} records"
    if isinstance(file_size, int):
        size += f" ({human_size(file_size)} on disk)"
    out.fields(
        [
            ("archive", str(document["archive"])),
            ("format version", str(document["format_version"])),
            ("made with", f"Python {document['python_version'] or '(not recorded)'}"),
            ("byte order", str(document["byteorder"] or "(not recorded)")),
            ("integrity", f"{integrity['status']}: {integrity['detail']}"),
            ("size", size),
        ]
    )
    out.line()
    rows = []
    for key in ("modules", "pickles", "storages", "resources", "metadata"):
        count, nbytes = _count(document, key)
        rows.append([key, str(count), human_size(nbytes)])
    out.table(["kind", "count", "size"], rows, right=(1, 2))
    out.line()
    externs = cast(list[str], document["externs"])
    mocks = cast(list[str], document["mocks"])
    out.fields(
        [
            ("externs", ", ".join(externs) or "(none)"),
            ("mocks", ", ".join(mocks) or "(none)"),
        ]
    )
