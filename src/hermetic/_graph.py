"""A small directed graph of module dependencies, and the paths through it.

An edge ``u -> v`` means *u* depends on *v*. Nodes keep the order in which they were
first added; that order decides the order of DOT lines, of records written by an
exporter and of its error report. Every walk here uses an explicit stack or queue, so
long dependency chains cannot exhaust the recursion limit. There is no edge removal:
an exporter's graph only grows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["DiGraph"]

_DOT_HEADER = "digraph G {\nrankdir = LR;\nnode [shape=box];\n"
_DOT_FOOTER = "\n}\n"


class DiGraph:
    """Nodes with attribute dicts, and edges, both kept in insertion order.

    >>> graph = DiGraph()
    >>> graph.add_edge("app", "util")
    >>> graph.add_node("app", action="intern")
    >>> graph.nodes["app"], graph.successors("app"), graph.predecessors("util")
    ({'action': 'intern'}, ['util'], ['app'])
    """

    def __init__(self) -> None:
        self._nodes: dict[str, dict[str, object]] = {}
        self._order: dict[str, int] = {}
        self._succ: dict[str, dict[str, None]] = {}
        self._pred: dict[str, dict[str, None]] = {}

    def add_node(self, name: str, **attrs: object) -> None:
        """Add *name* if it is new, then merge *attrs* into its attributes."""
        if name not in self._nodes:
            self._order[name] = len(self._order)
            self._nodes[name] = {}
            self._succ[name] = {}
            self._pred[name] = {}
        self._nodes[name].update(attrs)

    def add_edge(self, u: str, v: str) -> None:
        """Record that *u* depends on *v*, adding either node if it is missing."""
        self.add_node(u)
        self.add_node(v)
        self._succ[u][v] = None
        self._pred[v][u] = None

    @property
    def nodes(self) -> Mapping[str, dict[str, object]]:
        """Each node's attribute dict, by name, in insertion order (a live view)."""
        return self._nodes

    @property
    def edges(self) -> list[tuple[str, str]]:
        """Every edge, grouped by source in node order, then in insertion order."""
        return [(u, v) for u, targets in self._succ.items() for v in targets]

    def successors(self, name: str) -> list[str]:
        """The nodes *name* depends on, in insertion order."""
        return list(self._succ[self._require(name)])

    def predecessors(self, name: str) -> list[str]:
        """The nodes that depend on *name*, in insertion order."""
        return list(self._pred[self._require(name)])

    def __contains__(self, name: object) -> bool:
        return name in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def to_dot(self) -> str:
        """Render the edges as DOT text, in torch.package's layout.

        Nodes without edges do not appear; with no edges at all, a blank line stands
        where the edge lines would be (as torch writes it).

        >>> graph = DiGraph()
        >>> graph.add_node("lonely")
        >>> print(graph.to_dot(), end="")
        digraph G {
        rankdir = LR;
        node [shape=box];
        <BLANKLINE>
        }
        """
        return _dot(self.edges)

    def forward_closure(self, src: str) -> set[str]:
        """Every node reachable from *src*, *src* included."""
        return _reach(self._succ, self._require(src))

    def backward_closure(self, dst: str) -> set[str]:
        """Every node that reaches *dst*, *dst* included."""
        return _reach(self._pred, self._require(dst))

    def all_paths(self, src: str, dst: str) -> str:
        """Render, as DOT text, every node and edge on some path from *src* to *dst*.

        With no such path the text has no edge lines.
        """
        on_path = self.forward_closure(src) & self.backward_closure(dst)
        return _dot((u, v) for u, v in self.edges if u in on_path and v in on_path)

    def first_path(self, dst: str) -> list[str]:
        """Return a path from a root to *dst*, stepping back to the oldest predecessor.

        "Oldest" means first added to the graph. A predecessor already on the path is
        skipped, so a cycle ends the walk instead of looping forever; the path then
        starts at the node where the cycle closed.

        >>> graph = DiGraph()
        >>> for u, v in [("app", "a"), ("a", "b"), ("b", "a"), ("late", "b")]:
        ...     graph.add_edge(u, v)
        >>> graph.first_path("b")
        ['app', 'a', 'b']
        >>> cycle = DiGraph()
        >>> cycle.add_edge("x", "y")
        >>> cycle.add_edge("y", "x")
        >>> cycle.first_path("y")
        ['x', 'y']
        """
        path = [self._require(dst)]
        seen = {dst}
        while True:
            fresh = [p for p in self._pred[path[-1]] if p not in seen]
            if not fresh:
                return path[::-1]
            oldest = min(fresh, key=self._order.__getitem__)
            path.append(oldest)
            seen.add(oldest)

    def _require(self, name: str) -> str:
        if name not in self._nodes:
            raise ValueError(f"the node {name!r} is not in the dependency graph")
        return name


def _reach(neighbours: Mapping[str, Mapping[str, None]], start: str) -> set[str]:
    seen = {start}
    stack = [start]
    while stack:
        for nxt in neighbours[stack.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def _dot(edges: Iterable[tuple[str, str]]) -> str:
    r"""Render *edges* as DOT text.

    Quotes and backslashes in names are escaped so the text stays valid DOT; torch
    writes names verbatim, which only differs for names no module can have.

    >>> _dot([("a", 'say "hi"')])
    'digraph G {\nrankdir = LR;\nnode [shape=box];\n"a" -> "say \\"hi\\"";\n}\n'
    """
    lines = "\n".join(f'"{_quote(u)}" -> "{_quote(v)}";' for u, v in edges)
    return _DOT_HEADER + lines + _DOT_FOOTER


def _quote(name: str) -> str:
    return name.replace("\\", "\\\\").replace('"', '\\"')
