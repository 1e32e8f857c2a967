"""torch.package's rough edges (reference §5), each shown fixed in hermetic.

Every test is named after the numbered rough edge it covers. Edges that need torch
itself (tensors, TorchScript, map_location) are covered by the interop tests.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import sys

import pytest

from hermetic import (
    ArchiveFormatError,
    PackageExporter,
    PackageImporter,
    PackagingError,
    PickleLoadError,
    is_from_package,
)

DENIED = "Module was denied by a pattern."
RESOLUTION_FAILED = "Dependency resolution failed."


def load(buffer: io.BytesIO) -> PackageImporter:
    """Open the package written to *buffer*."""
    return PackageImporter(io.BytesIO(buffer.getvalue()))


def test_rough_edge_1_non_writable_target_raises_type_error():
    """PackageExporter(123) raises TypeError; torch aborts the whole interpreter."""
    with pytest.raises(TypeError, match="got int"):
        PackageExporter(123)


def test_rough_edge_2_string_importer_is_refused():
    """importer='abc' raises TypeError; torch accepts it and drops every dependency."""
    with pytest.raises(TypeError, match="got str instead"):
        PackageExporter(io.BytesIO(), importer="abc")


def test_rough_edge_4_class_with_reduce_package_pickles_as_a_class(src_tree):
    """A class defining __reduce_package__ pickles by name; torch calls the method."""
    src_tree(
        {
            "re4mod.py": """
                class Thing:
                    def __reduce_package__(self, exporter):
                        return (make_thing, ())

                def make_thing(importer):
                    return Thing()
            """
        }
    )
    import re4mod

    buffer = io.BytesIO()
    with PackageExporter(buffer) as exporter:
        exporter.intern("re4mod")
        exporter.save_pickle("p", "cls.pkl", re4mod.Thing)
        exporter.save_pickle("p", "both.pkl", [re4mod.Thing, re4mod.Thing()])
    importer = load(buffer)
    packaged = importer.import_module("re4mod").Thing
    assert importer.load_pickle("p", "cls.pkl") is packaged
    cls, instance = importer.load_pickle("p", "both.pkl")
    assert cls is packaged
    assert type(instance) is packaged


def test_rough_edge_5_saving_a_module_after_its_importer_works(src_tree):
    """A module saved after the code importing it is packaged; torch asserts inside."""
    src_tree({"re5pkg/__init__.py": "", "re5pkg/util.py": "WHERE = 'host'\n"})
    buffer = io.BytesIO()
    with PackageExporter(buffer) as exporter:
        exporter.save_source_string("re5user", "import re5pkg.util\n")
        exporter.save_source_string("re5pkg.util", "WHERE = 'packaged'\n")
    user = load(buffer).import_module("re5user")
    assert user.re5pkg.util.WHERE == "packaged"


def test_rough_edge_6_text_and_binary_saves_check_their_type():
    """save_text(bytes) and save_binary(str) raise TypeError naming the other method."""
    exporter = PackageExporter(io.BytesIO())
    with pytest.raises(TypeError, match=r"use save_binary\(\) for bytes"):
        exporter.save_text("res", "a.txt", b"bytes")
    with pytest.raises(TypeError, match=r"use save_text\(\) for str"):
        exporter.save_binary("res", "a.bin", "text")


def test_rough_edge_7_unknown_persistent_id_is_an_error():
    """An unknown persistent id raises PickleLoadError; torch loads None."""
    data = b"\x80\x03X\x07\x00\x00\x00unknownq\x00\x85q\x01Q."
    buffer = io.BytesIO()
    with PackageExporter(buffer) as exporter:
        exporter.save_binary("p", "pid.pkl", data)
    with pytest.raises(PickleLoadError, match="unsupported persistent id 'unknown'"):
        load(buffer).load_pickle("p", "pid.pkl")


def test_rough_edge_10_resource_reader_of_a_plain_module_is_none():
    """get_resource_reader on a non-package returns None; torch raises TypeError."""
    buffer = io.BytesIO()
    with PackageExporter(buffer) as exporter:
        exporter.save_source_string("re10pkg", "", is_package=True)
        exporter.save_source_string("re10pkg.mod", "X = 1\n")
    importer = load(buffer)
    assert importer.get_resource_reader("re10pkg.mod") is None
    assert importer.get_resource_reader("re10pkg") is not None


@pytest.mark.parametrize(
    ("order", "message"),
    [
        (["mod.py", "mod/sub.py"], "module 'mod' is not a package"),
        (["mod/sub.py", "mod.py"], "record 'mod.py' is a module, but"),
    ],
    ids=["module-first", "package-first"],
)
def test_rough_edge_11_inconsistent_module_structure_names_the_module(
    tmp_path, order, message
):
    """A module that also has submodules is refused naming it; torch prints ''."""
    import zipfile

    path = tmp_path / "bad.pt"
    with zipfile.ZipFile(path, "w") as zf:
        for name in [".data/version", ".data/extern_modules", *order]:
            zf.writestr(f"bad/{name}", "6\n" if name == ".data/version" else "\n")
    with pytest.raises(ArchiveFormatError, match=re.escape(message)):
        PackageImporter(path)


def test_rough_edge_13_imports_that_cannot_be_found_are_listed(src_tree):
    """Missing or failing imports are skipped but listed by unresolved_imports()."""
    src_tree({"re13broken.py": "raise RuntimeError('cannot import me')\n"})
    exporter = PackageExporter(io.BytesIO())
    exporter.intern("re13broken")
    exporter.save_source_string(
        "re13user",
        "try:\n    import re13_missing\nexcept ImportError:\n    pass\n"
        "import re13broken\n",
    )
    unresolved = exporter.unresolved_imports()
    assert unresolved["re13_missing"] == ["re13user"]
    assert "re13broken" in unresolved
    assert "re13broken" not in exporter.interned_modules()
    exporter.close()


def test_rough_edge_14_latin1_source_keeps_its_text(src_tree):
    """A latin-1 module saved by save_module keeps its text (torch: mojibake)."""
    root = src_tree({})
    (root / "re14latin.py").write_bytes(
        b"# -*- coding: latin-1 -*-\nWORD = '\xe9t\xe9'\n"
    )
    buffer = io.BytesIO()
    with PackageExporter(buffer) as exporter:
        exporter.save_module("re14latin")
        exporter.save_source_file("re14file", root / "re14latin.py")
    importer = load(buffer)
    assert importer.import_module("re14latin").WORD == "été"
    assert importer.import_module("re14file").WORD == "été"


def test_rough_edge_15_hidden_folders_give_no_empty_module_names(tmp_path):
    """save_source_file(folder) skips dot-folders; torch makes 'pkg..hidden.h'."""
    folder = tmp_path / "re15tree"
    (folder / ".hidden").mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "mod.py").write_text("X = 1\n")
    (folder / ".hidden" / "h.py").write_text("Y = 2\n")
    buffer = io.BytesIO()
    with PackageExporter(buffer) as exporter:
        exporter.save_source_file("re15tree", folder)
        assert exporter.interned_modules() == ["re15tree", "re15tree.mod"]
    records = load(buffer).zip_reader.record_names()
    assert not any("//" in name or "hidden" in name for name in records)


def test_rough_edge_16_resource_in_an_empty_package_is_refused():
    """save_text('', ...) raises ValueError; torch writes an unreachable '/b.txt'."""
    exporter = PackageExporter(io.BytesIO())
    with pytest.raises(ValueError, match="package must be a non-empty module name"):
        exporter.save_text("", "b.txt", "text")
    with pytest.raises(ValueError, match="package must be a non-empty module name"):
        exporter.save_binary("", "b.bin", b"bytes")


def test_rough_edge_17_import_os_path_sees_the_host_os():
    """`import os.path` gives the host's whole os module; torch gives an empty dummy."""
    source = "import os.path\n\n\ndef where():\n    return os.getcwd(), os.sep\n"
    buffer = io.BytesIO()
    with PackageExporter(buffer) as exporter:
        exporter.save_source_string("re17user", source)
    module = load(buffer).import_module("re17user")
    assert module.where() == (os.getcwd(), os.sep)
    assert module.os.path is os.path


