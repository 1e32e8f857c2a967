"""The same calls through torch.package and hermetic give the same answers (issue 4).

Each test makes the same saves, or the same mistakes, with both exporters and compares
what they report: ``file_structure()`` text, ``dependency_graph_string()``, module
lists, ``PackagingError`` text, and re-export results. Where hermetic differs on
purpose (README, "Coming from torch.package") the test says so and compares the
documented difference itself; the main one here is that hermetic interns the parent
packages of an interned module, so most inputs use top-level modules.

The host modules, drawn (each line is an import)::

    tppapp ──> tpphelp ──> tppleaf ──> textwrap
      ├──> tppmock      (mocked)
      └──> json, collections, os.path, math, re, torch

    tppkg/__init__.py, tppkg/mod.py ──> tppkg.other, tppkg.util ──> json; tppleaf
"""

from __future__ import annotations

import importlib
import io
import pickletools
import re
import warnings
import zipfile

import pytest

import hermetic
import hermetic.analyze
from hermetic.package_exporter import PackagingErrorReason

torch = pytest.importorskip(
    "torch", reason="parity tests need torch==2.13.0 (pip install 'hermetic[torch]')"
)
tpackage = torch.package
tanalyze = importlib.import_module("torch.package.analyze")

pytestmark = pytest.mark.torch

#: torch.package's own exporter and importer warn on every tensor they touch.
TORCH_WARNS = pytest.mark.filterwarnings(
    "ignore:TypedStorage is deprecated:UserWarning"
)
LIBRARIES = (tpackage, hermetic)

SOURCES = {
    "tppapp.py": """
        import json
        import collections
        from os import path
        import math, re
        import tpphelp
        import tppmock
        import torch


        class Model:
            def __init__(self, weight):
                self.weight = weight
                self.bias = torch.arange(3.0)
                self.scale = tpphelp.scale

            def __call__(self, x):
                return self.scale(x) * self.weight + float(self.bias.sum())
    """,
    "tpphelp.py": """
        import tppleaf
        from tppleaf import FACTOR


        def scale(x):
            return x * FACTOR
    """,
    "tppleaf.py": "import textwrap\n\nFACTOR = 2\n",
    "tppmock.py": "class Real:\n    pass\n",
    "tppkg/__init__.py": "NAME = 'tppkg'\n",
    "tppkg/mod.py": "from tppkg import other\nfrom . import util\nimport tppleaf\n",
    "tppkg/other.py": "X = 1\n",
    "tppkg/util.py": "import json\n",
}

#: Module names hermetic's reports use where torch.package's use mangled ones.
MANGLED = re.compile(r"<torch_package_\d+>\.")


@pytest.fixture
def tppapp(src_tree):
    """The host modules above, importable; returns ``tppapp``."""
    src_tree(SOURCES)
    return importlib.import_module("tppapp")


def same_saves(library, target, tppapp):
    """Make one fixed set of saves with *library*'s exporter; return it unclosed."""
    exporter = library.PackageExporter(target)
    exporter.mock("tppmock")
    exporter.intern("tpp*")
    exporter.save_module("tppapp")
    exporter.save_pickle("res", "model.pkl", tppapp.Model(3))
    exporter.save_pickle(
        "res", "nested.pkl", {"t": torch.ones(2), "k": [1, "a"]}, pickle_protocol=4
    )
    exporter.save_text("res.text", "note.txt", "héllo")
    exporter.save_binary("res.raw", "blob.bin", bytes(range(16)))
    return exporter


def reopen(library, buffer):
    """Open the package written to *buffer* with *library*'s importer."""
    return library.PackageImporter(io.BytesIO(buffer.getvalue()))


def edges(dot):
    """The edge lines of DOT text, in order."""
    return [line for line in dot.splitlines() if " -> " in line]


def records(path):
    with zipfile.ZipFile(path) as zf:
        return {
            info.filename.partition("/")[2]: zf.read(info) for info in zf.infolist()
        }


def pickle_globals(data):
    """The (module, name) pairs a pickle names, as a set."""
    found = set()
    strings = []
    for opcode, arg, _ in pickletools.genops(data):
        if opcode.name == "GLOBAL":
            found.add(tuple(arg.split(" ", 1)))
        elif opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(arg)
        elif opcode.name == "STACK_GLOBAL":
            found.add((strings[-2], strings[-1]))
    return found


def grouped_from_graph(graph):
    """{reason text: [modules]} from torch's PackagingError graph, in graph order."""
    grouped = {}
    for name, attrs in graph.nodes.items():
        if "error" in attrs:
            grouped.setdefault(attrs["error"].value, []).append(name)
    return grouped


