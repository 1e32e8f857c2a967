"""Tests for hermetic._graph.DiGraph: order, DOT output, closures and paths."""

from __future__ import annotations

import pytest

from hermetic import _graph
from hermetic._graph import DiGraph

HEADER = "digraph G {\nrankdir = LR;\nnode [shape=box];\n"


def _graph_of(*edges: tuple[str, str]) -> DiGraph:
    graph = DiGraph()
    for u, v in edges:
        graph.add_edge(u, v)
    return graph


def _diamond() -> DiGraph:
    r"""The diamond ``app -> {left, right} -> base``, plus ``base -> os`` and ``extra``.

    ::

        app.main --> app.left --> app.base --> os
            \------> app.right -----^
        tools.extra --> app.right
    """
    graph = _graph_of(
        ("app.main", "app.left"),
        ("app.main", "app.right"),
        ("app.left", "app.base"),
        ("app.right", "app.base"),
        ("app.base", "os"),
        ("tools.extra", "app.right"),
    )
    return graph


def test_nodes_keep_insertion_order_and_merge_attributes():
    """Re-adding a node merges attributes without moving it."""
    graph = DiGraph()
    graph.add_node("b", action="intern")
    graph.add_node("a")
    graph.add_node("b", provided=True, action="extern")
    assert list(graph.nodes) == ["b", "a"]
    assert graph.nodes["b"] == {"action": "extern", "provided": True}
    assert graph.nodes["a"] == {}


def test_node_attributes_are_live():
    """Writing into a node's attribute dict updates the graph."""
    graph = DiGraph()
    graph.add_node("m")
    graph.nodes["m"]["error"] = "DENIED"
    assert graph.nodes["m"] == {"error": "DENIED"}


def test_add_edge_adds_missing_nodes_in_order():
    """add_edge creates its endpoints, source first, keeping existing ones in place."""
    graph = DiGraph()
    graph.add_node("z")
    graph.add_edge("a", "z")
    graph.add_edge("a", "b")
    assert list(graph.nodes) == ["z", "a", "b"]
    assert "a" in graph
    assert "q" not in graph
    assert len(graph) == 3


def test_successors_and_predecessors_in_insertion_order():
    """Neighbour lists follow edge insertion order; duplicate edges count once."""
    graph = _graph_of(("a", "c"), ("a", "b"), ("d", "b"), ("a", "c"), ("c", "b"))
    assert graph.successors("a") == ["c", "b"]
    assert graph.predecessors("b") == ["a", "d", "c"]
    assert graph.successors("b") == []
    assert graph.predecessors("a") == []


def test_edges_grouped_by_source_in_node_order():
    """Edges list by source node order, then by insertion order within a source."""
    graph = _graph_of(("a", "b"), ("c", "b"), ("a", "c"))
    assert graph.edges == [("a", "b"), ("a", "c"), ("c", "b")]


def test_to_dot_matches_torch_format():
    """DOT text is torch's layout, byte for byte (checked against torch 2.13)."""
    graph = _graph_of(("a", "b"), ("c", "b"), ("a", "c"))
    graph.add_node("z")
    assert graph.to_dot() == (
        'digraph G {\nrankdir = LR;\nnode [shape=box];\n"a" -> "b";\n"a" -> "c";\n'
        '"c" -> "b";\n}\n'
    )


def test_to_dot_of_graph_without_edges_has_blank_line():
    """With no edges torch writes a blank line before the closing brace."""
    graph = DiGraph()
    assert graph.to_dot() == HEADER + "\n}\n"
    graph.add_node("lonely")
    assert graph.to_dot() == HEADER + "\n}\n"


def test_to_dot_keeps_pickle_node_names():
    """Pickle nodes (``<pkg.res>``) are quoted like any other name."""
    graph = _graph_of(("<models.model.pkl>", "models.net"))
    assert graph.to_dot() == HEADER + '"<models.model.pkl>" -> "models.net";\n}\n'


def test_to_dot_escapes_quotes_and_backslashes():
    """Names that would break DOT quoting are escaped."""
    graph = _graph_of(('<a.say "hi".txt>', "b\\c"))
    assert graph.to_dot() == HEADER + '"<a.say \\"hi\\".txt>" -> "b\\\\c";\n}\n'


def test_closures_include_the_start_node():
    """Forward and backward closures contain the start and everything reachable."""
    graph = _diamond()
    assert graph.forward_closure("app.left") == {"app.left", "app.base", "os"}
    assert graph.backward_closure("app.right") == {
        "app.right",
        "app.main",
        "tools.extra",
    }
    assert graph.forward_closure("os") == {"os"}


