"""Shared fixtures: throwaway source trees on sys.path, and archive paths."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

SourceTree = Callable[[dict[str, str]], Path]


@pytest.fixture(autouse=True)
def _private_bytecode_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch):
    """Keep compiled-module caches of the tests out of the user's cache folder."""
    folder = tmp_path_factory.getbasetemp() / "bytecode-cache"
    monkeypatch.setenv("HERMETIC_BYTECODE_CACHE", str(folder))


@pytest.fixture
def src_tree(tmp_path: Path) -> Iterator[SourceTree]:
    """Write ``{"pkg/mod.py": source}`` files to a fresh folder on ``sys.path``.

    Modules imported from it are removed from ``sys.modules`` afterwards, so tests may
    reuse module names.
    """
    root = tmp_path / "src"
    root.mkdir()
    sys.path.insert(0, str(root))

    def make(files: dict[str, str]) -> Path:
        for relative, source in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        return root

    yield make
    sys.path.remove(str(root))
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", "") or "").startswith(str(root)):
            del sys.modules[name]


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """A path for one archive (its top-level folder will be ``package``)."""
    return tmp_path / "package.pt"
