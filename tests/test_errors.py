"""Bad input raises a typed error naming what was wrong, and leaves nothing behind."""

from __future__ import annotations

import functools
import io
import pickle
import re
import threading
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hermetic
from hermetic import (
    ArchiveError,
    ArchiveFormatError,
    EmptyMatchError,
    HermeticError,
    ImportFromPackageError,
    ObjMismatchError,
    ObjNotFoundError,
    PackageExporter,
    PackageImporter,
    PackagingError,
    PickleLoadError,
    PickleSaveError,
)
from hermetic.errors import MissingDependencyError

NO_ACTION = (
    "Module did not match against any action pattern. Extern, mock, or intern it."
)
DENIED = "Module was denied by a pattern."
DEBUG_HINT = (
    "Set debug=True when invoking PackageExporter for a visualization of where broken "
    "modules are coming from!"
)
SYS_NOTE = (
    "Note: While we usually use modules in the python standard library from the local "
    "environment, `sys` has a lot of system level access and therefore can pose a "
    "security risk. We heavily recommend removing `sys` from your packaged code. "
    "However, if that is not possible, add it to the extern list by calling "
    'PackageExporter.extern("`sys`")'
)
SAVE_MODULE_MESSAGE = (
    "save_module() expects a string input, did you perhaps mean to pass `__name__`?"
)
BAD_MODULE_NAMES = ["a..b", "", ".a", "a.", "."]


def save_with_module_name(exporter: PackageExporter, method: str, name: str) -> None:
    """Call one of the exporter's module-naming methods with *name*."""
    if method == "save_module":
        exporter.save_module(name)
    elif method == "save_source_string":
        exporter.save_source_string(name, "X = 1\n")
    else:
        exporter.save_pickle(name, "obj.pkl", [1, 2])