# -- file_structure --------------------------------------------------------------------


@TORCH_WARNS
@pytest.mark.parametrize(
    ("options", "shown"),
    [
        ({}, {".data", "byteorder", "tppapp.py", "model.pkl", "note.txt"}),
        ({"include": "tpp*.py"}, {"tppapp.py", "tppmock.py"}),
        ({"include": "res/**", "exclude": "**/*.pkl"}, {"note.txt", "blob.bin"}),
    ],
    ids=["all", "include", "include-exclude"],
)
def test_file_structure_text_equal_for_the_same_saves(tppapp, tmp_path, options, shown):
    """Each library's importer draws its own archive of the same saves alike."""
    texts = {}
    for library in LIBRARIES:
        path = tmp_path / library.__name__ / "same.pt"
        path.parent.mkdir()
        same_saves(library, path, tppapp).close()
        drawn = dict(options)
        if library is hermetic:  # leave out the manifest torch does not write
            drawn["exclude"] = [options.get("exclude", "-"), ".data/hermetic/**"]
        text = str(library.PackageImporter(str(path)).file_structure(**drawn))
        first, _, rest = text.partition("\n")
        assert first == f"─── {path}"
        texts[library] = rest
    assert texts[hermetic] == texts[tpackage]
    for name in shown:
        assert f"── {name}\n" in texts[hermetic]


def test_file_structure_of_an_unzipped_folder_shows_the_data_records(tmp_path):
    """From an unzipped folder hermetic draws the same tree as from the ZIP.

    torch.package's folder reader skips dot-files, so its tree has no `.data`; the
    rest of the drawing is the same.
    """
    path = tmp_path / "pkg.pt"
    with hermetic.PackageExporter(path) as exporter:
        exporter.save_source_string("fs.mod", "X = 1\n")
        exporter.save_text("fs.data", "a.txt", "a")
    with zipfile.ZipFile(path) as zf:
        zf.extractall(tmp_path / "unzipped")
    folder = str(tmp_path / "unzipped" / "pkg")
    ours = hermetic.PackageImporter(folder).file_structure()
    zipped = str(hermetic.PackageImporter(path).file_structure())
    assert str(ours).partition("\n")[2] == zipped.partition("\n")[2]
    assert ours.has_file(".data/version")
    theirs = str(tpackage.PackageImporter(folder).file_structure())
    assert theirs == str(
        hermetic.PackageImporter(folder).file_structure(exclude=".data/**")
    )


@TORCH_WARNS
@pytest.mark.parametrize("writer", LIBRARIES, ids=["torch", "hermetic"])
def test_rough_edge_8_tensors_load_from_an_unzipped_folder(writer, tmp_path):
    """hermetic loads tensors and shared views from an unzipped folder; torch fails."""
    path = tmp_path / "tensors.pt"
    base = torch.arange(6.0)
    with writer.PackageExporter(path) as exporter:
        exporter.save_pickle("t", "all.pkl", {"base": base, "view": base[2:4]})
    with zipfile.ZipFile(path) as zf:
        zf.extractall(tmp_path / "unzipped")
    folder = str(tmp_path / "unzipped" / "tensors")
    loaded = hermetic.PackageImporter(folder).load_pickle("t", "all.pkl")
    assert torch.equal(loaded["base"], base)
    assert torch.equal(loaded["view"], base[2:4])
    loaded["base"][2] = 10.0
    assert loaded["view"][0] == 10.0
    with pytest.raises(AttributeError, match="_typed_storage"):
        tpackage.PackageImporter(folder).load_pickle("t", "all.pkl")


# -- the exporter's graph and introspection --------------------------------------------


@TORCH_WARNS
def test_dependency_graph_string_equal_for_the_same_saves(tppapp):
    """Top-level modules, externs, mocks and pickles give the same DOT text."""
    exporters = [same_saves(library, io.BytesIO(), tppapp) for library in LIBRARIES]
    theirs, ours = (e.dependency_graph_string() for e in exporters)
    assert ours == theirs
    assert '"<res.nested.pkl>" -> "torch._utils";' in edges(ours)
    for exporter in exporters:
        exporter.close()


