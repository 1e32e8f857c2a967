"""torch.package's API surface, shown working in hermetic without torch (issue 4).

Structure (``file_structure``), the exporter's graph and introspection, hooks,
importers, re-export, markers and ``hermetic.analyze``. The same calls are compared
with torch.package itself in ``tests/interop/test_parity_torch.py``.

The host modules most tests package, drawn (each line is an import)::

    ptyapp ──> ptyhelp ──> ptyleaf ──> textwrap
       │  └──> ptyside ───────┘
       └─────> json

``ptyapp.Thing`` instances are what the tests pickle, as ``res/thing.pkl``.
"""

from __future__ import annotations

import collections
import importlib
import io
import json
import logging
import pickle
import pickletools
import textwrap
import zipfile

import pytest

from helpers import block_imports_prelude, run_python
from hermetic import (
    Directory,
    Importer,
    ObjMismatchError,
    ObjNotFoundError,
    OrderedImporter,
    PackageExporter,
    PackageImporter,
    PackagingError,
    is_from_package,
    sys_importer,
)
from hermetic.analyze import find_first_use_of_broken_modules, trace_dependencies

SOURCES = {
    "ptyapp.py": """
        import json

        import ptyhelp, ptyside


        class Thing:
            def __init__(self, weight):
                self.weight = weight
                self.scale = ptyhelp.scale
                self.part = ptyside.Part(weight)

            def describe(self):
                return json.dumps([self.scale(self.weight), self.part.twice()])


        def run(value):
            return json.dumps(ptyhelp.scale(value))
    """,
    "ptyhelp.py": """
        import ptyleaf


        def scale(value):
            return ptyleaf.FACTOR * value
    """,
    "ptyside.py": """
        import ptyleaf


        class Part:
            def __init__(self, value):
                self.value = value

            def twice(self):
                return 2 * self.value
    """,
    "ptyleaf.py": """
        import textwrap

        FACTOR = 3
    """,
}
PTY_MODULES = ("ptyapp", "ptyhelp", "ptyside", "ptyleaf")

#: A host class and the name every importer should give it.
ODICT_NAME = ("collections", "OrderedDict")
DOT_HEADER = "digraph G {\nrankdir = LR;\nnode [shape=box];\n"
EMPTY_DOT = DOT_HEADER + "\n}\n"
DENIED = "Module was denied by a pattern."
NO_ACTION = (
    "Module did not match against any action pattern. Extern, mock, or intern it."
)


@pytest.fixture
def ptyapp(src_tree):
    """The ``pty*`` modules, importable from the host; returns ``ptyapp``."""
    src_tree(SOURCES)
    return importlib.import_module("ptyapp")


def export_thing(target, ptyapp, **options):
    """Intern the pty modules and pickle a Thing; return the (unclosed) exporter."""
    exporter = PackageExporter(target, **options)
    exporter.intern("pty*")
    exporter.save_pickle("res", "thing.pkl", ptyapp.Thing(5))
    return exporter


def open_package(buffer: io.BytesIO) -> PackageImporter:
    return PackageImporter(io.BytesIO(buffer.getvalue()))


def disassemble(data: bytes) -> str:
    out = io.StringIO()
    pickletools.dis(data, out=out)
    return out.getvalue()


# -- file_structure --------------------------------------------------------------------


@pytest.fixture
def tree_importer():
    """A package with modules, a pickle and nested text records."""
    buffer = io.BytesIO()
    with PackageExporter(buffer) as exporter:
        exporter.save_source_string("fs.models", "", is_package=True)
        exporter.save_source_string("fs.models.net", "X = 1\n")
        exporter.save_text("fs.data", "b.txt", "b")
        exporter.save_text("fs.data", "a.txt", "a")
        exporter.save_pickle("fs", "obj.pkl", [1, 2])
    return open_package(buffer)


