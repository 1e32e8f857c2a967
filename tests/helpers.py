"""Helpers for tests that need a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

__all__ = ["block_imports_prelude", "run_python"]


def run_python(
    code: str, *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> str:
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