def write_zip(path, records, *, folder="pkg"):
    """Write a plain zipfile archive whose records live under *folder*."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in records.items():
            zf.writestr(f"{folder}/{name}", data)
    return path


def assert_only(folder, *names):
    """Assert that *folder* holds exactly the files *names* (no leftovers)."""
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)


# -- PackageExporter arguments ---------------------------------------------------------


@pytest.mark.parametrize("target", [123, object(), None, io.StringIO()])
def test_target_without_binary_write_is_a_type_error(target):
    """A target that is neither a path nor a binary writable file raises TypeError."""
    with pytest.raises(TypeError, match=type(target).__name__):
        PackageExporter(target)


def test_missing_parent_directory_is_named(tmp_path):
    """A path whose parent folder is missing raises ArchiveError naming that folder."""
    target = tmp_path / "nowhere" / "out.pt"
    with pytest.raises(ArchiveError, match=re.escape(str(tmp_path / "nowhere"))):
        PackageExporter(target)
    assert_only(tmp_path)


def test_directory_target_is_refused(tmp_path):
    """A path that is a directory raises ArchiveError naming it."""
    with pytest.raises(ArchiveError, match="is a directory") as info:
        PackageExporter(tmp_path)
    assert info.value.archive == str(tmp_path)


def test_string_importer_is_a_type_error():
    """importer='abc' is refused instead of silently dropping every dependency."""
    message = (
        "importer arg should be an Importer or a sequence of Importers, "
        "got str instead."
    )
    with pytest.raises(TypeError, match=re.escape(message)):
        PackageExporter(io.BytesIO(), importer="abc")


def test_sequence_of_non_importers_is_a_type_error():
    """A sequence holding something that is not an Importer raises TypeError."""
    with pytest.raises(TypeError, match="is not an Importer"):
        PackageExporter(io.BytesIO(), importer=[object()])


def test_save_module_of_a_non_string_has_torch_message():
    """save_module(123) says a string (perhaps __name__) was expected."""
    exporter = PackageExporter(io.BytesIO())
    with pytest.raises(TypeError, match=re.escape(SAVE_MODULE_MESSAGE)):
        exporter.save_module(123)


@pytest.mark.parametrize("method", ["save_module", "save_source_string", "save_pickle"])
@pytest.mark.parametrize("name", BAD_MODULE_NAMES)
def test_module_name_with_empty_segment_is_named(method, name):
    """Module and package names with empty segments raise ValueError naming them."""
    exporter = PackageExporter(io.BytesIO())
    with pytest.raises(ValueError, match=re.escape(repr(name))):
        save_with_module_name(exporter, method, name)


def test_save_text_refuses_bytes():
    """save_text with bytes raises TypeError pointing at save_binary."""
    exporter = PackageExporter(io.BytesIO())
    with pytest.raises(TypeError, match=r"save_text\(\) expects str, got bytes"):
        exporter.save_text("res", "a.txt", b"bytes")


def test_save_binary_refuses_str():
    """save_binary with str raises TypeError pointing at save_text."""
    exporter = PackageExporter(io.BytesIO())
    with pytest.raises(TypeError, match=r"save_binary\(\) expects bytes, got str"):
        exporter.save_binary("res", "a.bin", "text")


def test_empty_package_for_a_resource_is_refused():
    """save_text('', ...) raises ValueError, not an unreachable '/b.txt' record."""
    exporter = PackageExporter(io.BytesIO())
    with pytest.raises(ValueError, match="package must be a non-empty module name"):
        exporter.save_text("", "b.txt", "text")


@pytest.mark.parametrize("resource", ["b/c.txt", "b\\c.txt"])
def test_resource_with_a_separator_is_refused(resource):
    """A resource name holding a path separator raises ValueError naming it."""
    exporter = PackageExporter(io.BytesIO())
    with pytest.raises(
        ValueError, match=re.escape(f"{resource!r} must be only a file")
    ):
        exporter.save_text("res", resource, "text")


def test_writing_a_record_twice_is_refused_and_the_exporter_goes_on(archive):
    """A second write of one record raises ArchiveFormatError naming it; close works."""
    with PackageExporter(archive) as exporter:
        exporter.save_text("res", "a.txt", "first")
        with pytest.raises(ArchiveFormatError, match="already written") as info:
            exporter.save_binary("res", "a.txt", b"second")
        assert info.value.record == "res/a.txt"
    assert PackageImporter(archive).load_text("res", "a.txt") == "first"


SAVES_AFTER_CLOSE = {
    "save_text": lambda e: e.save_text("res", "a.txt", "x"),
    "save_binary": lambda e: e.save_binary("res", "a.bin", b"x"),
    "save_pickle": lambda e: e.save_pickle("res", "a.pkl", 1),
    "save_source_string": lambda e: e.save_source_string("mod", "X = 1\n"),
    "save_module": lambda e: e.save_module("json"),
    "intern": lambda e: e.intern("anything.**"),
}


@pytest.mark.parametrize("save", SAVES_AFTER_CLOSE.values(), ids=SAVES_AFTER_CLOSE)
def test_save_after_close_is_a_clear_error(save):
    """Any save after close() says the exporter is closed (torch: AttributeError)."""
    exporter = PackageExporter(io.BytesIO())
    exporter.close()
    with pytest.raises(ValueError, match="is already closed"):
        save(exporter)


def test_second_close_does_nothing():
    """close() is idempotent (torch raises an AssertionError the second time)."""
    buffer = io.BytesIO()
    exporter = PackageExporter(buffer)
    exporter.close()
    size = len(buffer.getvalue())
    exporter.close()
    assert len(buffer.getvalue()) == size


# -- nothing half-written --------------------------------------------------------------


def test_exception_inside_with_leaves_no_file(tmp_path):
    """An exception inside `with PackageExporter(path)` leaves no file nor temp file."""
    target = tmp_path / "out.pt"
    with (  # noqa: PT012
        pytest.raises(RuntimeError, match="user code failed"),
        PackageExporter(target) as exporter,
    ):
        exporter.save_text("res", "a.txt", "x")
        raise RuntimeError("user code failed")
    assert_only(tmp_path)


def test_packaging_error_at_close_leaves_no_file(src_tree, tmp_path):
    """A PackagingError raised by close() leaves nothing at the path."""
    src_tree({"unmatched_dep.py": "X = 1\n"})
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(PackagingError), PackageExporter(folder / "p.pt") as exporter:
        exporter.save_source_string("root_mod", "import unmatched_dep\n")
    assert_only(folder)


def test_packaging_error_keeps_an_existing_file(src_tree, tmp_path):
    """A failed export does not clobber an archive already at the path."""
    src_tree({"unmatched_dep.py": "X = 1\n"})
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "p.pt"
    target.write_bytes(b"previous")
    exporter = PackageExporter(target)
    exporter.save_source_string("root_mod", "import unmatched_dep\n")
    with pytest.raises(PackagingError):
        exporter.close()
    assert target.read_bytes() == b"previous"
    assert_only(folder, "p.pt")


UNPICKLABLE = {
    "lambda": lambda: lambda x: x,
    "lock": threading.Lock,
    "nested-lock": lambda: {"ok": [1, 2], "bad": [threading.Lock()]},
}


@pytest.mark.parametrize("make", UNPICKLABLE.values(), ids=UNPICKLABLE)
def test_pickling_failure_names_the_record_and_exporter_goes_on(archive, make):
    """An unpicklable object raises PickleSaveError naming the record; others save."""
    with PackageExporter(archive) as exporter:
        with pytest.raises(PickleSaveError, match=r"record 'p/bad\.pkl'") as info:
            exporter.save_pickle("p", "bad.pkl", make())
        assert isinstance(info.value, pickle.PicklingError)
        assert info.value.record == "p/bad.pkl"
        exporter.save_pickle("p", "good.pkl", {"fine": [1, 2]})
    importer = PackageImporter(archive)
    assert importer.load_pickle("p", "good.pkl") == {"fine": [1, 2]}
    assert not importer.zip_reader.has_record("p/bad.pkl")


# -- PackagingError report -------------------------------------------------------------


def close_error(exporter: PackageExporter) -> PackagingError:
    """Close *exporter*, returning the PackagingError it must raise."""
    with pytest.raises(PackagingError) as info:
        exporter.close()
    return info.value


def test_report_for_a_module_no_pattern_matches(src_tree):
    """An unmatched module is listed under NO_ACTION, in torch's text exactly."""
    src_tree({"unmatched_dep.py": "X = 1\n"})
    exporter = PackageExporter(io.BytesIO())
    exporter.save_source_string("root_mod", "import unmatched_dep\n")
    error = close_error(exporter)
    assert str(error) == f"\n* {NO_ACTION}\n    unmatched_dep\n\n{DEBUG_HINT}\n"
    assert error.problems == {NO_ACTION: ["unmatched_dep"]}