def test_rough_edge_17_parents_of_interned_modules_run_their_init(src_tree):
    """Interning pkg.sub.leaf packages pkg and pkg.sub too, so their __init__ runs."""
    src_tree(
        {
            "re17pkg/__init__.py": "REGISTRY = ['top']\n",
            "re17pkg/sub/__init__.py": (
                "from re17pkg import REGISTRY\nREGISTRY.append('sub')\n"
            ),
            "re17pkg/sub/leaf.py": "VALUE = 1\n",
        }
    )
    buffer = io.BytesIO()
    with PackageExporter(buffer) as exporter:
        exporter.intern("re17pkg.sub.leaf")
        exporter.save_module("re17pkg.sub.leaf")
        assert exporter.interned_modules() == [
            "re17pkg",
            "re17pkg.sub",
            "re17pkg.sub.leaf",
        ]
    importer = load(buffer)
    assert importer.import_module("re17pkg.sub.leaf").VALUE == 1
    assert importer.import_module("re17pkg").REGISTRY == ["top", "sub"]


def test_rough_edge_18_import_module_in_packaged_code_stays_inside():
    """importlib.import_module('pkg.mod') in packaged code imports the packaged copy."""
    loader = (
        "import importlib\n\n\n"
        "def plugin():\n    return importlib.import_module('re18pkg.plugin')\n"
    )
    buffer = io.BytesIO()
    with PackageExporter(buffer) as exporter:
        exporter.save_source_string("re18pkg", "", is_package=True)
        exporter.save_source_string("re18pkg.plugin", "WHERE = 'packaged'\n")
        exporter.save_source_string("re18pkg.loader", loader)
    importer = load(buffer)
    plugin = importer.import_module("re18pkg.loader").plugin()
    assert plugin.WHERE == "packaged"
    assert plugin is importer.import_module("re18pkg.plugin")
    assert "re18pkg.plugin" not in sys.modules


