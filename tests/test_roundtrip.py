"""Round trips through PackageExporter and PackageImporter without torch."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import io
import linecache
import sys
import traceback

import pytest

from helpers import run_python
from hermetic import (
    ImportFromPackageError,
    PackageExporter,
    PackageImporter,
    PickleLoadError,
)

MODEL_SOURCE = """
    from . import util

    class Model:
        def __init__(self, weight):
            self.weight = weight

        def __call__(self, xs):
            return util.scale(xs, self.weight)
"""
UTIL_SOURCE = """
    def scale(xs, w):
        return [x * w for x in xs]

    def boom():
        raise ValueError("boom from packaged code")
"""


@pytest.fixture
def model_pkg(src_tree):
    src_tree(
        {
            "rtpkg/__init__.py": "VERSION = 'host'\n",
            "rtpkg/model.py": MODEL_SOURCE,
            "rtpkg/util.py": UTIL_SOURCE,
        }
    )
    return importlib.import_module("rtpkg.model")


def test_pickle_text_binary_round_trip(model_pkg, archive):
    """Objects, text and bytes saved into a package come back equal."""
    with PackageExporter(archive) as exporter:
        exporter.intern("rtpkg.**")
        exporter.save_pickle("obj", "model.pkl", model_pkg.Model(3))
        exporter.save_text("cfg", "note.txt", "héllo")
        exporter.save_binary("raw", "blob.bin", b"\x00\xff" * 10)
    importer = PackageImporter(archive)
    model = importer.load_pickle("obj", "model.pkl")
    assert model([1, 2]) == [3, 6]
    assert importer.load_text("cfg", "note.txt") == "héllo"
    assert importer.load_binary("raw", "blob.bin") == b"\x00\xff" * 10


def test_loaded_classes_come_from_the_package_not_the_host(model_pkg, archive):
    """A loaded object's class is the packaged copy, with a mangled module name."""
    with PackageExporter(archive) as exporter:
        exporter.intern("rtpkg.**")
        exporter.save_pickle("obj", "model.pkl", model_pkg.Model(3))
    importer = PackageImporter(archive)
    model = importer.load_pickle("obj", "model.pkl")
    assert type(model) is not model_pkg.Model
    assert type(model).__module__ == f"{importer.id()}.rtpkg.model"


def test_packaged_modules_never_appear_under_plain_names(model_pkg, archive):
    """sys.modules gains only mangled names, which close() removes again."""
    with PackageExporter(archive) as exporter:
        exporter.intern("rtpkg.**")
        exporter.save_pickle("obj", "model.pkl", model_pkg.Model(3))
    host_module = sys.modules["rtpkg.model"]
    importer = PackageImporter(archive)
    module = importer.import_module("rtpkg.model")
    assert sys.modules["rtpkg.model"] is host_module
    assert sys.modules[module.__name__] is module
    assert module.__name__.startswith("<torch_package_")
    importer.close()
    assert module.__name__ not in sys.modules


def test_module_attributes_match_torch_package(model_pkg, archive):
    """Module dunders (__name__, __file__, __spec__, ...) are set as torch does.

    That includes ``__path__`` for packages and ``__torch_package__``.
    """
    with PackageExporter(archive) as exporter:
        exporter.intern("rtpkg.**")
        exporter.save_module("rtpkg.model")
    importer = PackageImporter(archive)
    prefix = importer.id()
    module = importer.import_module("rtpkg.model")
    package = importer.import_module("rtpkg")
    assert module.__name__ == f"{prefix}.rtpkg.model"
    assert module.__file__ == f"{prefix}.rtpkg/model.py"
    assert module.__spec__.name == "rtpkg.model"
    assert module.__package__ == "rtpkg"
    assert module.__torch_package__ is True
    assert package.__path__ == []
    assert package.__file__ == f"{prefix}.rtpkg/__init__.py"
    assert package.VERSION == "host"


def test_parent_packages_are_interned_with_their_init(model_pkg, archive):
    """Interning rtpkg.model also packages rtpkg/__init__.py, which runs on import."""
    with PackageExporter(archive) as exporter:
        exporter.intern("rtpkg.model")
        exporter.intern("rtpkg.util")
        exporter.save_module("rtpkg.model")
        assert "rtpkg" in exporter.interned_modules()
    assert PackageImporter(archive).import_module("rtpkg").VERSION == "host"