def test_file_structure_draws_folders_first_then_files(tree_importer):
    """The tree lists every record, folders before files, each sorted."""
    assert str(tree_importer.file_structure()) == textwrap.dedent(
        """\
        ─── <binary>
            ├── .data
            │   ├── hermetic
            │   │   ├── environment.json
            │   │   └── manifest.json
            │   ├── extern_modules
            │   ├── python_version
            │   ├── serialization_id
            │   └── version
            ├── fs
            │   ├── data
            │   │   ├── a.txt
            │   │   └── b.txt
            │   ├── models
            │   │   ├── __init__.py
            │   │   └── net.py
            │   └── obj.pkl
            └── byteorder
        """
    )


def test_file_structure_include_and_exclude_are_slash_globs(tree_importer):
    """include/exclude take '/'-separated globs, one or several."""
    tree = tree_importer.file_structure(include="fs/**", exclude="**/*.txt")
    assert str(tree) == textwrap.dedent(
        """\
        ─── <binary>
            └── fs
                ├── models
                │   ├── __init__.py
                │   └── net.py
                └── obj.pkl
        """
    )
    tree = tree_importer.file_structure(include=["fs/data/*", "byteorder"])
    assert str(tree) == textwrap.dedent(
        """\
        ─── <binary>
            ├── fs
            │   └── data
            │       ├── a.txt
            │       └── b.txt
            └── byteorder
        """
    )


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("fs/data/a.txt", True),
        ("fs/data", True),
        ("fs", True),
        (".data/version", True),
        ("byteorder", True),
        ("fs/data/c.txt", False),
        ("fs/data/a.txt/more", False),
        ("data", False),
        ("", False),
    ],
)
def test_has_file_is_true_for_files_and_folders(tree_importer, path, expected):
    """has_file() walks '/' segments and answers for files and folders alike."""
    assert tree_importer.file_structure().has_file(path) is expected


def test_has_file_only_sees_what_was_included(tree_importer):
    """A record left out by include/exclude is not in the tree."""
    tree = tree_importer.file_structure(exclude=".data/**")
    assert isinstance(tree, Directory)
    assert tree.has_file("fs/obj.pkl")
    assert not tree.has_file(".data/version")
    assert not tree.has_file(".data")


def test_file_structure_is_rooted_at_the_archive_path(archive):
    """For an archive on disk the root line names the path the importer was given."""
    with PackageExporter(archive) as exporter:
        exporter.save_text("a", "b.txt", "c")
    text = str(PackageImporter(archive).file_structure(include="a/**"))
    assert text == f"─── {archive}\n    └── a\n        └── b.txt\n"


# -- the exporter's graph --------------------------------------------------------------


def test_dependency_graph_string_is_exact_dot(ptyapp):
    """dependency_graph_string() is DOT with one line per edge, grouped by source."""
    exporter = export_thing(io.BytesIO(), ptyapp)
    assert exporter.dependency_graph_string() == DOT_HEADER + (
        '"<res.thing.pkl>" -> "ptyapp";\n'
        '"<res.thing.pkl>" -> "ptyhelp";\n'
        '"<res.thing.pkl>" -> "ptyside";\n'
        '"ptyapp" -> "json";\n'
        '"ptyapp" -> "ptyhelp";\n'
        '"ptyapp" -> "ptyside";\n'
        '"ptyhelp" -> "ptyleaf";\n'
        '"ptyleaf" -> "textwrap";\n'
        '"ptyside" -> "ptyleaf";\n'
        "}\n"
    )
    exporter.close()


def test_rough_edge_3_all_paths_takes_real_module_names(ptyapp):
    """all_paths(src, dst) is DOT of every path; torch splits names into letters."""
    exporter = export_thing(io.BytesIO(), ptyapp)
    assert exporter.all_paths("ptyapp", "ptyleaf") == DOT_HEADER + (
        '"ptyapp" -> "ptyhelp";\n'
        '"ptyapp" -> "ptyside";\n'
        '"ptyhelp" -> "ptyleaf";\n'
        '"ptyside" -> "ptyleaf";\n'
        "}\n"
    )
    assert exporter.all_paths("<res.thing.pkl>", "ptyhelp") == DOT_HEADER + (
        '"<res.thing.pkl>" -> "ptyapp";\n'
        '"<res.thing.pkl>" -> "ptyhelp";\n'
        '"ptyapp" -> "ptyhelp";\n'
        "}\n"
    )
    exporter.close()


