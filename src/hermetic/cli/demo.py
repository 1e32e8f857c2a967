"""``hermetic demo``: package a small pipeline, load it in a fresh process, show it."""

from __future__ import annotations

import argparse
import contextlib
import io

from ._output import Output

__all__ = ["DESCRIPTION", "HELP", "JSON_DOC", "NAME", "add_arguments", "run"]

NAME = "demo"
HELP = "package a small pipeline, load it in a fresh process, print the tree"
DESCRIPTION = (
    "Run the built-in demo (what 'make demo' shows): package a tiny text-scoring "
    "pipeline with its source, load it in a fresh interpreter where that source is "
    "not importable, and print the results and the archive's file tree."
)
#: The structure of ``--json`` output (a stable interface).
JSON_DOC = """\
{"output": str}                     # what the demo printed
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No arguments of its own."""


def run(args: argparse.Namespace, out: Output) -> int:
    """Run :func:`hermetic.demo.main`."""
    from ..demo import main

    if not out.json_mode:
        return main()
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        status = main()
    out.emit_json({"output": captured.getvalue()})
    return status
