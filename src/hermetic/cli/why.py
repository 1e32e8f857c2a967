"""``hermetic why ARCHIVE MODULE``: every import path that put MODULE in the archive."""

from __future__ import annotations

import argparse

from ._common import CLIError, open_reader
from ._contents import load_contents
from ._depgraph import build_graph, import_paths
from ._output import Output

__all__ = ["DESCRIPTION", "HELP", "JSON_DOC", "NAME", "add_arguments", "run"]

NAME = "why"
HELP = "show every import path from a pickle or top module to MODULE"
DESCRIPTION = (
    "Show every import path that puts MODULE in the archive, from a root (a pickle, "
    "or a module nothing else imports) to MODULE, shortest first. The graph is "
    "derived as 'hermetic deps' derives it; nothing is run."
)
#: The structure of ``--json`` output (a stable interface).
JSON_DOC = """\
{
  "archive": str, "module": str, "kind": str,
  "paths": [[str]],                    # root first, MODULE last; shortest first
  "truncated": bool                    # true when --limit cut the list
}
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """ARCHIVE MODULE --limit."""
    parser.add_argument(
        "archive", metavar="ARCHIVE", help="a .pt archive or unzipped folder"
    )
    parser.add_argument("module", metavar="MODULE", help="a dotted module name")
    parser.add_argument(
        "--limit",
        type=int,
        default=50,
        metavar="N",
        help="show at most N paths (default: 50)",
    )


def run(args: argparse.Namespace, out: Output) -> int:
    """Print the paths."""
    with open_reader(args.archive) as reader:
        deps = build_graph(load_contents(reader))
    if args.module not in deps.graph:
        raise CLIError(
            f"{args.archive}: no module {args.module!r} in the dependency graph "
            f"(see 'hermetic deps {args.archive}')"
        )
    paths, truncated = import_paths(deps, args.module, limit=max(1, args.limit))
    if out.json_mode:
        out.emit_json(
            {
                "archive": args.archive,
                "module": args.module,
                "kind": deps.kind(args.module),
                "paths": paths,
                "truncated": truncated,
            }
        )
        return 0
    count = f"{len(paths)}{'+' if truncated else ''}"
    noun = "path" if len(paths) == 1 else "paths"
    out.line(f"{args.module} [{deps.kind(args.module)}]: {count} import {noun}")
    for path in paths:
        if len(path) == 1:
            out.line("  (a root: saved directly, nothing in the archive imports it)")
        else:
            out.line("  " + " -> ".join(path))
    if truncated:
        out.line(f"  ... more paths exist; raise --limit (now {args.limit})")
    return 0
