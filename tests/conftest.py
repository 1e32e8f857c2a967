"""Shared fixtures: throwaway source trees on sys.path, and archive paths."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import hermetic

SourceTree = Callable[[dict[str, str]], Path]


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


def run_python(code: str, *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run *code* in a fresh interpreter; return stdout, failing the test on error."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"subprocess failed ({result.returncode}):\n{result.stderr}")
    return result.stdout


def block_imports_prelude(*top_level: str) -> str:
    """Source that makes the given top-level packages unimportable in a subprocess."""
    names = repr(frozenset(top_level))
    return textwrap.dedent(
        f"""
        import sys
        class _Block:
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] in {names}:
                    raise ModuleNotFoundError(f"blocked: {{name}}", name=name)
        sys.meta_path.insert(0, _Block())
        """
    )


__all__ = ["SourceTree", "block_imports_prelude", "hermetic", "run_python"]
