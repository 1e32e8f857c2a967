"""Behaviours that differ between Python versions, checked on whichever one runs.

torch.package fixed several of these late (issue 4, point 9): dataclasses under
``from __future__ import annotations``, ``pickle.whichmodule`` lookups, the removal of
``typing.io``/``typing.re`` in 3.13 and the per-version standard-library list. Each
test states what the *running* interpreter must do; ``make test-all`` runs them on
every Python from 3.10 to 3.13.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import pickle
import pickletools
import sys

import pytest

from hermetic import PackageExporter, PackageImporter, PackagingError, sys_importer

NO_ACTION = (
    "Module did not match against any action pattern. Extern, mock, or intern it."
)

DATACLASS_SOURCE = """\
from __future__ import annotations

import dataclasses
import typing
from typing import ClassVar


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: int = 0
    registry: ClassVar[dict[str, int]] = {}
    scale: dataclasses.InitVar[int] = 1
    _: dataclasses.KW_ONLY
    label: str = "p"

    def __post_init__(self, scale):
        object.__setattr__(self, "x", self.x * scale)


def describe(point: Point, scale: int = 1) -> str:
    return f"{point.label}: {point.x * scale}"


def hints():
    # Not Point itself: Python 3.10 cannot evaluate a string InitVar annotation.
    return typing.get_type_hints(describe)
"""

FUNCTIONS_SOURCE = """\
def run(value):
    return value + 1


def orphan():
    return "orphan"


orphan.__module__ = None
"""

TYPING_SOURCE = """\
from typing import IO, BinaryIO, Match, Pattern, TextIO, get_type_hints


def first_line(stream: IO[str], pattern: Pattern[str]) -> Match[str] | None:
    return pattern.match(stream.readline())


def hints():
    return get_type_hints(first_line)


KINDS = (TextIO, BinaryIO)
"""

TYPING_IO_FALLBACK_SOURCE = """\
try:
    from typing.io import TextIO
    WHERE = "typing.io"
except ImportError:
    from typing import TextIO
    WHERE = "typing"
"""

GENERICS_SOURCE = """\
import typing

type Pair[T] = tuple[T, T]


class Box[T]:
    def __init__(self, item: T) -> None:
        self.item = item

    def pair(self) -> Pair[T]:
        return (self.item, self.item)


def hints():
    return typing.get_type_hints(Box.pair)