def test_report_for_a_denied_module(src_tree):
    """A denied module is listed under the DENIED heading."""
    src_tree({"denied_dep.py": "X = 1\n"})
    exporter = PackageExporter(io.BytesIO())
    exporter.deny("denied_dep")
    exporter.save_source_string("root_mod", "import denied_dep\n")
    error = close_error(exporter)
    assert str(error) == f"\n* {DENIED}\n    denied_dep\n\n{DEBUG_HINT}\n"
    assert error.problems == {DENIED: ["denied_dep"]}


def test_report_for_sys_carries_the_note():
    """`import sys` without an extern is NO_ACTION, with the note about sys."""
    exporter = PackageExporter(io.BytesIO())
    exporter.save_source_string("root_mod", "import sys\n")
    error = close_error(exporter)
    assert str(error) == f"\n* {NO_ACTION}\n    sys\n      {SYS_NOTE}\n\n{DEBUG_HINT}\n"


def test_report_with_debug_shows_the_path(src_tree):
    """With debug=True each broken module gets 'A path to X: a -> b -> X'."""
    src_tree({"dbg_b.py": "import dbg_x\n", "dbg_x.py": "X = 1\n"})
    exporter = PackageExporter(io.BytesIO(), debug=True)
    exporter.intern("dbg_b")
    exporter.save_source_string("dbg_a", "import dbg_b\n")
    error = close_error(exporter)
    expected = (
        f"\n* {NO_ACTION}\n    dbg_x\n      A path to dbg_x: dbg_a -> dbg_b -> dbg_x\n"
    )
    assert str(error) == expected


