"""``hermetic tree ARCHIVE``: the archive's records as a folder tree."""

from __future__ import annotations

import argparse
from typing import Any

from ..file_structure_representation import Directory, build_directory
from ._common import open_reader
from ._output import Output, human_size

__all__ = ["DESCRIPTION", "HELP", "JSON_DOC", "NAME", "add_arguments", "run"]

NAME = "tree"
HELP = "draw the archive's records as a folder tree"
DESCRIPTION = (
    "Draw the archive's records as a folder tree: the same text as "
    "PackageImporter.file_structure(), with sizes when the output is a terminal. "
    "Patterns are '/'-separated globs over record names ('**' spans folders)."
)
#: The structure of ``--json`` output (a stable interface).
JSON_DOC = """\
{
  "archive": str,
  "tree": node        # node: {"name": str, "type": "dir", "children": [node]}
}                     #    or {"name": str, "type": "file", "size": int}
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """ARCHIVE, --include, --exclude."""
    parser.add_argument(
        "archive", metavar="ARCHIVE", help="a .pt archive or unzipped folder"
    )
    parser.add_argument(
        "--include",
        action="append",
        metavar="GLOB",
        help="show only records matching GLOB (repeatable; default '**')",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="hide records matching GLOB (repeatable)",
    )


def run(args: argparse.Namespace, out: Output) -> int:
    """Print the tree."""
    with open_reader(args.archive) as reader:
        names = reader.record_names()
        sizes = {name: reader.record_size(name) for name in names}
        top = build_directory(reader.name, names, args.include or "**", args.exclude)
    if out.json_mode:
        out.emit_json({"archive": args.archive, "tree": _as_json(top, "", sizes)})
    elif out.is_rich:
        out.render(_as_rich(top, "", sizes))
    else:
        out.stream.write(str(top))
    return 0


def _children(node: Directory) -> list[Directory]:
    """Folders first, then files, each sorted (the order file_structure() draws)."""
    dirs = sorted(c for c in node.children.values() if c.is_dir)
    files = sorted(c for c in node.children.values() if not c.is_dir)
    return dirs + files


def _as_json(node: Directory, path: str, sizes: dict[str, int]) -> dict[str, object]:
    if not node.is_dir:
        return {"name": node.name, "type": "file", "size": sizes.get(path, 0)}
    children = [
        _as_json(child, f"{path}/{child.name}" if path else child.name, sizes)
        for child in _children(node)
    ]
    return {"name": node.name, "type": "dir", "children": children}


def _as_rich(top: Directory, path: str, sizes: dict[str, int]) -> Any:
    from rich.text import Text
    from rich.tree import Tree

    root = Tree(Text(top.name, style="bold"), guide_style="dim")
    stack: list[tuple[Any, Directory, str]] = [(root, top, path)]
    while stack:
        branch, node, prefix = stack.pop()
        for child in _children(node):
            child_path = f"{prefix}/{child.name}" if prefix else child.name
            if child.is_dir:
                sub = branch.add(Text(child.name + "/", style="bold blue"))
                stack.append((sub, child, child_path))
            else:
                label = Text(child.name, style=_style(child.name))
                label.append(f"  {human_size(sizes.get(child_path, 0))}", style="dim")
                branch.add(label)
    return root


def _style(name: str) -> str:
    if name.endswith(".py"):
        return "green"
    if name.endswith((".pkl", ".pickle")):
        return "magenta"
    if name.endswith(".storage"):
        return "yellow"
    return ""
