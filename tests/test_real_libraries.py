"""Real third-party libraries interned whole, then run where they are not installed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from helpers import block_imports_prelude, run_python
from hermetic import PackageExporter, PackageImporter

networkx = pytest.importorskip("networkx", reason="needs networkx (in the dev extra)")

# Optional dependencies of the libraries below that are left to the host.
OPTIONAL_EXTERNS = [
    "numpy.**",
    "scipy.**",
    "pandas.**",
    "matplotlib.**",
    "pygraphviz.**",
    "pydot.**",
    "lxml.**",
    "IPython.**",
    "gmpy2",
    "gmpy",
    "typing_extensions",
]
TEST_MODULES = [
    "**.tests.**",
    "**.conftest",
    "pytest",
    "_pytest.**",
    "sympy.testing.**",
]


@pytest.fixture(scope="module")
def networkx_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("nx") / "graph.pt"
    graph = networkx.karate_club_graph()
    with PackageExporter(path) as exporter:
        exporter.intern("networkx.**", exclude=TEST_MODULES)
        exporter.mock(TEST_MODULES)
        exporter.extern(["sys", "io", "sympy.**", "mpmath.**", *OPTIONAL_EXTERNS])
        exporter.save_pickle("data", "graph.pkl", graph)
        atlas = Path(networkx.__file__).parent / "generators" / "atlas.dat.gz"
        exporter.save_binary("networkx.generators", "atlas.dat.gz", atlas.read_bytes())
        exporter.save_source_string(
            "job",
            "import networkx as nx\n\n"
            "def run(graph):\n"
            "    return (round(nx.average_clustering(graph), 6),\n"
            "            nx.shortest_path_length(graph, 0, 33))\n",
        )
        assert "networkx" in exporter.interned_modules()
    return path


def test_networkx_runs_where_it_is_not_installed(networkx_archive):
    """A packaged networkx and a pickled graph work where networkx is not importable."""
    expected = (
        round(networkx.average_clustering(networkx.karate_club_graph()), 6),
        networkx.shortest_path_length(networkx.karate_club_graph(), 0, 33),
    )
    out = run_python(
        block_imports_prelude("networkx")
        + f"""
from hermetic import PackageImporter
importer = PackageImporter({str(networkx_archive)!r})
graph = importer.load_pickle("data", "graph.pkl")
print(importer.import_module("job").run(graph))
try:
    import networkx
except ModuleNotFoundError:
    print("host has no networkx")
"""
    )
    assert out.splitlines() == [repr(expected), "host has no networkx"]


def test_networkx_data_files_are_read_from_the_package(networkx_archive):
    """networkx reads atlas.dat.gz via importlib.resources.files: from the package."""
    out = run_python(
        block_imports_prelude("networkx")
        + f"""
from hermetic import PackageImporter
nx = PackageImporter({str(networkx_archive)!r}).import_module("networkx")
atlas = nx.graph_atlas(6)
print(atlas.number_of_nodes(), atlas.number_of_edges())
"""
    )
    expected = networkx.graph_atlas(6)
    assert out.split() == [
        str(expected.number_of_nodes()),
        str(expected.number_of_edges()),
    ]


sympy = pytest.importorskip("sympy", reason="needs sympy (in the dev extra)")


@pytest.mark.slow
def test_sympy_interns_at_the_default_recursion_limit_and_simplifies(tmp_path):
    """sympy (~1,000 modules) interns at the default recursion limit; simplify runs."""
    path = tmp_path / "sympy.pt"
    limit = sys.getrecursionlimit()
    with PackageExporter(path) as exporter:
        exporter.intern(["sympy.**", "mpmath.**"], exclude=TEST_MODULES)
        exporter.mock(TEST_MODULES)
        exporter.extern(
            ["sys", "io", *OPTIONAL_EXTERNS, "symengine.**", "pyglet.**", "torch.**"]
        )
        exporter.save_source_string(
            "job",
            "import sympy\n"
            "x = sympy.Symbol('x')\n"
            "def run():\n"
            "    return (str(sympy.simplify(sympy.sin(x)**2 + sympy.cos(x)**2)),\n"
            "            str(sympy.integrate(x**2, x)))\n",
        )
        interned = len(exporter.interned_modules())
    assert sys.getrecursionlimit() == limit
    assert interned > 500
    out = run_python(
        block_imports_prelude("sympy", "mpmath")
        + f"""
from hermetic import PackageImporter
print(PackageImporter({str(path)!r}).import_module("job").run())
"""
    )
    assert out.strip() == "('1', 'x**3/3')"


def test_two_packages_of_one_library_do_not_share_modules(networkx_archive):
    """Two importers of the same packaged library keep separate module objects."""
    first, second = PackageImporter(networkx_archive), PackageImporter(networkx_archive)
    nx1 = first.import_module("networkx")
    nx2 = second.import_module("networkx")
    assert nx1 is not nx2
    assert nx1.Graph is not nx2.Graph
    graph = first.load_pickle("data", "graph.pkl")
    assert isinstance(graph, nx1.Graph)
    assert not isinstance(graph, nx2.Graph)
    assert "networkx" not in sys.modules or sys.modules["networkx"] is networkx