def test_report_groups_every_problem_by_reason(src_tree):
    """.problems maps each reason's text to its modules, in first-seen order."""
    src_tree({"one_dep.py": "", "two_dep.py": "", "bad_dep.py": ""})
    exporter = PackageExporter(io.BytesIO())
    exporter.deny("bad_dep")
    exporter.save_source_string(
        "root_mod", "import one_dep\nimport bad_dep\nimport two_dep\n"
    )
    error = close_error(exporter)
    assert error.problems == {NO_ACTION: ["one_dep", "two_dep"], DENIED: ["bad_dep"]}
    assert list(error.problems) == [NO_ACTION, DENIED]


def test_pattern_that_matched_nothing_raises_empty_match_error():
    """An allow_empty=False pattern that matched nothing raises EmptyMatchError."""
    exporter = PackageExporter(io.BytesIO())
    exporter.intern("nothing_here.**", allow_empty=False)
    exporter.save_text("res", "a.txt", "x")
    message = (
        "Exporter did not match any modules to GlobGroup(include=nothing_here.**, "
        "exclude=()), which was marked as allow_empty=False"
    )
    with pytest.raises(EmptyMatchError, match=re.escape(message)):
        exporter.close()


def test_packaging_errors_win_over_empty_match(src_tree):
    """When both apply, close() raises the PackagingError, not EmptyMatchError."""
    src_tree({"unmatched_dep.py": ""})
    exporter = PackageExporter(io.BytesIO())
    exporter.intern("nothing_here.**", allow_empty=False)
    exporter.save_source_string("root_mod", "import unmatched_dep\n")
    error = close_error(exporter)
    assert not isinstance(error, EmptyMatchError)
    assert error.problems == {NO_ACTION: ["unmatched_dep"]}


# -- PackageImporter -------------------------------------------------------------------


@pytest.fixture
def small_archive(archive):
    """An archive with a text resource, a plain module and a package."""
    with PackageExporter(archive) as exporter:
        exporter.save_text("res", "a.txt", "text")
        exporter.save_source_string("plainmod", "X = 1\n")
    return archive


def test_missing_archive_path_is_named(tmp_path):
    """A path that does not exist raises ArchiveError naming it."""
    path = tmp_path / "missing.pt"
    with pytest.raises(ArchiveError, match=re.escape(str(path))):
        PackageImporter(path)


@pytest.mark.parametrize(
    "content", [b"", b"not a zip file at all", b"PK\x03\x04" + bytes(40)]
)
def test_unreadable_file_is_named(tmp_path, content):
    """An empty or non-ZIP file raises ArchiveError naming it."""
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(ArchiveError, match=re.escape(str(path))):
        PackageImporter(path)


def test_truncated_archive_is_named_at_every_cut(small_archive, tmp_path):
    """An archive cut anywhere raises ArchiveError naming the file."""
    data = small_archive.read_bytes()
    path = tmp_path / "cut.pt"
    for length in (
        1,
        30,
        64,
        len(data) // 2,
        len(data) - 100,
        len(data) - 22,
        len(data) - 1,
    ):
        path.write_bytes(data[:length])
        with pytest.raises(ArchiveError, match=re.escape(str(path))):
            PackageImporter(path)


def test_archive_without_extern_list_is_named(tmp_path):
    """A ZIP without .data/extern_modules is not a package: the error names both."""
    path = write_zip(tmp_path / "p.zip", {".data/version": "6\n", "res/a.txt": "x"})
    with pytest.raises(ArchiveError, match=r"\.data/extern_modules") as info:
        PackageImporter(path)
    assert info.value.archive == str(path)


@pytest.mark.parametrize(
    ("version", "message"),
    [("0", "version 0 is not supported"), ("11", "version 11 is not supported"),
     ("abc", "version 'abc' is not an integer")],
)  # fmt: skip
def test_unsupported_version_is_named(tmp_path, version, message):
    """A .data/version outside 1-10 raises ArchiveFormatError naming file and record."""
    records = {".data/version": version, ".data/extern_modules": "\n"}
    path = write_zip(tmp_path / "p.zip", records)
    with pytest.raises(ArchiveFormatError, match=message) as info:
        PackageImporter(path)
    assert (info.value.archive, info.value.record) == (str(path), ".data/version")