def test_rough_edge_3_all_paths_without_a_path_is_an_edgeless_graph(ptyapp):
    """With no path from src to dst the result is still a str: a graph with no edges."""
    exporter = export_thing(io.BytesIO(), ptyapp)
    assert exporter.all_paths("ptyleaf", "ptyapp") == EMPTY_DOT
    assert exporter.all_paths("json", "textwrap") == EMPTY_DOT
    exporter.close()


@pytest.mark.parametrize(("src", "dst"), [("nothere", "ptyleaf"), ("ptyapp", "x")])
def test_all_paths_with_an_unknown_module_names_it(ptyapp, src, dst):
    """An unknown name raises ValueError naming it."""
    exporter = export_thing(io.BytesIO(), ptyapp)
    unknown = src if src == "nothere" else dst
    with pytest.raises(ValueError, match=f"'{unknown}' is not in the dependency graph"):
        exporter.all_paths(src, dst)
    exporter.close()


def test_get_rdeps_lists_direct_dependents_in_order(ptyapp):
    """get_rdeps() gives the modules (and pickles) importing a module; [] if unknown."""
    exporter = export_thing(io.BytesIO(), ptyapp)
    assert exporter.get_rdeps("ptyleaf") == ["ptyhelp", "ptyside"]
    assert exporter.get_rdeps("ptyapp") == ["<res.thing.pkl>"]
    assert exporter.get_rdeps("ptyhelp") == ["ptyapp", "<res.thing.pkl>"]
    assert exporter.get_rdeps("<res.thing.pkl>") == []
    assert exporter.get_rdeps("nothere") == []
    exporter.close()


def test_module_lists_are_sorted_and_usable_before_close(src_tree):
    """externed/interned/mocked/denied_modules() answer during export, sorted."""
    src_tree(
        {
            "ptyuser.py": "import ptyz, ptyext, ptymock, ptydenied, ptya, json\n",
            "ptyz.py": "",
            "ptya.py": "",
            "ptyext.py": "",
            "ptymock.py": "",
            "ptydenied.py": "",
        }
    )
    exporter = PackageExporter(io.BytesIO())
    exporter.extern("ptyext")
    exporter.mock("ptymock")
    exporter.deny("ptydenied")
    exporter.intern("pty*")
    exporter.save_module("ptyuser")
    exporter.save_pickle("res", "x.pkl", 1)
    assert exporter.interned_modules() == ["ptya", "ptyuser", "ptyz"]
    assert exporter.externed_modules() == ["json", "ptyext"]
    assert exporter.mocked_modules() == ["ptymock"]
    assert exporter.denied_modules() == ["ptydenied"]
    with pytest.raises(PackagingError) as info:
        exporter.close()
    assert info.value.problems == {DENIED: ["ptydenied"]}


def test_get_unique_id_counts_per_exporter():
    """get_unique_id() returns '0', '1', ... separately for each exporter."""
    first, second = PackageExporter(io.BytesIO()), PackageExporter(io.BytesIO())
    assert [first.get_unique_id() for _ in range(3)] == ["0", "1", "2"]
    assert second.get_unique_id() == "0"
    assert first.get_unique_id() == "3"


def test_debug_adds_the_path_to_a_broken_module(ptyapp):
    """With debug=True each broken module gets an 'A path to X: a -> b -> X' line."""
    exporter = PackageExporter(io.BytesIO(), debug=True)
    exporter.deny("ptyleaf")
    exporter.intern("pty*")
    exporter.save_pickle("res", "thing.pkl", ptyapp.Thing(5))
    with pytest.raises(PackagingError) as info:
        exporter.close()
    assert str(info.value) == (
        f"\n* {DENIED}\n"
        "    ptyleaf\n"
        "      A path to ptyleaf: <res.thing.pkl> -> ptyhelp -> ptyleaf\n"
    )