def test_two_versions_of_one_module_live_side_by_side(src_tree, tmp_path):
    """Two packages of different versions of a module load in one process, isolated."""
    paths = []
    for version in ("1", "2"):
        src_tree({"sidebyside.py": f"VERSION = {version!r}\nSTATE = []\n"})
        sys.modules.pop("sidebyside", None)
        path = tmp_path / f"v{version}.pt"
        with PackageExporter(path) as exporter:
            exporter.save_module("sidebyside")
        paths.append(path)
    first, second = (PackageImporter(p).import_module("sidebyside") for p in paths)
    first.STATE.append("first")
    assert (first.VERSION, second.VERSION) == ("1", "2")
    assert second.STATE == []


def test_one_archive_loaded_twice_gives_independent_modules(model_pkg, archive):
    """Two importers of one archive do not share module objects or state."""
    with PackageExporter(archive) as exporter:
        exporter.intern("rtpkg.**")
        exporter.save_module("rtpkg.util")
    a, b = PackageImporter(archive), PackageImporter(archive)
    assert a.id() != b.id()
    assert a.import_module("rtpkg.util") is not b.import_module("rtpkg.util")


def test_torch_package_importer_is_importable_inside_the_package(archive):
    """`import torch_package_importer` in packaged code yields its importer."""
    source = (
        "import torch_package_importer\n\n"
        "def note():\n"
        "    return torch_package_importer.load_text('res', 'note.txt')\n"
    )
    with PackageExporter(archive) as exporter:
        exporter.save_source_string("selfref", source)
        exporter.save_text("res", "note.txt", "inside")
    importer = PackageImporter(archive)
    module = importer.import_module("selfref")
    assert module.torch_package_importer is importer
    assert module.note() == "inside"


def test_tracebacks_and_getsource_show_packaged_lines(model_pkg, archive):
    """Tracebacks, linecache and inspect.getsource read the packaged source."""
    with PackageExporter(archive) as exporter:
        exporter.intern("rtpkg.**")
        exporter.save_module("rtpkg.util")
        exporter.save_module("rtpkg.model")
    importer = PackageImporter(archive)
    util = importer.import_module("rtpkg.util")
    with pytest.raises(ValueError, match="boom") as info:
        util.boom()
    text = "".join(traceback.format_exception(info.value))
    assert f'File "{importer.id()}.rtpkg/util.py"' in text
    assert 'raise ValueError("boom from packaged code")' in text
    assert "return [x * w for x in xs]" in inspect.getsource(util.scale)
    model_cls = importer.import_module("rtpkg.model").Model
    assert inspect.getsource(model_cls).startswith("class Model:")
    assert linecache.getline(util.__file__, 2).strip() == "def scale(xs, w):"


def test_importing_hermetic_patches_nothing_and_imports_no_framework():
    """`import hermetic` leaves inspect alone and imports no optional framework."""
    out = run_python(
        """
        import inspect, sys
        original = inspect.getfile
        import hermetic
        assert inspect.getfile is original
        print(sorted(m for m in ("torch", "numpy", "fsspec", "rich", "cryptography")
                     if m in sys.modules))
        """
    )
    assert out.strip() == "[]"


def test_dataclasses_and_type_hints_under_future_annotations(src_tree, archive):
    """Packaged code that looks itself up in sys.modules works (dataclasses, typing)."""
    src_tree(
        {
            "dcmod.py": """
                from __future__ import annotations
                import dataclasses
                import typing

                @dataclasses.dataclass
                class Point:
                    x: int
                    y: typing.ClassVar[int] = 0

                def hints():
                    return typing.get_type_hints(Point)
            """
        }
    )
    with PackageExporter(archive) as exporter:
        exporter.save_module("dcmod")
    module = PackageImporter(archive).import_module("dcmod")
    point = module.Point(1)
    assert dataclasses.fields(point)[0].name == "x"
    assert module.hints()["x"] is int