def test_rough_edge_18_literal_import_module_calls_are_dependencies(src_tree):
    """The scanner sees importlib.import_module('x') with a literal name."""
    src_tree(
        {
            "re18dyn/__init__.py": "",
            "re18dyn/plugin.py": "WHERE = 'plugin'\n",
            "re18dyn/loader.py": "import importlib\n"
            "PLUGIN = importlib.import_module('re18dyn.plugin')\n",
        }
    )
    buffer = io.BytesIO()
    with PackageExporter(buffer) as exporter:
        exporter.intern("re18dyn.**")
        exporter.save_module("re18dyn.loader")
        assert "re18dyn.plugin" in exporter.interned_modules()
    assert load(buffer).import_module("re18dyn.loader").PLUGIN.WHERE == "plugin"


def test_rough_edge_19_relative_import_in_a_top_level_module_is_reported():
    """`from . import x` in a top-level module is an error; torch imports itself."""
    exporter = PackageExporter(io.BytesIO())
    exporter.save_source_string("re19top", "from . import sibling\n")
    with pytest.raises(PackagingError) as info:
        exporter.close()
    assert info.value.problems == {RESOLUTION_FAILED: ["re19top"]}
    context = "Context: attempted relative import with no known parent package"
    assert context in str(info.value)


def test_rough_edge_20_is_from_package_recognises_packaged_classes():
    """is_from_package is true for packaged classes too; torch says False for them."""
    buffer = io.BytesIO()
    with PackageExporter(buffer) as exporter:
        exporter.save_source_string(
            "re20mod", "class Packaged:\n    pass\n\n\ndef make():\n    pass\n"
        )
    module = load(buffer).import_module("re20mod")
    assert is_from_package(module)
    assert is_from_package(module.Packaged)
    assert is_from_package(module.Packaged())
    assert is_from_package(module.make)
    assert not is_from_package(pickle.Pickler)
    assert not is_from_package(pickle)
    assert not is_from_package(pickle.Pickler(io.BytesIO()))


def test_rough_edge_21_hooks_run_when_a_module_is_matched(src_tree):
    """Extern, mock and intern hooks run during the save that matches; torch waits."""
    src_tree({"re21interned.py": "import json\n", "re21mocked.py": ""})
    calls = []
    exporter = PackageExporter(io.BytesIO())
    exporter.register_extern_hook(lambda _, name: calls.append(("extern", name)))
    exporter.register_mock_hook(lambda _, name: calls.append(("mock", name)))
    exporter.register_intern_hook(lambda _, name: calls.append(("intern", name)))
    exporter.intern("re21interned")
    exporter.mock("re21mocked")
    exporter.save_source_string("re21user", "import re21interned\nimport re21mocked\n")
    expected = [
        ("intern", "re21user"),
        ("intern", "re21interned"),
        ("extern", "json"),
        ("mock", "re21mocked"),
    ]
    assert calls == expected
    exporter.close()
    assert calls == expected


def test_rough_edge_22_stdlib_module_can_be_denied():
    """deny('subprocess') denies it; torch externs it regardless."""
    exporter = PackageExporter(io.BytesIO())
    exporter.deny("subprocess")
    exporter.save_source_string("re22user", "import subprocess\n")
    with pytest.raises(PackagingError) as info:
        exporter.close()
    assert info.value.problems == {DENIED: ["subprocess"]}


def test_rough_edge_22_stdlib_module_can_be_mocked():
    """mock('json') writes a stub whose objects refuse use; torch externs json."""
    source = "import json\n\n\ndef encode(value):\n    return json.dumps(value)\n"
    buffer = io.BytesIO()
    with PackageExporter(buffer) as exporter:
        exporter.mock("json")
        exporter.save_source_string("re22user", source)
        assert exporter.mocked_modules() == ["json"]
        assert exporter.externed_modules() == []
    importer = load(buffer)
    assert importer.extern_modules == []
    with pytest.raises(NotImplementedError, match=r"json\.dumps"):
        importer.import_module("re22user").encode(1)


def test_rough_edge_22_extern_of_a_stdlib_module_counts_as_a_match():
    """extern('json', allow_empty=False) is satisfied; torch raises EmptyMatchError."""
    buffer = io.BytesIO()
    with PackageExporter(buffer) as exporter:
        exporter.extern("json", allow_empty=False)
        exporter.save_source_string("re22user", "import json\n")
    assert load(buffer).extern_modules == ["json"]


def test_rough_edge_22_wildcard_mock_does_not_reach_the_stdlib(src_tree):
    """mock('**') mocks third-party modules but leaves stdlib modules extern."""
    src_tree({"re22third.py": "X = 1\n"})
    buffer = io.BytesIO()
    with PackageExporter(buffer) as exporter:
        exporter.mock("**")
        exporter.save_source_string("re22user", "import json\nimport re22third\n")
        assert exporter.externed_modules() == ["json"]
        assert exporter.mocked_modules() == ["re22third"]
    assert load(buffer).extern_modules == ["json"]