def test_without_debug_the_report_suggests_it(ptyapp):
    """Without debug the report ends by pointing at debug=True instead."""
    exporter = PackageExporter(io.BytesIO())
    exporter.intern("ptyapp")
    exporter.save_module("ptyapp")
    with pytest.raises(PackagingError) as info:
        exporter.close()
    assert str(info.value) == (
        f"\n* {NO_ACTION}\n    ptyhelp\n    ptyside\n\n"
        "Set debug=True when invoking PackageExporter for a visualization of where "
        "broken modules are coming from!\n"
    )


# -- hooks -----------------------------------------------------------------------------


def test_hook_handles_remove_their_hook(ptyapp):
    """A handle's remove() stops its hook; other hooks keep running; remove twice."""
    calls = []
    exporter = PackageExporter(io.BytesIO())
    exporter.intern("pty*")
    first = exporter.register_intern_hook(lambda _, name: calls.append(("a", name)))
    second = exporter.register_intern_hook(lambda _, name: calls.append(("b", name)))
    assert first.id != second.id
    exporter.save_module("ptyleaf")
    first.remove()
    first.remove()
    exporter.save_module("ptyhelp")
    exporter.close()
    assert calls == [("a", "ptyleaf"), ("b", "ptyleaf"), ("b", "ptyhelp")]


def test_hook_handle_is_a_context_manager(ptyapp):
    """`with exporter.register_extern_hook(hook):` unregisters it on exit."""
    calls = []
    exporter = PackageExporter(io.BytesIO())
    exporter.extern("ptyleaf")
    exporter.mock("ptyside")
    exporter.intern("pty*")
    with (
        exporter.register_extern_hook(lambda _, name: calls.append(("extern", name))),
        exporter.register_mock_hook(lambda _, name: calls.append(("mock", name))),
    ):
        exporter.save_module("ptyhelp")
        exporter.save_source_string("ptyuser", "import ptyside\n")
    exporter.save_source_string("ptyother", "import csv\nimport ptyside\n")
    exporter.close()
    assert calls == [("extern", "ptyleaf"), ("mock", "ptyside")]


def test_hooks_receive_the_exporter(ptyapp):
    """A hook is called with the exporter itself, so it can save more into it."""
    buffer = io.BytesIO()
    exporter = PackageExporter(buffer)

    def add_license(exporter_seen, name):
        exporter_seen.save_text("licenses", f"{name}.txt", f"license of {name}")

    exporter.extern("json")
    exporter.register_extern_hook(add_license)
    exporter.save_source_string("ptyuser", "import json\n")
    exporter.close()
    assert open_package(buffer).load_text("licenses", "json.txt") == "license of json"


# -- importers -------------------------------------------------------------------------


@pytest.fixture
def packaged(ptyapp):
    """(importer, packaged ptyapp module) for an archive of the pty modules."""
    buffer = io.BytesIO()
    with export_thing(buffer, ptyapp):
        pass
    importer = open_package(buffer)
    return importer, importer.import_module("ptyapp")


def test_sys_importer_finds_host_objects(ptyapp):
    """sys_importer imports from the host and names objects by module and qualname."""
    assert sys_importer.import_module("ptyapp") is ptyapp
    assert sys_importer.get_name(ptyapp.Thing) == ("ptyapp", "Thing")
    assert sys_importer.get_name(ptyapp.run) == ("ptyapp", "run")
    assert sys_importer.get_name(ptyapp.Thing.describe) == ("ptyapp", "Thing.describe")
    assert sys_importer.get_name(collections.OrderedDict) == ODICT_NAME
    assert sys_importer.whichmodule(ptyapp.run, "run") == "ptyapp"