def test_string_imports_resolve_inside_the_package(src_tree, archive):
    """import_module, importlib.resources and pkgutil look in the package first."""
    src_tree(
        {
            "strimp/__init__.py": "",
            "strimp/data/__init__.py": "",
            "strimp/plugin.py": "NAME = 'packaged plugin'\n",
            "strimp/loader.py": """
                import importlib
                import importlib.resources
                import pkgutil

                def plugin():
                    return importlib.import_module("strimp.plugin").NAME

                def relative_plugin():
                    return importlib.import_module(".plugin", "strimp").NAME

                def resource():
                    return importlib.resources.files("strimp.data").joinpath(
                        "table.txt").read_text()

                def resource_names():
                    return sorted(p.name for p in importlib.resources.files(
                        "strimp.data").iterdir())

                def data():
                    return pkgutil.get_data("strimp.data", "table.txt")

                def host():
                    return importlib.import_module("json").__name__
            """,
        }
    )
    with PackageExporter(archive) as exporter:
        exporter.intern("strimp.**")
        exporter.save_module("strimp.loader")
        exporter.save_module("strimp.plugin")
        exporter.save_module("strimp.data")
        exporter.save_text("strimp.data", "table.txt", "packaged table")
    importer = PackageImporter(archive)
    for name in list(sys.modules):
        if name.startswith("strimp"):
            del sys.modules[name]
    sys.modules["strimp"] = None  # type: ignore[assignment]  # host copy unreachable
    try:
        loader = importer.import_module("strimp.loader")
        assert loader.plugin() == "packaged plugin"
        assert loader.relative_plugin() == "packaged plugin"
        assert loader.resource() == "packaged table"
        assert loader.resource_names() == ["__init__.py", "table.txt"]
        assert loader.data() == b"packaged table"
        assert loader.host() == "json"
    finally:
        del sys.modules["strimp"]


def test_missing_module_names_archive_and_externs(src_tree, archive):
    """Importing what is neither packaged nor extern raises ImportFromPackageError."""
    src_tree({"lonely.py": "import json\n"})
    with PackageExporter(archive) as exporter:
        exporter.save_module("lonely")
    importer = PackageImporter(archive)
    with pytest.raises(ImportFromPackageError) as info:
        importer.import_module("not_there")
    assert isinstance(info.value, ModuleNotFoundError)
    assert info.value.name == "not_there"
    assert str(archive) in str(info.value)
    assert "'json'" in str(info.value)


def test_module_allowed_refuses_an_extern(src_tree, archive):
    """module_allowed is asked about each extern; a refusal names the module."""
    src_tree({"usesjson.py": "import json\n"})
    with PackageExporter(archive) as exporter:
        exporter.save_module("usesjson")
    with pytest.raises(ImportError, match="'json'"):
        PackageImporter(archive, module_allowed=lambda name: name != "json")


def test_import_os_path_gives_the_real_os(src_tree, archive):
    """`import os.path` in packaged code sees the host's whole os module."""
    src_tree({"usesos.py": "import os.path\n\ndef cwd():\n    return os.getcwd()\n"})
    with PackageExporter(archive) as exporter:
        exporter.save_module("usesos")
    module = PackageImporter(archive).import_module("usesos")
    import os

    assert module.cwd() == os.getcwd()


def test_reduce_package_called_once_per_object_and_not_cached_across_saves(
    src_tree, archive
):
    """__reduce_package__ runs once per object per pickle; results are never reused."""
    src_tree(
        {
            "reducer.py": """
                class Thing:
                    def __init__(self, value):
                        self.value = value

                    def __reduce_package__(self, exporter):
                        name = f"generated._{exporter.get_unique_id()}"
                        exporter.save_text(name, "v.txt", str(self.value))
                        return (load_thing, (name,))

                def load_thing(importer, name):
                    return Thing(int(importer.load_text(name, "v.txt")))
            """
        }
    )
    import reducer

    with PackageExporter(archive) as exporter:
        exporter.intern("reducer")
        for value in range(5):
            thing = reducer.Thing(value)
            exporter.save_pickle("things", f"{value}.pkl", [thing, thing])
            del thing
        exporter.save_pickle("cls", "cls.pkl", reducer.Thing)
    importer = PackageImporter(archive)
    for value in range(5):
        first, second = importer.load_pickle("things", f"{value}.pkl")
        assert first.value == value
        assert first is second
    assert importer.load_pickle("cls", "cls.pkl").__name__ == "Thing"


def test_unknown_persistent_id_is_an_error_not_none(archive):
    """A pickle with an unknown persistent id type fails, naming the record."""
    data = b"\x80\x03X\x05\x00\x00\x00weirdq\x00\x85q\x01Q."
    with PackageExporter(archive) as exporter:
        exporter.save_binary("p", "x.pkl", data)
    with pytest.raises(PickleLoadError, match=r"'p/x\.pkl'.*unsupported persistent id"):
        PackageImporter(archive).load_pickle("p", "x.pkl")


def test_truncated_pickle_names_the_record(archive):
    """A truncated pickle raises PickleLoadError naming the record, not EOFError."""
    import pickle

    with PackageExporter(archive) as exporter:
        exporter.save_binary("p", "cut.pkl", pickle.dumps({"a": list(range(50))})[:-9])
    with pytest.raises(PickleLoadError, match=r"'p/cut\.pkl'.*truncated"):
        PackageImporter(archive).load_pickle("p", "cut.pkl")


