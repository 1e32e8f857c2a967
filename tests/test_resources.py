"""importlib.resources and pkgutil inside packaged code, from a ZIP and from a folder.

Every test runs twice, as importlib_resources runs its suite over each backend: once
on the archive file and once on the same archive unzipped (``PackageImporter(folder)``).
The calls are made *by packaged code*, the way a library reads its own data; the
package is not importable from the host, so a call that escaped the package would fail.

The sample package, drawn::

    respkg/
    ├── __init__.py         helper functions calling importlib.resources / pkgutil
    ├── mod.py              a plain module with the same helpers
    ├── sub/__init__.py     a subpackage with code
    ├── sub/inner.txt
    ├── top.txt             "héllo\\n"
    ├── blob.bin            bytes 0..255
    └── data/               a folder without code
        ├── table.csv
        └── deep/
            ├── note.txt
            └── deeper/leaf.txt
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import pytest

from hermetic import PackageExporter, PackageImporter

HELPERS = """
import importlib.resources
import pkgutil


def files(*anchor):
    return importlib.resources.files(*anchor)


def files_of_package():
    return importlib.resources.files(__package__)


def files_of_name():
    return importlib.resources.files(__name__)


def as_file(traversable):
    return importlib.resources.as_file(traversable)


def reader(name=None):
    return __spec__.loader.get_resource_reader(name or __spec__.name)


def get_data(resource, package=None):
    return pkgutil.get_data(package or __name__, resource)


def legacy(function, *args):
    return getattr(importlib.resources, function)(__package__, *args)
"""

TOP_TEXT = "héllo\n"
BLOB = bytes(range(256))
RESOURCES = {
    ("respkg", "top.txt"): TOP_TEXT.encode(),
    ("respkg", "blob.bin"): BLOB,
    ("respkg.data", "table.csv"): b"a,b\n1,2\n",
    ("respkg.data.deep", "note.txt"): b"note",
    ("respkg.data.deep.deeper", "leaf.txt"): b"leaf",
    ("respkg.sub", "inner.txt"): b"inner",
}

#: Every path below respkg/, folders with a trailing slash.
WALK = [
    "__init__.py",
    "blob.bin",
    "data/",
    "data/deep/",
    "data/deep/deeper/",
    "data/deep/deeper/leaf.txt",
    "data/deep/note.txt",
    "data/table.csv",
    "mod.py",
    "sub/",
    "sub/__init__.py",
    "sub/inner.txt",
    "top.txt",
]

NEEDS_312 = pytest.mark.skipif(
    sys.version_info < (3, 12),
    reason="importlib.resources.files() takes no anchor and no plain module "
    "before Python 3.12",
)
BEFORE_312 = pytest.mark.skipif(
    sys.version_info >= (3, 12), reason="since Python 3.12 files() infers its anchor"
)
#: Python 3.11 and 3.12 deprecate importlib.resources' function API; 3.13 keeps it
#: but deprecates contents().
LEGACY_DEPRECATED = pytest.mark.filterwarnings(
    r"ignore:.* is deprecated\. Use files\(\) instead:DeprecationWarning"
)
CONTENTS_DEPRECATED = pytest.mark.filterwarnings(
    r"ignore:importlib\.resources\.contents is deprecated:DeprecationWarning"
)


@pytest.fixture(scope="module")
def archive_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample package, written once for the module."""
    path = tmp_path_factory.mktemp("resources") / "package.pt"
    with PackageExporter(path) as exporter:
        exporter.save_source_string("respkg", HELPERS, is_package=True)
        exporter.save_source_string("respkg.mod", HELPERS)
        exporter.save_source_string("respkg.sub", HELPERS, is_package=True)
        for (package, resource), data in RESOURCES.items():
            exporter.save_binary(package, resource, data)
    with zipfile.ZipFile(path) as zf:
        zf.extractall(path.parent / "unzipped")
    return path


@pytest.fixture(params=["zip", "folder"])
def importer(request, archive_path):
    """A fresh importer of the sample package, from the ZIP or the unzipped folder."""
    unzipped = archive_path.parent / "unzipped" / "package"
    source = archive_path if request.param == "zip" else unzipped
    with PackageImporter(source) as opened:
        yield opened


@pytest.fixture
def respkg(importer):
    """The packaged ``respkg`` module."""
    return importer.import_module("respkg")


def walk(folder, prefix=""):
    """List every path below a Traversable, folders with a trailing slash."""
    found = []
    for child in folder.iterdir():
        if child.is_dir():
            found.append(f"{prefix}{child.name}/")
            found.extend(walk(child, f"{prefix}{child.name}/"))
        else:
            assert child.is_file()
            found.append(f"{prefix}{child.name}")
    return sorted(found)


# -- files() ---------------------------------------------------------------------------