def test_get_name_of_an_unreachable_object_is_obj_not_found(ptyapp):
    """An object its module does not hold under its name raises ObjNotFoundError."""

    def local():
        pass

    with pytest.raises(ObjNotFoundError, match=r"was not found as .*<locals>\.local"):
        sys_importer.get_name(local)
    with pytest.raises(ObjNotFoundError, match=r"was not found as ptyapp\.nothing$"):
        sys_importer.get_name(ptyapp.run, "nothing")
    local.__module__ = "pty_no_such_module"
    with pytest.raises(
        ObjNotFoundError, match=r"was not found as pty_no_such_module\."
    ):
        sys_importer.get_name(local)


def test_get_name_of_a_packaged_object_from_the_host_is_a_mismatch(packaged):
    """The host's ptyapp.Thing is another class: ObjMismatchError says where from."""
    importer, module = packaged
    with pytest.raises(ObjMismatchError) as info:
        sys_importer.get_name(module.Thing)
    assert str(info.value) == (
        f"The object provided is from 'ptyapp', which is coming from package "
        f"{importer.id()}. However, when importing 'ptyapp' the name leads to an "
        "object from the current Python environment. To fix this, list the importer "
        "that object came from before the others in this exporter's importers."
    )


def test_package_importer_names_its_objects_demangled(packaged):
    """A PackageImporter names its own classes and functions without the prefix."""
    importer, module = packaged
    assert module.Thing.__module__ == f"{importer.id()}.ptyapp"
    assert importer.get_name(module.Thing) == ("ptyapp", "Thing")
    assert importer.get_name(module.run) == ("ptyapp", "run")
    assert importer.whichmodule(module.run, "run") == f"{importer.id()}.ptyapp"


def test_ordered_importer_tries_each_importer_in_turn(packaged, ptyapp):
    """OrderedImporter answers from the first importer that has the object."""
    importer, module = packaged
    ordered = OrderedImporter(importer, sys_importer)
    assert ordered.get_name(module.Thing) == ("ptyapp", "Thing")
    assert ordered.get_name(collections.OrderedDict) == ODICT_NAME
    assert ordered.import_module("ptyapp") is module
    assert OrderedImporter(sys_importer, importer).import_module("ptyapp") is ptyapp
    assert list(ordered) == [importer, sys_importer]


def test_ordered_importer_reports_every_failure_once(packaged):
    """When no importer has the object, one ObjNotFoundError lists what each said."""
    importer, _ = packaged
    ordered = OrderedImporter(importer, sys_importer)

    def local():
        pass

    with pytest.raises(ObjNotFoundError, match=r"Could not find obj .* in any of"):
        ordered.get_name(local)
    with pytest.raises(ModuleNotFoundError, match="nothere"):
        ordered.import_module("nothere")


def test_ordered_importer_logs_nothing_for_failed_lookups(packaged, caplog):
    """Failed lookups in earlier importers log nothing (torch warns for each one)."""
    importer, module = packaged
    caplog.set_level(logging.DEBUG)
    ordered = OrderedImporter(importer, sys_importer)
    assert ordered.get_name(collections.OrderedDict) == ODICT_NAME
    assert OrderedImporter(sys_importer, importer).get_name(module.run) == (
        "ptyapp",
        "run",
    )
    with pytest.raises(ObjNotFoundError):
        ordered.get_name(lambda: None)
    assert caplog.records == []


def test_ordered_importer_skips_empty_dummy_packages(src_tree):
    """A package's source-less parent folder is skipped for the next importer's."""
    src_tree({"ptyouter/__init__.py": "WHERE = 'host'\n"})
    buffer = io.BytesIO()
    with PackageExporter(buffer) as exporter:
        exporter.save_source_string("ptyouter.inner.mod", "WHERE = 'packaged'\n")
    importer = open_package(buffer)
    dummy = importer.import_module("ptyouter")
    assert dummy.__file__ is None
    assert dummy.__path__ == []
    ordered = OrderedImporter(importer, sys_importer)
    assert ordered.import_module("ptyouter").WHERE == "host"
    assert ordered.import_module("ptyouter.inner.mod").WHERE == "packaged"
    with pytest.raises(ModuleNotFoundError):
        OrderedImporter(importer).import_module("ptyouter")


