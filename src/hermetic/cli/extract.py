"""``hermetic extract ARCHIVE DIR``: unzip an archive safely, as ``unzip`` lays it out.

Records land in ``DIR/<archive name>/``, the unzipped package folder that
:class:`hermetic.PackageImporter` also reads. Nothing is written outside that folder:
record names are checked, no path component may be a symbolic link, files are opened
with ``O_NOFOLLOW``, and existing files are kept unless ``--force``.
"""

from __future__ import annotations

import argparse
import os
import stat
from typing import TYPE_CHECKING

from .._archive_reader import ArchiveReader
from ._common import CLIError, add_progress_option, make_progress, open_reader
from ._output import Output, human_size

if TYPE_CHECKING:
    from ..progress import Progress

__all__ = ["DESCRIPTION", "HELP", "JSON_DOC", "NAME", "add_arguments", "run"]

NAME = "extract"
HELP = "unzip an archive into DIR/<archive name>/, refusing anything outside DIR"
DESCRIPTION = (
    "Unzip an archive into DIR/<archive name>/ (the unzipped package folder that "
    "PackageImporter reads). Nothing lands outside DIR: no record name may climb "
    "out, no symbolic link is followed, and existing files are kept unless --force."
)
#: The structure of ``--json`` output (a stable interface).
JSON_DOC = """\
{"archive": str, "directory": str, "records": int, "bytes": int}
"""

_CHUNK = 1 << 20
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_BINARY = getattr(os, "O_BINARY", 0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """ARCHIVE DIR --force --progress."""
    parser.add_argument("archive", metavar="ARCHIVE", help="a .pt archive")
    parser.add_argument(
        "directory", metavar="DIR", help="where to extract (created if missing)"
    )
    parser.add_argument(
        "--force", action="store_true", help="overwrite files that already exist"
    )
    add_progress_option(parser)


def run(args: argparse.Namespace, out: Output) -> int:
    """Extract every record."""
    with open_reader(args.archive) as reader:
        os.makedirs(args.directory, exist_ok=True)
        root = os.path.realpath(args.directory)
        names = reader.record_names()
        total = sum(reader.record_size(name) for name in names)
        progress = None if out.json_mode else make_progress(args)
        if progress is not None:
            progress.start(f"extracting {args.archive}", total)
        try:
            for name in names:
                parts = [reader.archive_name, *name.split("/")]
                _extract_record(reader, name, root, parts, args.force, progress)
        finally:
            if progress is not None:
                progress.stop()
        top = os.path.join(args.directory, reader.archive_name)
    if out.json_mode:
        out.emit_json(
            {
                "archive": args.archive,
                "directory": top,
                "records": len(names),
                "bytes": total,
            }
        )
    else:
        out.line(f"extracted {len(names)} records ({human_size(total)}) to {top}")
    return 0


def _check_part(part: str, record: str) -> None:
    bad = part in ("", ".", "..") or "/" in part or "\0" in part
    if bad or (os.altsep is not None and os.altsep in part) or os.sep in part:
        raise CLIError(
            f"refusing to extract record {record!r}: unsafe path component {part!r}"
        )


def _safe_directory(root: str, parts: list[str], record: str) -> str:
    """Create the folders of *parts* under *root*, refusing links; return the last."""
    current = root
    for part in parts:
        _check_part(part, record)
        current = os.path.join(current, part)
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            os.mkdir(current)
            continue
        if stat.S_ISLNK(info.st_mode):
            raise CLIError(
                f"refusing to extract record {record!r} through the symbolic link "
                f"{current!r} (remove it, or extract into an empty folder)"
            )
        if not stat.S_ISDIR(info.st_mode):
            raise CLIError(
                f"cannot extract record {record!r}: {current!r} is not a folder"
            )
    return current


def _open_target(path: str, record: str, force: bool) -> int:
    """Open *path* for writing without following a link; keep it unless *force*."""
    flags = os.O_WRONLY | os.O_CREAT | _NOFOLLOW | _BINARY
    flags |= os.O_TRUNC if force else os.O_EXCL
    if os.path.islink(path):
        raise CLIError(
            f"refusing to write record {record!r} over the symbolic link {path!r}"
        )
    try:
        return os.open(path, flags, 0o644)
    except FileExistsError:
        raise CLIError(
            f"{path!r} already exists (use --force to overwrite it)"
        ) from None


def _extract_record(
    reader: ArchiveReader,
    record: str,
    root: str,
    parts: list[str],
    force: bool,
    progress: Progress | None,
) -> None:
    folder = _safe_directory(root, parts[:-1], record)
    _check_part(parts[-1], record)
    path = os.path.join(folder, parts[-1])
    if not os.path.realpath(path).startswith(root + os.sep):
        raise CLIError(f"refusing to extract record {record!r} outside {root!r}")
    data = memoryview(reader.read(record))
    fd = _open_target(path, record, force)
    with os.fdopen(fd, "wb") as file:
        for start in range(0, len(data), _CHUNK):
            chunk = data[start : start + _CHUNK]
            file.write(chunk)
            if progress is not None:
                progress.advance(len(chunk))