def test_pickle_protocol_4_round_trip(model_pkg, archive):
    """Protocol 4 pickles load, and nested class names resolve."""
    with PackageExporter(archive) as exporter:
        exporter.intern("rtpkg.**")
        exporter.save_pickle("p", "m.pkl", [model_pkg.Model(2)] * 2, pickle_protocol=4)
    loaded = PackageImporter(archive).load_pickle("p", "m.pkl")
    assert loaded[0] is loaded[1]
    assert loaded[0]([5]) == [10]


def test_other_protocols_are_refused(archive):
    """Only protocols 3 and 4 are accepted, as torch.package does."""
    with (
        PackageExporter(io.BytesIO()) as exporter,
        pytest.raises(ValueError, match="protocols 3 and 4"),
    ):
        exporter.save_pickle("p", "x.pkl", 1, pickle_protocol=2)


def test_importer_reads_an_unzipped_directory(model_pkg, archive, tmp_path):
    """An unzipped package folder loads like the archive."""
    import zipfile

    with PackageExporter(archive) as exporter:
        exporter.intern("rtpkg.**")
        exporter.save_pickle("obj", "model.pkl", model_pkg.Model(4))
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(tmp_path / "unzipped")
    importer = PackageImporter(tmp_path / "unzipped" / "package")
    assert importer.load_pickle("obj", "model.pkl")([1]) == [4]


def test_get_resource_reader_returns_none_for_modules(model_pkg, archive):
    """get_resource_reader answers None for non-packages instead of raising."""
    with PackageExporter(archive) as exporter:
        exporter.intern("rtpkg.**")
        exporter.save_module("rtpkg.util")
    importer = PackageImporter(archive)
    assert importer.get_resource_reader("rtpkg.util") is None
    assert importer.get_resource_reader("nothing.here") is None
    assert importer.get_resource_reader("rtpkg") is not None


def test_python_version_is_recorded(archive):
    """python_version() returns the version the package was made with."""
    import platform

    with PackageExporter(archive) as exporter:
        exporter.save_text("a", "b.txt", "c")
    assert PackageImporter(archive).python_version() == platform.python_version()


def test_failed_module_is_not_left_half_imported(src_tree, archive):
    """A packaged module that raises while running is not cached, as in CPython."""
    src_tree({"flaky.py": "import json\nraise RuntimeError('first import fails')\n"})
    with PackageExporter(archive) as exporter:
        exporter.save_module("flaky", dependencies=True) if False else None
        exporter.save_source_string("flaky", "raise RuntimeError('always fails')\n")
    importer = PackageImporter(archive)
    for _ in range(2):
        with pytest.raises(RuntimeError, match="always fails"):
            importer.import_module("flaky")
    assert "flaky" not in importer.modules


def test_source_with_a_latin1_coding_cookie_keeps_its_text(tmp_path, archive):
    """A latin-1 source file is stored as is and decodes correctly on load."""
    path = tmp_path / "latin.py"
    path.write_bytes(b"# -*- coding: latin-1 -*-\nWORD = '\xe9t\xe9'\n")
    with PackageExporter(archive) as exporter:
        exporter.save_source_file("latin", path)
    assert PackageImporter(archive).import_module("latin").WORD == "été"


def test_save_source_file_directory_skips_hidden_folders(tmp_path, archive):
    """Saving a folder maps files to modules and ignores hidden folders."""
    folder = tmp_path / "tree"
    (folder / "sub").mkdir(parents=True)
    (folder / ".hidden").mkdir()
    (folder / "__init__.py").write_text("from .sub import leaf\n")
    (folder / "sub" / "__init__.py").write_text("")
    (folder / "sub" / "leaf.py").write_text("VALUE = 7\n")
    (folder / ".hidden" / "h.py").write_text("raise SystemExit\n")
    with PackageExporter(archive) as exporter:
        exporter.save_source_file("tree", folder)
    importer = PackageImporter(archive)
    assert importer.import_module("tree").leaf.VALUE == 7
    assert not any("hidden" in r for r in importer.zip_reader.record_names())


def test_dataclass_instances_round_trip(archive):
    """Instances of host dataclasses round trip when their module is extern."""
    value = _Pair(1, "a")
    with PackageExporter(archive) as exporter:
        exporter.extern(__name__)
        exporter.save_pickle("p", "pair.pkl", [value, {"k": value}])
    loaded = PackageImporter(archive).load_pickle("p", "pair.pkl")
    assert loaded == [value, {"k": value}]


@dataclasses.dataclass
class _Pair:
    a: int
    b: str