def test_malformed_extern_list_is_an_archive_format_error(tmp_path):
    """An extern list with an invalid module name is a format error naming the file."""
    records = {".data/version": "6\n", ".data/extern_modules": "json\na..b\n"}
    path = write_zip(tmp_path / "p.zip", records)
    with pytest.raises(ArchiveFormatError, match=r"'a\.\.b'") as info:
        PackageImporter(path)
    assert info.value.archive == str(path)


@pytest.mark.parametrize("source", [123, None, io.StringIO("x")])
def test_importer_of_a_non_file_is_a_type_error(source):
    """PackageImporter(123) raises TypeError (torch: AttributeError about tell)."""
    with pytest.raises(TypeError, match=type(source).__name__):
        PackageImporter(source)


LOADERS = {
    "load_text": lambda i, p, r: i.load_text(p, r),
    "load_binary": lambda i, p, r: i.load_binary(p, r),
    "load_pickle": lambda i, p, r: i.load_pickle(p, r),
}


@pytest.mark.parametrize("load", LOADERS.values(), ids=LOADERS)
def test_missing_record_is_named_not_a_key_error(small_archive, load):
    """Loading a record that is not there raises ArchiveError naming it."""
    importer = PackageImporter(small_archive)
    with pytest.raises(ArchiveError, match=r"'res/missing\.txt'") as info:
        load(importer, "res", "missing.txt")
    assert not isinstance(info.value, KeyError)
    assert info.value.record == "res/missing.txt"


@pytest.mark.parametrize("load", LOADERS.values(), ids=LOADERS)
def test_resource_of_a_plain_module_is_a_type_error(small_archive, load):
    """Resources live in packages: a plain module raises TypeError naming it."""
    importer = PackageImporter(small_archive)
    with pytest.raises(TypeError, match="'plainmod' is not a package"):
        load(importer, "plainmod", "x.pkl")


@pytest.mark.parametrize("load", LOADERS.values(), ids=LOADERS)
def test_resource_of_a_missing_package_is_import_from_package_error(
    small_archive, load
):
    """A package that is not in the archive raises ImportFromPackageError naming it."""
    importer = PackageImporter(small_archive)
    with pytest.raises(ImportFromPackageError, match='"nowhere"') as info:
        load(importer, "nowhere", "x.pkl")
    assert info.value.name == "nowhere"


@pytest.mark.parametrize("name", ["a..b", "", "a."])
def test_import_module_with_empty_segment_is_a_value_error(small_archive, name):
    """import_module of a name with empty segments raises ValueError."""
    importer = PackageImporter(small_archive)
    with pytest.raises(ValueError, match=r"empty segment|Empty module name"):
        importer.import_module(name)


def test_pickle_needing_an_unknown_module_names_record_and_module(archive):
    """A global from a module neither packaged nor extern raises PickleLoadError."""
    data = b"\x80\x03cnot_here_mod\nThing\nq\x00)\x81q\x01."
    with PackageExporter(archive) as exporter:
        exporter.save_binary("p", "x.pkl", data)
    with pytest.raises(PickleLoadError, match=r"'p/x\.pkl'.*'not_here_mod'") as info:
        PackageImporter(archive).load_pickle("p", "x.pkl")
    assert info.value.record == "p/x.pkl"
    assert info.value.global_name == "not_here_mod.Thing"
    assert info.value.archive == str(archive)


def test_pickle_cut_anywhere_names_the_record(archive):
    """A pickle truncated at any length raises PickleLoadError naming the record."""
    data = pickle.dumps({"a": list(range(20)), "b": ("x", 1.5)}, protocol=3)
    cuts = range(1, len(data) - 1, 7)
    with PackageExporter(archive) as exporter:
        for cut in cuts:
            exporter.save_binary("p", f"cut{cut}.pkl", data[:cut])
    importer = PackageImporter(archive)
    for cut in cuts:
        with pytest.raises(PickleLoadError, match=rf"'p/cut{cut}\.pkl'"):
            importer.load_pickle("p", f"cut{cut}.pkl")


# -- errors cross process boundaries ---------------------------------------------------


def real_packaging_error() -> PackagingError:
    """A PackagingError raised by an actual exporter, graph included."""
    exporter = PackageExporter(io.BytesIO())
    exporter.save_source_string("root_mod", "import sys\n")
    with pytest.raises(PackagingError) as info:
        exporter.close()
    return info.value