@TORCH_WARNS
def test_module_lists_and_rdeps_equal_for_the_same_saves(tppapp):
    """interned/externed/mocked/denied_modules and get_rdeps agree before close."""
    exporters = [same_saves(library, io.BytesIO(), tppapp) for library in LIBRARIES]
    for exporter in exporters:
        exporter.deny("tppdenied")
    theirs, ours = exporters
    for method in ("interned_modules", "externed_modules", "mocked_modules"):
        assert getattr(ours, method)() == getattr(theirs, method)(), method
    assert ours.mocked_modules() == ["tppmock"]
    assert ours.denied_modules() == theirs.denied_modules() == []
    for node in theirs.dependency_graph.nodes:
        assert ours.get_rdeps(node) == theirs.get_rdeps(node), node
    assert ours.get_unique_id() == theirs.get_unique_id() == "0"
    for exporter in exporters:
        exporter.close()


def test_package_graph_differs_only_by_the_parent_package_edge(tppapp):
    """Interning tppkg.mod, hermetic adds just the edge to (and node of) `tppkg`.

    torch.package leaves the parent out and loads an empty stand-in for it; hermetic
    interns it so its ``__init__`` runs (README: "Coming from torch.package").
    """
    exporters = []
    for library in LIBRARIES:
        exporter = library.PackageExporter(io.BytesIO())
        exporter.intern("tppkg.**")
        exporter.intern("tppleaf")
        exporter.save_module("tppkg.mod")
        exporters.append(exporter)
    theirs, ours = exporters
    parent_edge = '"tppkg.mod" -> "tppkg";'
    assert parent_edge not in edges(theirs.dependency_graph_string())
    our_edges = edges(ours.dependency_graph_string())
    assert our_edges.count(parent_edge) == 1
    our_edges.remove(parent_edge)
    assert our_edges == edges(theirs.dependency_graph_string())
    assert ours.interned_modules() == ["tppkg", *theirs.interned_modules()]
    for exporter in exporters:
        exporter.close()


def test_all_paths_agrees_with_torch_where_torch_works(src_tree):
    """For one-letter module names (torch's all_paths handles only those) the edges
    on every path are the same; torch lists them in a different order.
    """
    src_tree(
        {
            "a.py": "import b\nimport c\n",
            "b.py": "import d\n",
            "c.py": "import d\nimport json\n",
            "d.py": "X = 1\n",
            "e.py": "import a\n",
        }
    )
    exporters = []
    for library in LIBRARIES:
        exporter = library.PackageExporter(io.BytesIO())
        exporter.intern(["a", "b", "c", "d", "e"])
        exporter.save_module("e")
        exporters.append(exporter)
    theirs, ours = exporters
    for src, dst in [("a", "d"), ("e", "d"), ("e", "b")]:
        their_text, our_text = theirs.all_paths(src, dst), ours.all_paths(src, dst)
        assert sorted(edges(our_text)) == sorted(edges(their_text)), (src, dst)
        assert our_text.startswith("digraph G {\nrankdir = LR;\nnode [shape=box];\n")
    # Unreachable: torch returns a DiGraph object, hermetic an edge-less DOT string.
    assert not isinstance(theirs.all_paths("d", "a"), str)
    assert edges(ours.all_paths("d", "a")) == []
    for exporter in exporters:
        exporter.close()


# -- the same mistakes -----------------------------------------------------------------


def no_action(exporter, tppapp):
    exporter.intern("tppapp")
    exporter.save_module("tppapp")


def denied(exporter, tppapp):
    exporter.deny("tppleaf")
    exporter.intern("tpp*")
    exporter.save_source_string("tppuser", "import tpphelp\n")


def mocked_but_used(exporter, tppapp):
    exporter.mock("tppmock")
    exporter.save_pickle(
        "res", "real.pkl", [tppapp.tppmock.Real, tppapp.tppmock.Real()]
    )


def every_mistake(exporter, tppapp):
    exporter.mock("tppmock")
    exporter.deny("tppleaf")
    exporter.intern("tppapp")
    exporter.save_module("tppapp")
    exporter.save_source_string("tppuser", "import tppleaf\nimport sys\nimport io\n")
    exporter.save_pickle("res", "real.pkl", tppapp.tppmock.Real())


@pytest.mark.parametrize(
    "mistake",
    [no_action, denied, mocked_but_used, every_mistake],
    ids=lambda f: f.__name__,
)
@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_same_mistakes_raise_the_same_packaging_error(tppapp, mistake, debug):
    """Same error type, same grouped module lists, same text, same first uses."""
    errors = {}
    for library in LIBRARIES:
        exporter = library.PackageExporter(io.BytesIO(), debug=debug)
        mistake(exporter, tppapp)
        with pytest.raises(library.PackagingError) as info:
            exporter.close()
        errors[library] = info.value
    theirs, ours = errors[tpackage], errors[hermetic]
    assert type(ours).__name__ == type(theirs).__name__ == "PackagingError"
    assert ours.problems == grouped_from_graph(theirs.dependency_graph)
    assert str(ours) == str(theirs)
    assert hermetic.analyze.find_first_use_of_broken_modules(
        ours
    ) == tanalyze.find_first_use_of_broken_modules(theirs)


