"""The dependency graph of an archive, derived from its records without running them.

Nodes are pickles (by record name), modules stored in the archive, externs, and the
host modules they import. An edge ``a -> b`` means *a* imports *b* (found by
:func:`hermetic._find_imports.find_imports` in *a*'s source), a pickle *a* names a
global of module *b*, or *b* is the parent package of module *a* (importing *a* runs
*b*'s ``__init__`` first). Imports hidden from the syntax tree
(``exec``, computed names) are not seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .._find_imports import ImportScanError, find_imports
from .._graph import DiGraph
from ._contents import Contents
from ._pickles import read_pickle

__all__ = ["DepGraph", "build_graph", "import_paths"]

#: Kinds of node, in the order the text output lists them.
KINDS = ("pickle", "package", "module", "mock", "extern", "host")
#: Walk steps past this many stop ``why`` from enumerating more paths.
_MAX_STEPS = 200_000


@dataclass
class DepGraph:
    """The graph, each node's kind, and sources that could not be scanned."""

    graph: DiGraph
    problems: dict[str, str] = field(default_factory=dict)

    def kind(self, node: str) -> str:
        """Return the kind of *node* (one of :data:`KINDS`)."""
        return str(self.graph.nodes[node].get("kind", "host"))

    def roots(self) -> list[str]:
        """Pickles, and modules nothing in the archive imports."""
        return [
            node
            for node in self.graph.nodes
            if self.kind(node) == "pickle"
            or (
                self.kind(node) not in ("host", "extern")
                and not self.predecessors(node)
            )
        ]

    def predecessors(self, node: str) -> list[str]:
        """Nodes with an edge to *node*."""
        return self.graph.predecessors(node)


class _Resolver:
    """Map an imported ``(module, attribute)`` to a node name."""

    def __init__(self, contents: Contents) -> None:
        self.modules = contents.modules
        # The most specific extern first: torch._utils before torch.
        self.externs = sorted(contents.externs, key=len, reverse=True)

    def extern_for(self, name: str) -> str | None:
        for extern in self.externs:
            if name == extern or name.startswith(extern + "."):
                return extern
        return None

    def known(self, name: str) -> str | None:
        if name in self.modules:
            return name
        return self.extern_for(name)

    def resolve(self, module: str, attribute: str | None) -> str:
        if attribute:
            submodule = self.known(f"{module}.{attribute}")
            if submodule is not None:
                return submodule
        return self.known(module) or module


def build_graph(contents: Contents) -> DepGraph:
    """Return the dependency graph of the archive described by *contents*."""
    graph = DiGraph()
    result = DepGraph(graph)
    for record in contents.pickles:
        graph.add_node(record, kind="pickle")
    for name, entry in contents.modules.items():
        kind = "mock" if entry.mocked else "package" if entry.is_package else "module"
        graph.add_node(name, kind=kind)
    for extern in contents.externs:
        graph.add_node(extern, kind="extern")
    resolver = _Resolver(contents)
    for record in contents.pickles:
        names, problem = _pickle_globals(contents.reader.read(record), record)
        if problem:
            result.problems[record] = problem
        for qualified in names:
            _add_global_edge(graph, resolver, record, qualified)
    for name, entry in contents.modules.items():
        _add_parent_edge(graph, resolver, name)
        if entry.mocked:
            continue
        source = contents.reader.read(entry.record)
        try:
            pairs = find_imports(source, name, is_package=entry.is_package)
        except ImportScanError as exc:
            result.problems[name] = f"cannot scan its imports: {exc}"
            continue
        for module, attribute in pairs:
            target = resolver.resolve(module, attribute)
            if target != name:
                _add_edge(graph, name, target)
    return result


def _pickle_globals(data: bytes, record: str) -> tuple[list[str], str | None]:
    """Return the globals the pickle *data* names, and a problem reading it if any.

    The security scanner reads them when this build has it (it also follows computed
    ``STACK_GLOBAL`` operands); otherwise :func:`read_pickle` does.
    """
    try:
        from .._pickle_scan import scan_pickle
    except ImportError:  # pragma: no cover - a build without the scanner
        info = read_pickle(data)
        return info.globals, info.error
    scanned = scan_pickle(data, record)
    names = list(dict.fromkeys(f"{g.module}.{g.name}" for g in scanned.globals))
    return names, "the pickle is malformed" if scanned.malformed else None


def _add_global_edge(
    graph: DiGraph, resolver: _Resolver, record: str, qualified: str
) -> None:
    """Add an edge from a pickle to the module of global *qualified*."""
    module, _, _ = qualified.rpartition(".")
    # A global's module may itself be a dotted attribute path: keep the longest
    # prefix the archive or its externs know.
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        known = resolver.known(".".join(parts[:end]))
        if known is not None:
            _add_edge(graph, record, known)
            return
    if module and module != "?":
        _add_edge(graph, record, module)


def _add_parent_edge(graph: DiGraph, resolver: _Resolver, name: str) -> None:
    parent = name.rpartition(".")[0]
    if parent and parent in resolver.modules:
        _add_edge(graph, name, parent)


def _add_edge(graph: DiGraph, source: str, target: str) -> None:
    if target not in graph:
        graph.add_node(target, kind="host")
    graph.add_edge(source, target)


def import_paths(
    deps: DepGraph, target: str, *, limit: int
) -> tuple[list[list[str]], bool]:
    """Return up to *limit* import paths from a root to *target*, shortest first.

    A path is a list of node names from the root to *target*. The flag is true when
    the search stopped early (more paths may exist).
    """
    roots = set(deps.roots())
    paths: list[list[str]] = []
    stack: list[list[str]] = [[target]]
    steps = 0
    truncated = False
    while stack:
        steps += 1
        if steps > _MAX_STEPS or len(paths) >= limit:
            truncated = True
            break
        path = stack.pop()
        node = path[-1]
        if node in roots and len(path) > 1:
            paths.append(path[::-1])
            continue
        preds = [p for p in deps.predecessors(node) if p not in path]
        if not deps.predecessors(node) and node in roots:
            paths.append(path[::-1])
            continue
        stack.extend([*path, pred] for pred in reversed(preds))
    paths.sort(key=len)
    return paths, truncated