def test_ordered_importer_refuses_non_importers():
    """Anything but an Importer is a TypeError naming it."""
    with pytest.raises(TypeError, match="'abc' is not an Importer"):
        OrderedImporter(sys_importer, "abc")
    with pytest.raises(TypeError, match="is not an Importer"):
        PackageExporter(io.BytesIO(), importer=[sys_importer, object()])


def test_importer_is_an_abstract_base_for_custom_importers(ptyapp):
    """Subclassing Importer needs only import_module; get_name then works."""
    with pytest.raises(TypeError):
        Importer()  # type: ignore[abstract]

    class OnlyPty(Importer):
        def __init__(self):
            self.modules = {}

        def import_module(self, module_name):
            if not module_name.startswith("pty"):
                raise ModuleNotFoundError(module_name, name=module_name)
            return importlib.import_module(module_name)

    only = OnlyPty()
    assert only.get_name(ptyapp.Thing) == ("ptyapp", "Thing")
    with pytest.raises(ObjNotFoundError):
        only.get_name(collections.OrderedDict)
    assert (
        OrderedImporter(only, sys_importer).get_name(collections.OrderedDict)
        == ODICT_NAME
    )


# -- re-export -------------------------------------------------------------------------


def reexport(path, importer, obj):
    """Save *obj*, loaded through *importer*, into a new package at *path*."""
    with PackageExporter(path, importer=(importer, sys_importer)) as exporter:
        exporter.intern("pty*")
        exporter.save_pickle("res", "thing.pkl", obj)
    return path


def test_reexported_pickle_names_classes_demangled(packaged, tmp_path):
    """An object loaded from a package pickles again under its plain class names."""
    importer, _ = packaged
    loaded = importer.load_pickle("res", "thing.pkl")
    path = reexport(tmp_path / "again.pt", importer, loaded)
    with zipfile.ZipFile(path) as zf:
        listing = disassemble(zf.read("again/res/thing.pkl"))
    assert "<torch_package_" not in listing
    assert "GLOBAL     'ptyapp Thing'" in listing
    assert "GLOBAL     'ptyside Part'" in listing
    assert "GLOBAL     'ptyhelp scale'" in listing
    again = PackageImporter(path).load_pickle("res", "thing.pkl")
    assert again.describe() == "[15, 10]"


def test_reexport_needs_the_package_importer_first(packaged, tmp_path):
    """With only the host importer, the packaged class is a mismatch (nothing saved)."""
    importer, _ = packaged
    loaded = importer.load_pickle("res", "thing.pkl")
    exporter = PackageExporter(io.BytesIO())
    with pytest.raises(pickle.PicklingError, match="However, when importing 'ptyapp'"):
        exporter.save_pickle("res", "thing.pkl", loaded)


def test_reexport_takes_source_from_the_package_not_the_host(ptyapp, tmp_path):
    """Re-exported modules carry the packaged source even when the host differs."""
    buffer = io.BytesIO()
    with PackageExporter(buffer) as exporter:
        exporter.intern("pty*")
        exporter.save_source_string("ptyleaf", "FACTOR = 7\n")
        exporter.save_pickle("res", "thing.pkl", ptyapp.Thing(5))
    importer = open_package(buffer)
    loaded = importer.load_pickle("res", "thing.pkl")
    assert loaded.describe() == "[35, 10]"
    path = reexport(tmp_path / "again.pt", importer, loaded)
    again = PackageImporter(path)
    assert again.zip_reader.read("ptyleaf.py") == b"FACTOR = 7\n"
    assert again.load_pickle("res", "thing.pkl").describe() == "[35, 10]"


