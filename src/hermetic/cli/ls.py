"""``hermetic ls ARCHIVE PACKAGE``: what one package of an archive holds."""

from __future__ import annotations

import argparse

from ._common import CLIError, open_reader
from ._contents import Contents, load_contents
from ._output import Output, human_size

__all__ = ["DESCRIPTION", "HELP", "JSON_DOC", "NAME", "add_arguments", "run"]

NAME = "ls"
HELP = "list the resources, modules and subpackages of one package"
DESCRIPTION = (
    "List what one package of the archive holds directly: resources (the records "
    "save_text/save_binary/save_pickle wrote), module sources and subpackages. "
    "PACKAGE is a dotted name such as 'model' or 'my_model.data'."
)
#: The structure of ``--json`` output (a stable interface).
JSON_DOC = """\
{
  "archive": str, "package": str,
  "entries": [{"name": str,            # subpackages end in "/"
               "kind": "module" | "pickle" | "resource" | "package",
               "size": int | null}]
}
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """ARCHIVE PACKAGE."""
    parser.add_argument(
        "archive", metavar="ARCHIVE", help="a .pt archive or unzipped folder"
    )
    parser.add_argument("package", metavar="PACKAGE", help="a dotted package name")


def run(args: argparse.Namespace, out: Output) -> int:
    """Print the package's entries."""
    package = args.package.strip(".")
    with open_reader(args.archive) as reader:
        contents = load_contents(reader)
        entries = list_package(contents, package)
    if not entries:
        raise CLIError(
            f"{args.archive}: no package {args.package!r} in the archive "
            f"(see 'hermetic tree {args.archive}')"
        )
    if out.json_mode:
        out.emit_json({"archive": args.archive, "package": package, "entries": entries})
        return 0
    rows = [
        [
            str(e["name"]),
            str(e["kind"]),
            "" if e["size"] is None else human_size(int(str(e["size"]))),
        ]
        for e in entries
    ]
    out.table(["name", "kind", "size"], rows, right=(2,))
    return 0


def _kind(contents: Contents, record: str) -> str:
    if record.endswith(".py"):
        return "module"
    if record in contents.pickles:
        return "pickle"
    return "resource"


def list_package(contents: Contents, package: str) -> list[dict[str, object]]:
    """Return the direct entries of *package*: files first, then subpackages."""
    prefix = package.replace(".", "/") + "/" if package else ""
    files: list[dict[str, object]] = []
    folders: dict[str, None] = {}
    for record, size in contents.sizes.items():
        if not record.startswith(prefix) or record.startswith(".data/"):
            continue
        rest = record[len(prefix) :]
        head, slash, _ = rest.partition("/")
        if slash:
            folders[head] = None
        else:
            files.append({"name": head, "kind": _kind(contents, record), "size": size})
    files.sort(key=lambda entry: str(entry["name"]))
    subpackages: list[dict[str, object]] = [
        {"name": name + "/", "kind": "package", "size": None}
        for name in sorted(folders)
    ]
    return files + subpackages