ERROR_SAMPLES = {
    "HermeticError": lambda: HermeticError("plain"),
    "ArchiveError": lambda: ArchiveError("bad", archive="p.pt", record="res/a.txt"),
    "ArchiveFormatError": lambda: ArchiveFormatError("bad version", archive="p.pt"),
    "PackagingError": lambda: PackagingError("text", problems={"why": ["m"]}),
    "PackagingError-real": real_packaging_error,
    "EmptyMatchError": lambda: EmptyMatchError("matched nothing"),
    "EnvironmentMismatchError": lambda: hermetic.EnvironmentMismatchError(
        "differs", mismatches=[("numpy", "1.0", "2.0"), ("scipy", "1.2", None)]
    ),
    "ImportFromPackageError": lambda: ImportFromPackageError(
        "missing", name="pkg.mod", archive="p.pt"
    ),
    "PickleLoadError": lambda: PickleLoadError(
        "gone", archive="p.pt", record="p/x.pkl", global_name="m.C"
    ),
    "PickleSaveError": lambda: PickleSaveError("cannot", record="p/x.pkl"),
    "ObjNotFoundError": lambda: ObjNotFoundError("not found"),
    "ObjMismatchError": lambda: ObjMismatchError("mismatch"),
    "MissingDependencyError": lambda: MissingDependencyError(
        "torch", "torch", "loading tensors"
    ),
    "IntegrityError": lambda: hermetic.IntegrityError(
        "changed", archive="p.pt", record="p/x.pkl"
    ),
    "SignatureError": lambda: hermetic.SignatureError("wrong key", archive="p.pt"),
    "UnsafeContentError": lambda: hermetic.UnsafeContentError(
        "refused", archive="p.pt", record="p/x.pkl", global_name="os.system"
    ),
}


def all_subclasses(cls: type) -> set[type]:
    """Every subclass of *cls*, transitively."""
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *all_subclasses(sub)}
    return found


def test_every_error_class_has_a_pickling_sample():
    """Each HermeticError subclass in hermetic.errors is covered by ERROR_SAMPLES."""
    classes = {
        cls
        for cls in all_subclasses(HermeticError)
        if cls.__module__ == hermetic.errors.__name__
    }
    sampled = {type(make()) for make in ERROR_SAMPLES.values()}
    assert classes <= sampled


@pytest.mark.parametrize("make", ERROR_SAMPLES.values(), ids=ERROR_SAMPLES)
def test_errors_survive_pickling(make):
    """Every error keeps its type, message and attributes through pickle."""
    error = make()
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.args == error.args
    simple = {k: v for k, v in vars(error).items() if k != "dependency_graph"}
    assert {k: vars(copy)[k] for k in simple} == simple
    if isinstance(error, ImportError):
        assert (copy.name, copy.path, copy.msg) == (error.name, error.path, error.msg)


# -- no input crashes the reader -------------------------------------------------------

FUZZ_SOURCE = "import json\n\n\ndef make(value):\n    return {'value': value}\n"
#: A protocol 3 pickle calling fuzzpkg.make(7).
FUZZ_PICKLE = b"\x80\x03cfuzzpkg\nmake\nq\x00K\x07\x85q\x01Rq\x02."


@functools.cache
def fuzz_archive() -> bytes:
    """A small valid archive: a package with source, text, and two pickles."""
    buffer = io.BytesIO()
    with PackageExporter(buffer) as exporter:
        exporter.save_source_string("fuzzpkg", FUZZ_SOURCE, is_package=True)
        exporter.save_text("fuzzpkg", "note.txt", "hello")
        exporter.save_binary("fuzzpkg", "call.pkl", FUZZ_PICKLE)
        exporter.save_pickle("fuzzpkg", "data.pkl", {"a": [1, 2.5, "x"], "b": (None,)})
    return buffer.getvalue()


def test_fuzz_archive_is_valid():
    """The archive the mutation test starts from loads completely."""
    with PackageImporter(io.BytesIO(fuzz_archive())) as importer:
        assert importer.load_pickle("fuzzpkg", "call.pkl") == {"value": 7}
        assert importer.load_pickle("fuzzpkg", "data.pkl")["b"] == (None,)
        assert importer.load_text("fuzzpkg", "note.txt") == "hello"


