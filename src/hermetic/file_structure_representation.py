"""A package's records as a printable, queryable folder tree.

``str(directory)`` draws the tree as torch.package does: folders first, then files,
each group sorted, with ``├──``/``└──``/``│`` connectors under a ``───`` root line.
"""

from __future__ import annotations

from collections.abc import Iterable

from ._patterns import GlobGroup

__all__ = ["Directory"]


class Directory:
    """A folder (or file) in an archive's file tree."""

    def __init__(self, name: str, is_dir: bool) -> None:
        self.name = name
        self.is_dir = is_dir
        self.children: dict[str, Directory] = {}

    def _get_dir(self, parts: list[str]) -> Directory:
        node = self
        for part in parts:
            child = node.children.get(part)
            if child is None:
                child = node.children[part] = Directory(part, True)
            node = child
        return node

    def _add_file(self, path: str) -> None:
        *folders, filename = path.split("/")
        self._get_dir(folders).children[filename] = Directory(filename, False)

    def has_file(self, filename: str) -> bool:
        """Return whether *filename* (``a/b/c.txt``) is in the tree, file or folder."""
        node = self
        for part in filename.split("/"):
            child = node.children.get(part)
            if child is None:
                return False
            node = child
        return True

    def __str__(self) -> str:
        lines: list[str] = [f"─── {self.name}"]
        self._draw(lines, "    ")
        return "\n".join(lines) + "\n"

    def _draw(self, lines: list[str], indent: str) -> None:
        dirs = sorted(c for c in self.children.values() if c.is_dir)
        files = sorted(c for c in self.children.values() if not c.is_dir)
        entries = dirs + files
        for index, child in enumerate(entries):
            last = index == len(entries) - 1
            lines.append(f"{indent}{'└── ' if last else '├── '}{child.name}")
            if child.is_dir:
                child._draw(lines, indent + ("    " if last else "│   "))

    def __lt__(self, other: Directory) -> bool:
        return self.name < other.name

    def __repr__(self) -> str:
        return f"Directory({self.name!r}, is_dir={self.is_dir})"


def build_directory(
    name: str,
    records: Iterable[str],
    include: str | Iterable[str] = "**",
    exclude: str | Iterable[str] = (),
) -> Directory:
    """Return the tree of *records* matching *include* and not *exclude*."""
    group = GlobGroup(include, exclude=exclude, separator="/")
    top = Directory(name, True)
    for record in records:
        if group.matches(record):
            top._add_file(record)
    return top