def test_closures_terminate_on_cycles():
    """Cycles are walked once."""
    graph = _graph_of(("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"))
    assert graph.forward_closure("b") == {"a", "b", "c", "d"}
    assert graph.backward_closure("d") == {"a", "b", "c", "d"}


def test_all_paths_with_multi_character_names():
    """all_paths works on real module names (torch's splits them into characters)."""
    graph = _graph_of(("mypkg.app", "mypkg.util"), ("mypkg.util", "sys"))
    assert graph.all_paths("mypkg.app", "sys") == (
        HEADER + '"mypkg.app" -> "mypkg.util";\n"mypkg.util" -> "sys";\n}\n'
    )


def test_all_paths_on_diamond_keeps_both_branches_only():
    """Every edge on some path appears once; edges off the paths do not."""
    assert _diamond().all_paths("app.main", "app.base") == (
        HEADER + '"app.main" -> "app.left";\n"app.main" -> "app.right";\n'
        '"app.left" -> "app.base";\n"app.right" -> "app.base";\n}\n'
    )


def test_all_paths_without_a_path_is_a_graph_with_no_edges():
    """Unreachable destinations give DOT text with no edge lines (torch: a DiGraph)."""
    graph = _diamond()
    assert graph.all_paths("os", "app.main") == HEADER + "\n}\n"
    assert graph.all_paths("app.left", "app.right") == HEADER + "\n}\n"
    assert graph.all_paths("app.main", "app.main") == HEADER + "\n}\n"


def test_all_paths_through_a_cycle():
    """Edges of a cycle lying between source and destination are included."""
    graph = _graph_of(("s", "a"), ("a", "b"), ("b", "a"), ("b", "t"), ("x", "a"))
    assert graph.all_paths("s", "t") == (
        HEADER + '"s" -> "a";\n"a" -> "b";\n"b" -> "a";\n"b" -> "t";\n}\n'
    )


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("all_paths", ("nope", "os")),
        ("all_paths", ("app.main", "nope")),
        ("forward_closure", ("nope",)),
        ("backward_closure", ("nope",)),
        ("successors", ("nope",)),
        ("predecessors", ("nope",)),
        ("first_path", ("nope",)),
    ],
)
def test_unknown_node_is_named_in_value_error(method, args):
    """Asking about a node that is not in the graph raises ValueError naming it."""
    with pytest.raises(ValueError) as info:
        getattr(_diamond(), method)(*args)
    assert (
        info.exconly() == "ValueError: the node 'nope' is not in the dependency graph"
    )


def test_first_path_takes_the_oldest_predecessor():
    """The path from a root follows the earliest-added predecessor at each step."""
    graph = _graph_of(("late.root", "x"), ("early.root", "late.root"))
    graph.add_edge("m", "x")  # "m" is added after "late.root", so it loses
    graph.add_edge("early.root", "m")
    assert graph.first_path("x") == ["early.root", "late.root", "x"]


def test_first_path_prefers_node_order_over_edge_order():
    """ "Earliest" is by node insertion, not by the order edges were added."""
    graph = DiGraph()
    graph.add_node("older")
    graph.add_edge("newer", "target")
    graph.add_edge("older", "target")
    assert graph.predecessors("target") == ["newer", "older"]
    assert graph.first_path("target") == ["older", "target"]


def test_first_path_of_root_is_itself():
    """A node without predecessors is its own path."""
    assert _diamond().first_path("app.main") == ["app.main"]


def test_first_path_matches_torch_report_shape():
    """The broken module comes last, its first user before it."""
    graph = _graph_of(("errpkg.a", "sys"), ("errpkg.b", "sys"))
    assert graph.first_path("sys") == ["errpkg.a", "sys"]


def test_first_path_survives_cycles():
    """A cycle stops the walk instead of looping forever."""
    graph = _graph_of(("a", "b"), ("b", "a"))
    assert graph.first_path("b") == ["a", "b"]
    graph = _graph_of(("root", "a"), ("a", "b"), ("b", "a"))
    assert graph.first_path("b") == ["root", "a", "b"]
    graph = _graph_of(("a", "a"))
    assert graph.first_path("a") == ["a"]


def test_long_chain_has_no_recursion_limit():
    """Closures and paths over a 10,000-node chain need no recursion."""
    graph = DiGraph()
    for i in range(10_000):
        graph.add_edge(f"m{i}", f"m{i + 1}")
    assert len(graph.forward_closure("m0")) == 10_001
    assert len(graph.backward_closure("m10000")) == 10_001
    assert len(graph.first_path("m10000")) == 10_001
    assert graph.all_paths("m0", "m10000").count("->") == 10_000


def test_module_has_sorted_all():
    """``__all__`` is sorted and names only what the module defines."""
    assert list(_graph.__all__) == sorted(_graph.__all__)
    assert all(hasattr(_graph, name) for name in _graph.__all__)