def is_documented(exc: BaseException) -> bool:
    """Tell whether *exc* is an error hermetic documents for bad input."""
    if isinstance(exc, HermeticError):
        return True
    # Exactly these builtins (never a subclass such as UnicodeDecodeError).
    return type(exc) in (TypeError, ValueError, ImportError, ModuleNotFoundError)


def exercise(data: bytes) -> None:
    """Open *data* as a package and use it; fail on any undocumented exception."""
    try:
        importer = PackageImporter(io.BytesIO(data))
    except Exception as exc:
        if not is_documented(exc):
            raise
        return
    uses = (
        lambda: importer.import_module("fuzzpkg"),
        lambda: importer.load_text("fuzzpkg", "note.txt"),
        lambda: importer.load_binary("fuzzpkg", "note.txt"),
        lambda: importer.load_pickle("fuzzpkg", "call.pkl"),
        lambda: importer.load_pickle("fuzzpkg", "data.pkl"),
        importer.python_version,
        lambda: str(importer.file_structure()),
    )
    with importer:
        for use in uses:
            try:
                use()
            except Exception as exc:  # noqa: PERF203
                if not is_documented(exc):
                    raise


@st.composite
def mutated_archives(draw: st.DrawFn) -> bytes:
    """The fuzz archive with a few bytes flipped (often in its central directory)."""
    data = bytearray(fuzz_archive())
    tail = max(0, len(data) - 600)
    for _ in range(draw(st.integers(0, 6))):
        index = draw(st.integers(0, len(data) - 1) | st.integers(tail, len(data) - 1))
        data[index] ^= draw(st.integers(1, 255))
    if draw(st.booleans()):
        del data[draw(st.integers(0, len(data))) :]
    return bytes(data)


FUZZ_SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@FUZZ_SETTINGS
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_raise_only_hermetic_errors(data):
    """Any bytes either load or raise a documented error, never anything else."""
    exercise(data)


@FUZZ_SETTINGS
@given(mutated_archives())
def test_mutated_archives_raise_only_hermetic_errors(data):
    """A damaged valid archive either loads or raises a documented error."""
    exercise(data)


PICKLED_VALUE = {"a": [1, 2.5, "x", b"y"], "b": (None, True), "c": {1, 2}}


@st.composite
def damaged_pickles(draw: st.DrawFn) -> bytes:
    """A valid pickle (protocol 3 or 4) with a few bytes flipped or cut off."""
    data = bytearray(
        pickle.dumps(PICKLED_VALUE, protocol=draw(st.sampled_from([3, 4])))
    )
    for _ in range(draw(st.integers(1, 4))):
        data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
    if draw(st.booleans()):
        del data[draw(st.integers(1, len(data))) :]
    return bytes(data)


@FUZZ_SETTINGS
@given(damaged_pickles())
def test_damaged_pickle_record_raises_pickle_load_error(data):
    """A corrupt pickle in an intact archive raises PickleLoadError naming the record.

    A pickle calls what it names, so a damaged one may also apply a well-formed opcode
    to the wrong object; the TypeError or AttributeError that gives passes through, as
    it would from pickle.
    """
    buffer = io.BytesIO()
    with PackageExporter(buffer) as exporter:
        exporter.save_binary("p", "x.pkl", data)
    with PackageImporter(io.BytesIO(buffer.getvalue())) as importer:
        try:
            importer.load_pickle("p", "x.pkl")
        except PickleLoadError as exc:
            record = exc.record
            assert record == "p/x.pkl"
        except (TypeError, AttributeError) as exc:
            kind = type(exc)
            assert kind in (TypeError, AttributeError)


def test_submodule_of_a_plain_module_is_refused_on_export():
    """Saving mod.sub next to a plain (non-package) module mod is refused, naming it."""
    exporter = PackageExporter(io.BytesIO())
    exporter.save_source_string("mod", "X = 1\n")
    with pytest.raises((ValueError, PackagingError), match="'mod'"):  # noqa: PT012
        exporter.save_source_string("mod.sub", "Y = 2\n")
        exporter.close()