def test_grouped_lists_for_every_mistake(tppapp):
    """The grouped lists themselves, as both libraries report them."""
    exporter = hermetic.PackageExporter(io.BytesIO())
    every_mistake(exporter, tppapp)
    with pytest.raises(hermetic.PackagingError) as info:
        exporter.close()
    assert info.value.problems == {
        PackagingErrorReason.NO_ACTION.value: [
            "tpphelp",
            "sys",
            "io",
        ],
        PackagingErrorReason.DENIED.value: ["tppleaf"],
        PackagingErrorReason.MOCKED_BUT_STILL_USED.value: ["tppmock"],
    }


def test_pattern_that_matched_nothing_raises_the_same_empty_match_error():
    """allow_empty=False on a pattern that matched nothing: same type and text."""
    messages = {}
    for library in LIBRARIES:
        exporter = library.PackageExporter(io.BytesIO())
        exporter.extern(["tppnothing.**", "tppnone"], allow_empty=False)
        exporter.save_source_string("tppuser", "import json\n")
        with pytest.raises(library.EmptyMatchError) as info:
            exporter.close()
        messages[library] = str(info.value)
    assert messages[hermetic] == messages[tpackage]


def test_unpicklable_objects_raise_pickling_errors_in_both(tppapp):
    """A local class, or a packaged object saved without its importer: PicklingError."""
    import pickle

    def make_local():
        class Local:
            pass

        return Local()

    for library in LIBRARIES:
        buffer = io.BytesIO()
        with library.PackageExporter(buffer) as exporter:
            exporter.intern("tpp*")
            exporter.save_pickle("res", "scale.pkl", tppapp.tpphelp.scale)
        loaded = reopen(library, buffer).load_pickle("res", "scale.pkl")
        exporter = library.PackageExporter(io.BytesIO())
        with pytest.raises(pickle.PicklingError, match="Local"):
            exporter.save_pickle("res", "local.pkl", make_local())
        with pytest.raises(pickle.PicklingError, match="scale"):
            exporter.save_pickle("res", "scale.pkl", loaded)


# -- importers -------------------------------------------------------------------------


def test_sys_importer_names_host_objects_alike(tppapp):
    """get_name() of host classes, functions and methods is the same pair."""
    import collections

    for obj in (tppapp.Model, tppapp.tpphelp.scale, collections.OrderedDict, len):
        assert hermetic.sys_importer.get_name(obj) == tpackage.sys_importer.get_name(
            obj
        )


def test_importer_errors_have_the_same_kinds(tppapp):
    """Unreachable: ObjNotFoundError; packaged but host first: ObjMismatchError."""

    def local():
        pass

    for library in LIBRARIES:
        with pytest.raises(library.ObjNotFoundError):
            library.sys_importer.get_name(local)
        buffer = io.BytesIO()
        with library.PackageExporter(buffer) as exporter:
            exporter.intern("tpp*")
            exporter.save_pickle("res", "scale.pkl", tppapp.tpphelp.scale)
        importer = reopen(library, buffer)
        packaged = importer.load_pickle("res", "scale.pkl")
        with pytest.raises(
            library.ObjMismatchError, match="current Python environment"
        ):
            library.sys_importer.get_name(packaged)
        assert importer.get_name(packaged) == ("tpphelp", "scale")
        ordered = library.OrderedImporter(importer, library.sys_importer)
        assert ordered.get_name(packaged) == ("tpphelp", "scale")


# -- re-export -------------------------------------------------------------------------


def reexport(library, tmp_path, tppapp):
    """Save with *library*, load, save the loaded object again; return both paths."""
    first = tmp_path / library.__name__ / "first.pt"
    second = tmp_path / library.__name__ / "same.pt"
    first.parent.mkdir()
    payload = [tppapp.Model(4), tppapp.tpphelp.scale, {"k": (1, 2.5, "s")}]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "TypedStorage is deprecated", UserWarning)
        with library.PackageExporter(first) as exporter:
            exporter.mock("tppmock")
            exporter.intern("tpp*")
            exporter.save_pickle("res", "model.pkl", payload)
        importer = library.PackageImporter(first)
        loaded = importer.load_pickle("res", "model.pkl")
        with library.PackageExporter(
            second, importer=(importer, library.sys_importer)
        ) as exporter:
            exporter.mock("tppmock")
            exporter.intern("tpp*")
            exporter.save_pickle("res", "model.pkl", loaded)
            graph = exporter.dependency_graph_string()
    return second, graph


