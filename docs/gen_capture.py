"""Capture what ``hermetic inspect`` and ``hermetic tree`` show on a terminal.

Builds the demo archive (``hermetic demo``'s) in a scratch folder, runs the real
command line there with a recording rich console, and writes plain-text and SVG
captures to ``docs/assets/``. Run by ``make docs``; nothing here is typed by hand.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

from rich.console import Console

from hermetic.cli import main
from hermetic.cli._output import use_console
from hermetic.demo.build import build_package

ASSETS = Path(__file__).with_name("assets")


def capture(argv: list[str], name: str) -> None:
    """Run ``hermetic *argv*`` on a recording console; save ``<name>.txt``/``.svg``."""
    console = Console(
        file=io.StringIO(),
        record=True,
        width=80,
        force_terminal=True,
        color_system="truecolor",
    )
    with use_console(console):
        status = main(argv)
    if status != 0:
        raise SystemExit(f"hermetic {' '.join(argv)} exited with {status}")
    text = console.export_text(clear=False)
    lines = "\n".join(line.rstrip() for line in text.splitlines())
    (ASSETS / f"{name}.txt").write_text(f"$ hermetic {' '.join(argv)}\n{lines}\n")
    svg = console.export_svg(title=f"hermetic {' '.join(argv)}")
    (ASSETS / f"{name}.svg").write_text(svg)


def main_() -> int:
    """Write every capture."""
    ASSETS.mkdir(exist_ok=True)
    here = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="hermetic-docs-") as tmp:
        build_package(Path(tmp))
        os.chdir(tmp)
        try:
            capture(["inspect", "demo.pt"], "inspect")
            capture(["tree", "demo.pt"], "tree")
        finally:
            os.chdir(here)
    return 0


if __name__ == "__main__":
    raise SystemExit(main_())
