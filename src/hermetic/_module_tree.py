"""The tree of modules an archive provides, built from its record names alone.

Every folder is a package (possibly without source), every ``*.py`` record a module,
every extern name a leaf that the host's import system answers. Records under
``.data/<subfolder>/`` belong to the format, not to the user, and are skipped. This
module reads no record contents.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ._format import DATA_DIR
from .errors import ArchiveFormatError

__all__ = ["ModuleTree", "TreeNode"]


@dataclass
class TreeNode:
    """One name in the tree: a package, a module, or an extern leaf."""

    kind: str  # "package" | "module" | "extern"
    source_record: str | None = None
    children: dict[str, TreeNode] = field(default_factory=dict)
    #: A folder that exists only because an extern lives below it (``os`` for an
    #: extern ``os.path``): the host's module answers for it, not an empty package.
    extern_parent: bool = False


class ModuleTree:
    """Find what a dotted module name is inside one archive."""

    def __init__(
        self, records: Iterable[str], externs: Iterable[str], archive: str
    ) -> None:
        self.root = TreeNode("package")
        self._archive = archive
        for extern in externs:
            if extern:
                self._add_extern(extern)
        for record in records:
            self._add_record(record)

    def find(self, module_name: str) -> TreeNode | None:
        """Return the node for *module_name*; an extern covers its submodules."""
        node = self.root
        for part in module_name.split("."):
            if node.kind == "extern":
                return node
            child = node.children.get(part)
            if child is None:
                return None
            node = child
        return node

    def _add_extern(self, name: str) -> None:
        node = self.root
        *parents, last = name.split(".")
        for part in parents:
            node = node.children.setdefault(
                part, TreeNode("package", extern_parent=True)
            )
            if node.kind == "extern":
                return  # a shorter extern already covers this one
        node.children[last] = TreeNode("extern")

    def _add_record(self, record: str) -> None:
        parts = record.split("/")
        if parts[0] == DATA_DIR and len(parts) > 2:
            return
        *folders, filename = parts
        node = self.root
        for index, folder in enumerate(folders):
            child = node.children.get(folder)
            if child is None:
                child = node.children[folder] = TreeNode("package")
            elif child.kind == "extern":
                return  # data stored beside an extern's name is not importable code
            elif child.kind == "module":
                if not filename.endswith(".py"):
                    return  # data stored beside a module is not importable code
                dotted = ".".join(folders[: index + 1])
                raise ArchiveFormatError(
                    f"module {dotted!r} is not a package, but record {record!r} "
                    "is stored inside it",
                    archive=self._archive,
                    record=record,
                )
            child.extern_parent = False
            node = child
        if not filename.endswith(".py"):
            return
        stem = filename[: -len(".py")]
        if stem == "__init__":
            node.source_record = record
            return
        existing = node.children.get(stem)
        if existing is not None and existing.kind == "package" and existing.children:
            if existing.source_record is None and not _has_code(existing):
                existing.kind, existing.source_record = "module", record
                existing.children = {}
                return
            raise ArchiveFormatError(
                f"record {record!r} is a module, but the archive also stores a "
                "package of that name",
                archive=self._archive,
                record=record,
            )
        if existing is not None and existing.kind == "extern":
            return
        node.children[stem] = TreeNode("module", source_record=record)


def _has_code(node: TreeNode) -> bool:
    """Tell whether any module source lies under *node*."""
    stack = [node]
    while stack:
        current = stack.pop()
        if current.source_record is not None or current.kind == "module":
            return True
        stack.extend(current.children.values())
    return False