@TORCH_WARNS
def test_reexport_gives_the_same_archive_contents(tppapp, tmp_path):
    """Re-exported by each library: same records, modules, graph edges and globals."""
    (their_path, their_graph), (our_path, our_graph) = (
        reexport(library, tmp_path, tppapp) for library in LIBRARIES
    )
    theirs, ours = records(their_path), records(our_path)
    # hermetic adds its manifest (SHA-256 of every record) and recorded environment,
    # which torch ignores.
    extra = [".data/hermetic/manifest.json", ".data/hermetic/environment.json"]
    assert sorted(ours) == sorted([*theirs, *extra])
    for name in ("tppapp.py", "tpphelp.py", "tppleaf.py"):
        assert ours[name] == theirs[name], name
    # Each library writes its own stub code. Both take the re-exported stub for a
    # package, since its module __getattr__ answers `__path__` too.
    assert {"tppmock/__init__.py", "_mock.py"} <= set(ours)
    assert set(ours[".data/extern_modules"].split()) == set(
        theirs[".data/extern_modules"].split()
    )
    assert sorted(edges(our_graph)) == sorted(edges(their_graph))
    assert pickle_globals(ours["res/model.pkl"]) == pickle_globals(
        theirs["res/model.pkl"]
    )
    assert not any(MANGLED.match(m) for m, _ in pickle_globals(ours["res/model.pkl"]))
    for path in (their_path, our_path):
        for library in LIBRARIES:
            model, scale, plain = library.PackageImporter(path).load_pickle(
                "res", "model.pkl"
            )
            assert (model(1), scale(2), plain) == (11.0, 4, {"k": (1, 2.5, "s")})


@TORCH_WARNS
def test_reexport_keeps_torchs_module_order(tppapp, tmp_path):
    """The re-exported archive lists extern modules in the same order as torch's."""
    (their_path, their_graph), (our_path, our_graph) = (
        reexport(library, tmp_path, tppapp) for library in LIBRARIES
    )
    assert edges(our_graph) == edges(their_graph)
    record = ".data/extern_modules"
    assert records(our_path)[record] == records(their_path)[record]


# -- markers and analysis --------------------------------------------------------------


def test_is_from_package_agrees_except_for_classes_and_functions(tppapp):
    """Modules and instances agree; packaged classes and functions are hermetic's fix.

    torch.package's ``is_from_package`` is False for a packaged class or function
    (its rough edge 20); hermetic's is True.
    """
    answers = {}
    for library in LIBRARIES:
        buffer = io.BytesIO()
        with library.PackageExporter(buffer) as exporter:
            exporter.intern("tpp*")
            exporter.save_pickle(
                "res", "x.pkl", [tppapp.tppmock.Real(), tppapp.tpphelp.scale]
            )
        importer = reopen(library, buffer)
        module = importer.import_module("tppmock")
        instance, function = importer.load_pickle("res", "x.pkl")
        objects = {
            "module": module,
            "instance": instance,
            "extern module": importer.import_module("textwrap"),
            "str": "tppmock",
            "class": module.Real,
            "function": function,
        }
        answers[library] = {k: library.is_from_package(v) for k, v in objects.items()}
    theirs, ours = answers[tpackage], answers[hermetic]
    assert ours == {**theirs, "class": True, "function": True}
    assert theirs["class"] is theirs["function"] is False


def test_trace_dependencies_agrees_up_to_demangling(tppapp):
    """The same modules are traced; hermetic reports packaged ones demangled."""
    buffer = io.BytesIO()
    with hermetic.PackageExporter(buffer) as exporter:
        exporter.intern("tpp*")
        exporter.save_module("tpphelp")
    packaged = reopen(hermetic, buffer).import_module("tpphelp")
    for function, inputs in [
        (tppapp.tpphelp.scale, [(1,), (2,)]),
        (packaged.scale, [(3,)]),
    ]:
        theirs = tanalyze.trace_dependencies(function, inputs)
        ours = hermetic.analyze.trace_dependencies(function, inputs)
        assert sorted(ours) == sorted(MANGLED.sub("", name) for name in theirs)
    assert hermetic.analyze.trace_dependencies(packaged.scale, [(3,)]) == ["tpphelp"]