"""


def package(**sources: str) -> tuple[PackageImporter, PackageExporter]:
    """Save each source as a top-level module; return (importer, closed exporter)."""
    buffer = io.BytesIO()
    with PackageExporter(buffer) as exporter:
        for name, source in sources.items():
            exporter.save_source_string(name, source)
    return PackageImporter(io.BytesIO(buffer.getvalue())), exporter


def test_dataclass_with_future_annotations_sees_classvar_initvar_and_kw_only():
    """String annotations still mark ClassVar, InitVar and KW_ONLY in packaged code."""
    importer, _ = package(pyvdc=DATACLASS_SOURCE)
    module = importer.import_module("pyvdc")
    point = module.Point(2, scale=3, label="q")
    assert [field.name for field in dataclasses.fields(point)] == ["x", "y", "label"]
    assert point == module.Point(6, label="q")
    assert dataclasses.replace(point, y=5, scale=1) == module.Point(6, 5, label="q")
    assert dataclasses.asdict(point) == {"x": 6, "y": 0, "label": "q"}
    with pytest.raises(TypeError):
        module.Point(1, 2, 3, "positional label")
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.x = 1
    assert module.hints() == {"point": module.Point, "scale": int, "return": str}
    assert module.describe(point) == "q: 6"
    if sys.version_info >= (3, 13):
        assert copy.replace(point, y=7, scale=1).y == 7


def test_packaged_dataclass_instances_pickle_and_load_again():
    """An instance of a packaged dataclass re-exports and loads equal."""
    importer, _ = package(pyvdc=DATACLASS_SOURCE)
    module = importer.import_module("pyvdc")
    point = module.Point(4, 1, label="r")
    buffer = io.BytesIO()
    with PackageExporter(buffer, importer=(importer, sys_importer)) as exporter:
        exporter.intern("pyvdc")
        exporter.save_pickle("res", "point.pkl", point)
    again = PackageImporter(io.BytesIO(buffer.getvalue()))
    loaded = again.load_pickle("res", "point.pkl")
    assert dataclasses.asdict(loaded) == {"x": 4, "y": 1, "label": "r"}
    assert type(loaded).__module__ == f"{again.id()}.pyvdc"


def test_whichmodule_of_a_packaged_function_is_its_mangled_module():
    """pickle.whichmodule names the mangled module; importers name it demangled."""
    importer, _ = package(pyvfn=FUNCTIONS_SOURCE)
    module = importer.import_module("pyvfn")
    mangled = f"{importer.id()}.pyvfn"
    assert pickle.whichmodule(module.run, "run") == mangled
    assert sys_importer.whichmodule(module.run, "run") == mangled
    assert importer.whichmodule(module.run, "run") == mangled
    assert importer.get_name(module.run) == ("pyvfn", "run")


def test_function_without_module_is_found_by_scanning_modules():
    """A function whose __module__ is None is found by scanning module tables."""
    importer, _ = package(pyvfn=FUNCTIONS_SOURCE)
    orphan = importer.import_module("pyvfn").orphan
    assert orphan.__module__ is None
    assert importer.get_name(orphan) == ("pyvfn", "orphan")
    # The mangled module is in sys.modules while the importer is open, so the
    # stdlib's scan finds it too; after close() it is gone.
    assert pickle.whichmodule(orphan, "orphan") == f"{importer.id()}.pyvfn"
    importer.close()
    assert pickle.whichmodule(orphan, "orphan") == "__main__"
    assert importer.get_name(orphan) == ("pyvfn", "orphan")


def test_packaged_functions_reexport_under_plain_names():
    """Packaged functions, with or without __module__, pickle as 'pyvfn <name>'."""
    importer, _ = package(pyvfn=FUNCTIONS_SOURCE)
    module = importer.import_module("pyvfn")
    buffer = io.BytesIO()
    with PackageExporter(buffer, importer=(importer, sys_importer)) as exporter:
        exporter.intern("pyvfn")
        exporter.save_pickle("res", "fns.pkl", [module.run, module.orphan])
    again = PackageImporter(io.BytesIO(buffer.getvalue()))
    listing = io.StringIO()
    pickletools.dis(again.load_binary("res", "fns.pkl"), out=listing)
    assert "GLOBAL     'pyvfn run'" in listing.getvalue()
    assert "GLOBAL     'pyvfn orphan'" in listing.getvalue()
    run, orphan = again.load_pickle("res", "fns.pkl")
    assert (run(1), orphan()) == (2, "orphan")


def test_typing_names_work_in_packaged_code():
    """IO, TextIO, Pattern, Match and get_type_hints import from `typing` anywhere."""
    importer, exporter = package(pyvtyping=TYPING_SOURCE)
    assert exporter.externed_modules() == ["typing"]
    module = importer.import_module("pyvtyping")
    import re
    import typing

    assert module.first_line(io.StringIO("ab\n"), re.compile("a")).group() == "a"
    assert module.hints()["stream"] == typing.IO[str]
    assert (typing.TextIO, typing.BinaryIO) == module.KINDS


@pytest.mark.filterwarnings("ignore:typing.io is deprecated:DeprecationWarning")
def test_typing_io_follows_the_running_python():
    """typing.io is extern before 3.13; on 3.13 it is gone and the fallback runs."""
    importer, exporter = package(pyvtio=TYPING_IO_FALLBACK_SOURCE)
    module = importer.import_module("pyvtio")
    import typing

    assert module.TextIO is typing.TextIO
    if sys.version_info >= (3, 13):
        assert module.WHERE == "typing"
        assert exporter.externed_modules() == ["typing"]
        assert exporter.unresolved_imports() == {"typing.io": ["pyvtio"]}
    else:
        assert module.WHERE == "typing.io"
        assert exporter.externed_modules() == ["typing", "typing.io"]


@pytest.mark.skipif(
    sys.version_info < (3, 12), reason="type statements and generic classes need 3.12"
)
def test_pep_695_generics_in_packaged_code():
    """`type` aliases and `class Box[T]` work in packaged code and re-export."""
    importer, _ = package(pyvgen=GENERICS_SOURCE)
    module = importer.import_module("pyvgen")
    assert module.Box(3).pair() == (3, 3)
    assert str(module.hints()["return"]) == "Pair[T]"
    assert [str(p) for p in module.Box.__type_params__] == ["T"]
    buffer = io.BytesIO()
    with PackageExporter(buffer, importer=(importer, sys_importer)) as exporter:
        exporter.intern("pyvgen")
        exporter.save_pickle("res", "box.pkl", module.Box("x"))
    again = PackageImporter(io.BytesIO(buffer.getvalue()))
    assert again.load_pickle("res", "box.pkl").pair() == ("x", "x")


@pytest.mark.parametrize(
    ("name", "in_stdlib"),
    [
        ("imghdr", sys.version_info < (3, 13)),  # removed in 3.13 (PEP 594)
        ("tomllib", sys.version_info >= (3, 11)),  # added in 3.11
    ],
)
def test_implicit_extern_follows_this_pythons_stdlib_list(src_tree, name, in_stdlib):
    """A name is implicitly extern only if this interpreter's stdlib has it.

    A third-party module of that name (such as the ``standard-imghdr`` backport on
    3.13) must then be chosen by a pattern like any other.
    """
    src_tree({f"{name}.py": "WHERE = 'third party'\n"})
    assert (name in sys.stdlib_module_names) is in_stdlib
    exporter = PackageExporter(io.BytesIO())
    exporter.save_source_string("pyvuser", f"import {name}\n")
    if in_stdlib:
        assert exporter.externed_modules() == [name]
        exporter.close()
        return
    assert exporter.externed_modules() == []
    with pytest.raises(PackagingError) as info:
        exporter.close()
    assert info.value.problems == {NO_ACTION: [name]}


def test_third_party_module_named_like_a_removed_stdlib_module_can_be_interned(
    src_tree,
):
    """On 3.13 a third-party `imghdr` is interned by a pattern and loads packaged."""
    if sys.version_info < (3, 13):
        pytest.skip("imghdr is still in the standard library before 3.13")
    src_tree({"imghdr.py": "WHERE = 'third party'\n"})
    buffer = io.BytesIO()
    with PackageExporter(buffer) as exporter:
        exporter.intern("imghdr")
        exporter.save_source_string("pyvuser", "import imghdr\n")
    importer = PackageImporter(io.BytesIO(buffer.getvalue()))
    assert importer.extern_modules == []
    assert importer.import_module("pyvuser").imghdr.WHERE == "third party"