def test_files_of_package_reads_text_and_bytes(respkg):
    """files(__package__) reads the package's own text and binary records."""
    folder = respkg.files_of_package()
    assert folder.is_dir()
    assert not folder.is_file()
    assert folder.joinpath("top.txt").read_text(encoding="utf-8") == TOP_TEXT
    assert folder.joinpath("top.txt").read_text() == TOP_TEXT
    assert (folder / "blob.bin").read_bytes() == BLOB


def test_files_accepts_the_mangled_module_name(respkg):
    """files(__name__) with the packaged module's mangled name is the same folder."""
    assert respkg.__name__.startswith("<torch_package_")
    assert respkg.files_of_name().joinpath("top.txt").read_text() == TOP_TEXT


def test_iterdir_walks_nested_folders(respkg):
    """iterdir() lists files and folders at every depth; is_file/is_dir agree."""
    assert walk(respkg.files_of_package()) == WALK


def test_iterdir_of_a_nested_folder_lists_its_direct_children(respkg):
    """A nested folder's iterdir() gives only its own children, with their names."""
    deep = respkg.files_of_package() / "data" / "deep"
    assert sorted(child.name for child in deep.iterdir()) == ["deeper", "note.txt"]


def test_joinpath_with_several_parts(respkg):
    """joinpath takes several parts, or one '/'-separated part, as pathlib does."""
    folder = respkg.files_of_package()
    leaf = folder.joinpath("data", "deep", "deeper", "leaf.txt")
    assert leaf.name == "leaf.txt"
    assert leaf.read_bytes() == b"leaf"
    assert folder.joinpath("data/deep/note.txt").read_text() == "note"
    assert (folder / "data" / "deep").joinpath("deeper", "leaf.txt").is_file()


def test_missing_resource_is_neither_file_nor_folder(respkg):
    """A name not in the package is neither a file nor a folder, and cannot be read."""
    missing = respkg.files_of_package().joinpath("data", "nothing.txt")
    assert not missing.is_file()
    assert not missing.is_dir()
    with pytest.raises(FileNotFoundError, match=r"nothing\.txt"):
        missing.read_bytes()
    with pytest.raises(FileNotFoundError, match=r"nothing\.txt"):
        missing.open("rb")


def test_open_in_binary_and_text_mode(respkg):
    """open('rb') and open('r', encoding=...) read a record; writing is refused."""
    top = respkg.files_of_package() / "top.txt"
    with top.open("rb") as stream:
        assert stream.read() == TOP_TEXT.encode()
    with top.open("r", encoding="utf-8") as stream:
        assert stream.read() == TOP_TEXT
    with pytest.raises(ValueError, match="read-only"):
        top.open("w")


def test_files_of_a_subpackage_and_a_code_less_folder(respkg):
    """files() of a subpackage, and of a folder with no code, by dotted name."""
    assert respkg.files("respkg.sub").joinpath("inner.txt").read_bytes() == b"inner"
    assert respkg.files("respkg.data.deep").joinpath("note.txt").read_bytes() == b"note"


def test_files_of_a_module_object(importer, respkg):
    """files(module) accepts packaged package objects, from packaged code and host."""
    import importlib.resources

    sub = importer.import_module("respkg.sub")
    assert respkg.files(sub).joinpath("inner.txt").read_bytes() == b"inner"
    assert respkg.files(respkg).joinpath("top.txt").read_text() == TOP_TEXT
    # From the host, the stdlib reaches the package through its resource reader.
    assert importlib.resources.files(sub).joinpath("inner.txt").read_bytes() == b"inner"
    assert walk(importlib.resources.files(respkg)) == WALK


@NEEDS_312
def test_files_of_a_plain_module_is_its_folder(importer):
    """files() of a plain module (object or name) is the folder it lives in."""
    mod = importer.import_module("respkg.mod")
    assert mod.files(mod).joinpath("top.txt").read_text() == TOP_TEXT
    assert mod.files("respkg.mod").joinpath("top.txt").read_text() == TOP_TEXT
    assert mod.files_of_name().joinpath("blob.bin").read_bytes() == BLOB


@BEFORE_312
def test_files_of_a_plain_module_is_refused_before_3_12(importer):
    """Before 3.12 files() takes packages only, in packaged code as on the host."""
    mod = importer.import_module("respkg.mod")
    with pytest.raises(TypeError, match=r"'respkg\.mod' is not a package"):
        mod.files(mod)
    with pytest.raises(TypeError, match=r"'respkg\.mod' is not a package"):
        mod.files_of_name()


@NEEDS_312
def test_files_without_an_anchor_is_the_callers_folder(importer, respkg):
    """files() with no argument, in packaged code, means the caller's package folder."""
    assert respkg.files().joinpath("top.txt").read_text() == TOP_TEXT
    mod = importer.import_module("respkg.mod")
    assert mod.files().joinpath("blob.bin").read_bytes() == BLOB
    sub = importer.import_module("respkg.sub")
    assert [child.name for child in sub.files().iterdir()] == [
        "__init__.py",
        "inner.txt",
    ]


