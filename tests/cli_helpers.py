"""Run the real ``hermetic`` console script and check what it printed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "COMMAND",
    "TINY_SOURCES",
    "Result",
    "assert_one_line_error",
    "has_dot",
    "run_cli",
    "write_sources",
]

SCRIPT = Path(sys.executable).with_name("hermetic")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "hermetic"]

#: Sources of a tiny package used by several archives.
TINY_SOURCES = {
    "tinypkg/__init__.py": "",
    "tinypkg/model.py": """
        import json
        from . import layers

        class Model:
            def __init__(self, n):
                self.layer = layers.Layer(n)
                self.meta = json.dumps({"n": n})
        MODEL = Model(3)
        CONFIG = {"lr": 0.1, "layers": [1, 2]}
    """,
    "tinypkg/layers.py": """
        class Layer:
            def __init__(self, n):
                self.weights = [0.5] * n
    """,
}


@dataclass
class Result:
    """What one run of the command printed and returned."""

    returncode: int
    stdout: str
    stderr: str

    def json(self) -> object:
        return json.loads(self.stdout)


def run_cli(
    *args: object, cwd: Path | None = None, env: dict[str, str] | None = None
) -> Result:
    """Run ``hermetic *args*`` in a subprocess (no terminal); return its output."""
    full_env = dict(os.environ)
    full_env.pop("FORCE_COLOR", None)
    full_env.update(env or {})
    completed = subprocess.run(
        [*COMMAND, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        timeout=120,
        check=False,
    )
    return Result(completed.returncode, completed.stdout, completed.stderr)


def assert_one_line_error(result: Result, code: int, *fragments: str) -> None:
    """The run failed with *code*, one line on stderr containing *fragments*."""
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def write_sources(root: Path, sources: dict[str, str]) -> Path:
    for relative, text in sources.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def has_dot() -> bool:
    """Tell whether Graphviz's ``dot`` is on PATH."""
    return shutil.which("dot") is not None
