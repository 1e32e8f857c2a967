"""``hermetic deps ARCHIVE``: the dependency graph, as text, DOT, SVG or PNG."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys

from ._common import CLIError, UsageError, open_reader
from ._contents import load_contents
from ._depgraph import KINDS, DepGraph, build_graph
from ._output import Output

__all__ = ["DESCRIPTION", "HELP", "JSON_DOC", "NAME", "add_arguments", "run", "to_dot"]

NAME = "deps"
HELP = "show which pickles and modules import which modules"
DESCRIPTION = (
    "Show the dependency graph derived from the archive without running it: packaged "
    "sources are scanned for imports and pickles for the globals they name. "
    "--format svg and png need the 'dot' program of Graphviz."
)
#: The structure of ``--json`` output (a stable interface).
JSON_DOC = """\
{
  "archive": str,
  "nodes": [{"name": str,
             "kind": "pickle" | "package" | "module" | "mock" | "extern" | "host"}],
  "edges": [[str, str]],               # [importer, imported]
  "roots": [str],                      # pickles, and modules nothing imports
  "problems": {str: str}               # node -> why it could not be read
}
"""

#: How each kind of node is drawn in DOT.
_NODE_STYLE = {
    "pickle": 'shape=note, style=filled, fillcolor="#f3d9f7"',
    "package": 'shape=folder, style=filled, fillcolor="#d9ecf7"',
    "module": 'shape=box, style=filled, fillcolor="#dff7d9"',
    "mock": 'shape=box, style="filled,dashed", fillcolor="#eeeeee"',
    "extern": 'shape=box, style=rounded, color="#888888"',
    "host": 'shape=box, style="rounded,dotted", color="#888888"',
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """ARCHIVE, --format, -o."""
    parser.add_argument(
        "archive", metavar="ARCHIVE", help="a .pt archive or unzipped folder"
    )
    parser.add_argument(
        "--format",
        choices=("text", "dot", "svg", "png"),
        default="text",
        help="output format (default: text)",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write to FILE instead of standard output",
    )


def run(args: argparse.Namespace, out: Output) -> int:
    """Print or write the graph."""
    with open_reader(args.archive) as reader:
        deps = build_graph(load_contents(reader))
    if out.json_mode:
        out.emit_json(as_json(args.archive, deps))
        return 0
    if args.format == "text":
        _write_text(args.output, _as_text(deps), out)
    elif args.format == "dot":
        _write_text(args.output, to_dot(deps), out)
    else:
        _write_picture(args, to_dot(deps))
    return 0


def as_json(archive: str, deps: DepGraph) -> dict[str, object]:
    """Return the ``deps`` JSON document."""
    graph = deps.graph
    return {
        "archive": archive,
        "nodes": [{"name": name, "kind": deps.kind(name)} for name in graph.nodes],
        "edges": [[source, target] for source, target in graph.edges],
        "roots": deps.roots(),
        "problems": deps.problems,
    }


def _as_text(deps: DepGraph) -> str:
    graph = deps.graph
    order = sorted(graph.nodes, key=lambda n: KINDS.index(deps.kind(n)))
    lines: list[str] = []
    for name in order:
        targets = graph.successors(name)
        if not targets and deps.kind(name) in ("host", "extern"):
            continue
        lines.append(f"{name}  [{deps.kind(name)}]")
        lines.extend(f"  -> {t}  [{deps.kind(t)}]" for t in targets)
    for name, problem in deps.problems.items():
        lines.append(f"! {name}: {problem}")
    edges = len(graph.edges)
    lines.append(f"{len(graph)} nodes, {edges} edges")
    return "\n".join(lines) + "\n"


def _quote(name: str) -> str:
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def to_dot(deps: DepGraph) -> str:
    """Render the graph as Graphviz DOT text, nodes styled by kind."""
    lines = ["digraph hermetic {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    lines += [
        f"  {_quote(name)} [{_NODE_STYLE[deps.kind(name)]}];"
        for name in deps.graph.nodes
    ]
    lines += [f"  {_quote(s)} -> {_quote(t)};" for s, t in deps.graph.edges]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _write_text(path: str | None, text: str, out: Output) -> None:
    if path is None:
        out.stream.write(text)
        return
    with open(path, "w", encoding="utf-8") as file:
        file.write(text)


def _write_picture(args: argparse.Namespace, dot_text: str) -> None:
    dot = shutil.which("dot")
    if dot is None:
        raise CLIError(
            f"--format {args.format} needs the 'dot' program of Graphviz, which is not "
            "on PATH: install Graphviz, or use --format dot"
        )
    if args.output is None and args.format == "png" and sys.stdout.isatty():
        raise UsageError("PNG bytes would go to the terminal: add -o FILE")
    result = subprocess.run(  # noqa: S603 - Graphviz found on PATH, our own DOT input
        [dot, f"-T{args.format}"],
        input=dot_text.encode("utf-8"),
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise CLIError(
            f"Graphviz failed: {message[0] if message else result.returncode}"
        )
    if args.output is None:
        sys.stdout.buffer.write(result.stdout)
        sys.stdout.flush()
        return
    with open(args.output, "wb") as file:
        file.write(result.stdout)