@BEFORE_312
def test_files_without_an_anchor_is_refused_before_3_12(respkg):
    """Before 3.12 files() needs an anchor, in packaged code as on the host."""
    with pytest.raises(TypeError):
        respkg.files()


# -- as_file ---------------------------------------------------------------------------


def test_as_file_gives_a_real_temporary_file(respkg):
    """as_file() extracts a record to a real file for the with-block only."""
    with respkg.as_file(respkg.files_of_package() / "blob.bin") as path:
        assert Path(path).read_bytes() == BLOB
    assert not Path(path).exists()


@NEEDS_312
def test_as_file_of_a_folder_gives_a_real_tree(respkg):
    """as_file() of a folder extracts the whole nested tree (Python 3.12+)."""
    with respkg.as_file(respkg.files_of_package() / "data") as path:
        assert (path / "deep" / "deeper" / "leaf.txt").read_bytes() == b"leaf"
        assert (path / "table.csv").read_bytes() == b"a,b\n1,2\n"
    assert not path.exists()


# -- the loader's ResourceReader -------------------------------------------------------


def test_resource_reader_opens_and_tests_resources(respkg):
    """open_resource() and is_resource() see files only, at any depth under the path."""
    reader = respkg.reader()
    with reader.open_resource("top.txt") as stream:
        assert stream.read() == TOP_TEXT.encode()
    assert reader.is_resource("top.txt")
    assert reader.is_resource("blob.bin")
    assert not reader.is_resource("data")
    assert not reader.is_resource("missing.txt")
    with pytest.raises(FileNotFoundError):
        reader.open_resource("missing.txt")


def test_rough_edge_24_contents_lists_only_direct_children(respkg):
    """contents() lists a package's own files and folders; torch adds deeper names."""
    assert sorted(respkg.reader().contents()) == [
        "__init__.py",
        "blob.bin",
        "data",
        "mod.py",
        "sub",
        "top.txt",
    ]
    assert sorted(respkg.reader("respkg.data").contents()) == ["deep", "table.csv"]
    assert sorted(respkg.reader("respkg.data.deep").contents()) == [
        "deeper",
        "note.txt",
    ]


def test_rough_edge_24_resource_path_is_never_a_guess(respkg):
    """resource_path() raises FileNotFoundError, so callers extract with as_file()."""
    reader = respkg.reader("respkg.data")
    with pytest.raises(FileNotFoundError):
        reader.resource_path("table.csv")


def test_resource_reader_of_a_plain_module_is_none(respkg):
    """The loader gives no reader for a plain module, as the protocol says."""
    assert respkg.reader("respkg.mod") is None
    assert respkg.reader("not.there") is None


# -- pkgutil.get_data ------------------------------------------------------------------


def test_pkgutil_get_data_reads_nested_paths(respkg):
    """pkgutil.get_data(__name__, 'a/b.txt') reads the package's records."""
    assert respkg.get_data("top.txt") == TOP_TEXT.encode()
    assert respkg.get_data("data/deep/deeper/leaf.txt") == b"leaf"
    assert respkg.get_data("inner.txt", "respkg.sub") == b"inner"


def test_pkgutil_get_data_of_a_plain_module_reads_beside_it(importer):
    """For a plain module, get_data reads from the folder the module is in."""
    mod = importer.import_module("respkg.mod")
    assert mod.get_data("blob.bin") == BLOB
    assert mod.get_data("data/table.csv") == b"a,b\n1,2\n"


def test_pkgutil_get_data_of_a_missing_record_is_file_not_found(respkg):
    """A missing resource raises FileNotFoundError (an OSError), as on the host."""
    with pytest.raises(FileNotFoundError, match=r"missing\.txt"):
        respkg.get_data("data/missing.txt")


# -- the older function API ------------------------------------------------------------


@LEGACY_DEPRECATED
@CONTENTS_DEPRECATED
def test_legacy_functions_read_the_packaged_package(respkg):
    """importlib.resources.read_text(pkg, name) and friends stay inside the package."""
    assert respkg.legacy("read_text", "top.txt") == TOP_TEXT
    assert respkg.legacy("read_binary", "blob.bin") == BLOB
    with respkg.legacy("open_binary", "blob.bin") as stream:
        assert stream.read() == BLOB
    with respkg.legacy("open_text", "top.txt") as stream:
        assert stream.read() == TOP_TEXT
    assert respkg.legacy("is_resource", "top.txt")
    assert not respkg.legacy("is_resource", "data")
    assert sorted(respkg.legacy("contents")) == [
        "__init__.py",
        "blob.bin",
        "data",
        "mod.py",
        "sub",
        "top.txt",
    ]
    with respkg.legacy("path", "top.txt") as path:
        assert Path(path).read_text(encoding="utf-8") == TOP_TEXT