def test_reexport_three_times_loads_where_the_source_is_not_importable(
    packaged, tmp_path
):
    """A chain of three re-exports works and the last loads in a bare interpreter."""
    importer, _ = packaged
    for generation in range(1, 4):
        loaded = importer.load_pickle("res", "thing.pkl")
        assert loaded.describe() == "[15, 10]"
        path = reexport(tmp_path / f"gen{generation}.pt", importer, loaded)
        with zipfile.ZipFile(path) as zf:
            record = zf.read(f"gen{generation}/res/thing.pkl")
        assert "<torch_package_" not in disassemble(record)
        importer = PackageImporter(path)
    code = block_imports_prelude(*PTY_MODULES) + textwrap.dedent(
        f"""
        from hermetic import PackageImporter, is_from_package
        importer = PackageImporter({str(path)!r})
        thing = importer.load_pickle("res", "thing.pkl")
        print(thing.describe(), is_from_package(thing), type(thing).__qualname__)
        try:
            import ptyapp
        except ModuleNotFoundError:
            print("host has no ptyapp")
        """
    )
    assert run_python(code).splitlines() == [
        "[15, 10] True Thing",
        "host has no ptyapp",
    ]


# -- markers ---------------------------------------------------------------------------


def test_is_from_package_for_each_kind_of_object(packaged):
    """True for packaged modules, classes, functions, instances; false otherwise."""
    importer, module = packaged
    thing = importer.load_pickle("res", "thing.pkl")
    assert is_from_package(module)
    assert is_from_package(module.Thing)
    assert is_from_package(module.run)
    assert is_from_package(thing)
    assert is_from_package(thing.part)
    assert is_from_package(importer.import_module("ptyleaf"))
    # Extern modules, plain values made by packaged code and host objects are not.
    assert not is_from_package(importer.import_module("json"))
    assert not is_from_package(module.json)
    assert not is_from_package(module.run(1))
    assert not is_from_package("ptyapp")
    assert not is_from_package(json)
    assert not is_from_package(len)


def test_packaged_modules_carry_the_torch_package_marker(packaged):
    """Packaged modules have __torch_package__ and can import the importer."""
    importer, module = packaged
    assert module.__torch_package__ is True
    assert importer.import_module("torch_package_importer") is importer


# -- hermetic.analyze ------------------------------------------------------------------


def test_trace_dependencies_lists_the_modules_a_call_enters(packaged):
    """trace_dependencies runs the callable per input and lists modules, demangled."""
    _, module = packaged
    modules = trace_dependencies(module.run, [(1,), (2,)])
    assert {"ptyapp", "ptyhelp", "json", "json.encoder"} <= set(modules)
    assert modules.index("ptyapp") < modules.index("ptyhelp")
    assert len(modules) == len(set(modules))
    assert not any(name.startswith("<torch_package_") for name in modules)
    assert "ptyside" not in modules


def test_trace_dependencies_of_host_code_and_no_inputs(ptyapp):
    """Host callables are traced too, in first-call order; no inputs, no modules."""
    assert trace_dependencies(ptyapp.Thing, [(1,), (2,)]) == ["ptyapp", "ptyside"]
    assert trace_dependencies(ptyapp.run, []) == []


def test_find_first_use_of_broken_modules_maps_each_to_its_first_path(ptyapp):
    """Each broken module maps to the chain of oldest importers that pulled it in."""
    exporter = PackageExporter(io.BytesIO())
    exporter.deny("ptyleaf")
    exporter.intern("ptyapp")
    exporter.intern("ptyhelp")
    exporter.save_pickle("res", "thing.pkl", ptyapp.Thing(5))
    with pytest.raises(PackagingError) as info:
        exporter.close()
    assert find_first_use_of_broken_modules(info.value) == {
        "ptyleaf": ["<res.thing.pkl>", "ptyhelp", "ptyleaf"],
        "ptyside": ["<res.thing.pkl>", "ptyside"],
    }


def test_find_first_use_of_broken_modules_needs_a_packaging_error():
    """Anything but a PackagingError is refused (torch asserts)."""
    with pytest.raises(TypeError, match="expected a PackagingError, got ValueError"):
        find_first_use_of_broken_modules(ValueError("x"))
