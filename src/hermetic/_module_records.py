"""Turn the exporter's resolved dependency graph into module records.

Each node's action decides what is written: an interned module's source, a mock stub
(plus the shared ``_mock.py`` once), or a line of the extern list; the Python version
and environment records follow. This module does not decide actions or read modules:
the graph already holds every source. It also refuses a layout no importer could load.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import TYPE_CHECKING

from . import _mock
from ._actions import Action
from ._environment import encode_environment
from ._format import (
    ENVIRONMENT_RECORD,
    EXTERN_MODULES_RECORD,
    PYTHON_VERSION_RECORD,
    module_record,
)
from ._report import PackagingErrorReason

if TYPE_CHECKING:
    from ._archive_writer import ArchiveWriter
    from ._graph import DiGraph

__all__ = ["check_module_layout", "write_module_records"]


def check_module_layout(graph: DiGraph) -> None:
    """Refuse a module saved inside one that was saved as a plain module.

    ``mod.py`` beside ``mod/sub.py`` could not be imported by any importer.
    """
    for name, attrs in graph.nodes.items():
        if attrs.get("action") is not Action.INTERN or attrs.get("is_pickle"):
            continue
        parent = name.rpartition(".")[0]
        parent_attrs = graph.nodes.get(parent)
        if (
            parent_attrs is not None
            and parent_attrs.get("action") is Action.INTERN
            and isinstance(parent_attrs.get("source"), bytes)
            and not parent_attrs.get("is_package")
        ):
            graph.nodes[name]["error"] = (
                PackagingErrorReason.DEPENDENCY_RESOLUTION_FAILED
            )
            graph.nodes[name]["error_context"] = (
                f"{parent!r} was saved as a plain module, so {name!r} cannot live "
                f"inside it; save {parent!r} with is_package=True"
            )


def write_module_records(graph: DiGraph, writer: ArchiveWriter) -> None:
    """Write every module record, the extern list, Python version and environment."""
    externs: list[str] = []
    mock_written = False
    for name, attrs in graph.nodes.items():
        action = attrs.get("action")
        if action is Action.EXTERN:
            externs.append(name)
        elif action is Action.MOCK:
            mock_written = _write_mock_module(writer, mock_written)
            record = module_record(name, is_package=bool(attrs.get("is_package")))
            writer.write_record(record, _mock.STUB_SOURCE.encode())
        elif action is Action.REPACKAGED_MOCK_MODULE:
            mock_written = _write_mock_module(writer, mock_written)
        elif action is Action.INTERN and not attrs.get("is_pickle"):
            source = attrs.get("source")
            if not isinstance(source, bytes):
                continue  # a namespace package: its folder appears by itself
            record = module_record(name, is_package=bool(attrs.get("is_package")))
            writer.write_record(record, source)
    extern_text = "".join(f"{name}\n" for name in externs) or "\n"
    writer.write_record(EXTERN_MODULES_RECORD, extern_text.encode())
    writer.write_record(PYTHON_VERSION_RECORD, platform.python_version().encode())
    writer.write_record(ENVIRONMENT_RECORD, encode_environment(externs))


def _write_mock_module(writer: ArchiveWriter, already: bool) -> bool:
    if not already:
        writer.write_record("_mock.py", Path(_mock.__file__).read_bytes())
    return True
