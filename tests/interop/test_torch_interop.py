"""Interop with the real torch.package: each library loads what the other writes.

Most behaviours run in both directions (hermetic writes and torch.package loads, then
the reverse) and must give the same results. The rest check hermetic's bytes against
the format facts of torch.package's archives and against torch's own output.
"""

from __future__ import annotations

import importlib
import io
import pickletools
import platform
import sys
import warnings
import zipfile

import pytest

import hermetic

torch = pytest.importorskip(
    "torch", reason="interop tests need torch==2.13.0 (pip install 'hermetic[torch]')"
)
tpackage = torch.package

pytestmark = pytest.mark.torch

#: torch.package's own exporter and importer warn on every tensor they touch.
TORCH_WARNS = pytest.mark.filterwarnings(
    "ignore:TypedStorage is deprecated:UserWarning"
)

HERMETIC_TO_TORCH = pytest.param(hermetic, tpackage, id="hermetic-to-torch")
TORCH_TO_HERMETIC = pytest.param(tpackage, hermetic, id="torch-to-hermetic")
BOTH_DIRECTIONS = pytest.mark.parametrize(
    ("writer", "reader"), [HERMETIC_TO_TORCH, TORCH_TO_HERMETIC]
)

SOURCES = {
    "ipkg/__init__.py": "NAME = 'ipkg'\n",
    "ipkg/model.py": """
        import json

        from . import util


        class Model:
            def __init__(self, weight):
                self.weight = weight

            def __call__(self, xs):
                return util.scale(xs, self.weight)

            def describe(self):
                return json.dumps({"weight": self.weight})
    """,
    "ipkg/util.py": """
        import math


        def scale(xs, w):
            return [x * w for x in xs]


        def root(x):
            return math.sqrt(x)
    """,
    "ipkg/net.py": """
        import torch
        from torch import nn


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = nn.Linear(4, 3)
                self.register_buffer("scale", torch.tensor([2.0, 3.0, 4.0]))

            def forward(self, x):
                return torch.relu(self.lin(x)) * self.scale
    """,
    "mockme/__init__.py": """
        class Real:
            pass


        def helper():
            return "real helper"
    """,
    "usesmock.py": """
        import mockme


        def real_class():
            return mockme.Real


        def call_helper():
            return mockme.helper()
    """,
}

#: Imports of a top-level module saved with both exporters to compare their archives.
TOP_SOURCE = """\
import json
import collections
from os import path
import mockme
import math, re
import ipkg
from ipkg import model
"""

SELFREF_SOURCE = """\
import torch_package_importer


def note():
    return torch_package_importer.load_text("res", "note.txt")
"""


@pytest.fixture
def ipkg(src_tree):
    """The ``ipkg`` tree (plus ``mockme`` and ``usesmock``) importable from the host."""
    src_tree(SOURCES)
    return importlib.import_module("ipkg.model")


def _tensors():
    base = torch.arange(10.0)
    return {
        "float32": torch.linspace(-1.0, 1.0, 7),
        "int64": torch.arange(-3, 4, dtype=torch.int64),
        "bool": torch.tensor([True, False, True]),
        "bfloat16": torch.tensor([1.5, -2.25, 3.0], dtype=torch.bfloat16),
        "base": base,
        "view": base[2:5],
        "param": torch.nn.Parameter(torch.ones(2, 3)),
    }


def _same_saves(library, path, model):
    """Save one fixed set of content with *library*'s exporter (hermetic or torch)."""
    with library.PackageExporter(path) as exporter:
        exporter.intern("ipkg.**")
        exporter.mock("mockme")
        exporter.save_source_string("top", TOP_SOURCE)
        exporter.save_pickle("obj", "model.pkl", model.Model(2))
        exporter.save_pickle("obj", "model4.pkl", [model.Model(3)], pickle_protocol=4)
        exporter.save_pickle("tensors", "all.pkl", _tensors())
        exporter.save_text("cfg", "note.txt", "héllo")
        exporter.save_binary("raw", "blob.bin", bytes(range(256)))
    return path


def _both_archives(tmp_path, model):
    """Write the same saves with torch and with hermetic, under the same file name."""
    (tmp_path / "torch").mkdir()
    (tmp_path / "hermetic").mkdir()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "TypedStorage is deprecated", UserWarning)
        theirs = _same_saves(tpackage, tmp_path / "torch" / "same.pt", model)
    ours = _same_saves(hermetic, tmp_path / "hermetic" / "same.pt", model)
    return theirs, ours


def _records(path):
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def _disassemble(data):
    out = io.StringIO()
    pickletools.dis(data, out=out)
    return out.getvalue()


# -- both directions -------------------------------------------------------------------


@BOTH_DIRECTIONS
def test_packaged_source_modules_import_in_the_other_library(
    writer, reader, ipkg, archive
):
    """Interned source imports, with the reader's mangled names, and runs."""
    with writer.PackageExporter(archive) as exporter:
        exporter.intern("ipkg.**")
        exporter.save_module("ipkg.model")
        exporter.save_module("ipkg")  # torch leaves a parent's __init__ out otherwise
    importer = reader.PackageImporter(archive)
    module = importer.import_module("ipkg.model")
    assert module.__name__ == f"{importer.id()}.ipkg.model"
    assert module.__file__ == f"{importer.id()}.ipkg/model.py"
    assert module.__torch_package__ is True
    assert module.Model(3)([1, 2]) == [3, 6]
    assert module.Model(3).describe() == '{"weight": 3}'
    assert importer.import_module("ipkg.util").root(16) == 4.0
    assert importer.import_module("ipkg").NAME == "ipkg"


@BOTH_DIRECTIONS
@pytest.mark.parametrize("protocol", [3, 4])
def test_pickles_of_packaged_classes_load_in_the_other_library(
    writer, reader, protocol, ipkg, archive
):
    """Instances of packaged classes load as the package's classes, sharing intact."""
    model = ipkg.Model(5)
    with writer.PackageExporter(archive) as exporter:
        exporter.intern("ipkg.**")
        exporter.save_pickle(
            "obj", "models.pkl", [model, model, {"k": 1}], pickle_protocol=protocol
        )
    importer = reader.PackageImporter(archive)
    first, second, plain = importer.load_pickle("obj", "models.pkl")
    assert first is second
    assert plain == {"k": 1}
    assert type(first) is not ipkg.Model
    assert type(first).__module__ == f"{importer.id()}.ipkg.model"
    assert type(first) is importer.import_module("ipkg.model").Model
    assert first([1, 2]) == [5, 10]


@BOTH_DIRECTIONS
def test_text_and_binary_read_back_equal(writer, reader, archive):
    """Text (UTF-8) and bytes saved by one library read back equal in the other."""
    blob = bytes(range(256)) * 3
    with writer.PackageExporter(archive) as exporter:
        exporter.save_text("cfg", "note.txt", "héllo wörld\n")
        exporter.save_binary("cfg.deep", "blob.bin", blob)
        exporter.save_binary("raw", "empty.bin", b"")
    importer = reader.PackageImporter(archive)
    assert importer.load_text("cfg", "note.txt") == "héllo wörld\n"
    assert importer.load_binary("cfg.deep", "blob.bin") == blob
    assert importer.load_binary("raw", "empty.bin") == b""


@BOTH_DIRECTIONS
def test_mocked_module_attributes_are_mocked_objects(writer, reader, ipkg, archive):
    """Attributes of a mocked module are MockedObjects that refuse any use."""
    with writer.PackageExporter(archive) as exporter:
        exporter.mock("mockme")
        exporter.save_module("usesmock")
        assert exporter.mocked_modules() == ["mockme"]
    importer = reader.PackageImporter(archive)
    assert "package/_mock.py" in _records(archive)
    module = importer.import_module("usesmock")
    mocked = module.real_class()
    assert type(mocked).__name__ == "MockedObject"
    assert repr(mocked) == f"MockedObject({importer.id()}.mockme.Real)"
    with pytest.raises(NotImplementedError, match=r"mockme\.helper' was mocked out"):
        module.call_helper()
    with pytest.raises(NotImplementedError, match="was mocked out during packaging"):
        mocked()


@BOTH_DIRECTIONS
def test_pickled_object_of_a_mocked_module_is_refused(writer, reader, ipkg, archive):
    """Loading an instance whose class module is mocked raises NotImplementedError."""
    import mockme

    with writer.PackageExporter(archive) as exporter:
        exporter.mock("mockme")
        exporter.save_module("usesmock")
        exporter.save_pickle("obj", "real.pkl", mockme.Real(), dependencies=False)
    importer = reader.PackageImporter(archive)
    with pytest.raises(NotImplementedError, match=r"mockme\.Real' was mocked out"):
        importer.load_pickle("obj", "real.pkl")


@BOTH_DIRECTIONS
def test_extern_modules_are_read_by_the_other_library(writer, reader, ipkg, archive):
    """The reader's extern list is the writer's, in the writer's order."""
    with writer.PackageExporter(archive) as exporter:
        exporter.intern("ipkg.**")
        exporter.save_module("ipkg.model")
        exporter.save_source_string("extra", "import collections\nimport json\n")
    importer = reader.PackageImporter(archive)
    assert importer.extern_modules == ["json", "math", "collections"]
    assert importer.import_module("json") is sys.modules["json"]


@BOTH_DIRECTIONS
def test_module_allowed_refuses_an_extern_of_the_other_library(
    writer, reader, ipkg, archive
):
    """module_allowed sees every extern; a refusal raises ImportError naming it."""
    seen = []
    with writer.PackageExporter(archive) as exporter:
        exporter.intern("ipkg.**")
        exporter.save_module("ipkg.model")

    def allowed(name):
        seen.append(name)
        return name != "math"

    with pytest.raises(
        ImportError,
        match="needs the external module 'math' but that module has been disallowed",
    ):
        reader.PackageImporter(str(archive), module_allowed=allowed)
    assert seen == ["json", "math"]


@TORCH_WARNS
@BOTH_DIRECTIONS
@pytest.mark.parametrize("name", ["float32", "int64", "bool", "bfloat16"])
def test_tensors_load_equal_in_the_other_library(writer, reader, name, archive):
    """Tensors of each dtype load with equal values, dtype and shape."""
    tensor = _tensors()[name]
    with writer.PackageExporter(archive) as exporter:
        exporter.save_pickle("t", "tensor.pkl", {"x": tensor, "n": 1})
    loaded = reader.PackageImporter(archive).load_pickle("t", "tensor.pkl")
    assert loaded["n"] == 1
    assert loaded["x"].dtype == tensor.dtype
    assert torch.equal(loaded["x"], tensor)


@TORCH_WARNS
@BOTH_DIRECTIONS
def test_a_view_shares_its_base_storage_after_load(writer, reader, archive):
    """A view and its base share one storage record, and one storage after load."""
    base = torch.arange(10.0)
    with writer.PackageExporter(archive) as exporter:
        exporter.save_pickle("t", "views.pkl", {"view": base[2:5], "base": base})
    storages = {n: d for n, d in _records(archive).items() if n.endswith(".storage")}
    assert list(storages) == ["package/.data/0.storage"]
    assert len(storages["package/.data/0.storage"]) == 40  # the whole base
    loaded = reader.PackageImporter(archive).load_pickle("t", "views.pkl")
    view, loaded_base = loaded["view"], loaded["base"]
    assert torch.equal(view, torch.tensor([2.0, 3.0, 4.0]))
    assert view.storage_offset() == 2
    assert view.untyped_storage().data_ptr() == loaded_base.untyped_storage().data_ptr()
    loaded_base[3] = 100.0
    assert view[1].item() == 100.0


@TORCH_WARNS
@BOTH_DIRECTIONS
def test_bare_storages_load_as_typed_storages_with_equal_bytes(writer, reader, archive):
    """Pickled storages, typed or untyped, load as TypedStorage with equal bytes."""
    untyped = torch.arange(4, dtype=torch.int32).untyped_storage()
    typed = torch.tensor([1.5, 2.5]).storage()
    with writer.PackageExporter(archive) as exporter:
        exporter.save_pickle("t", "storages.pkl", {"untyped": untyped, "typed": typed})
    loaded = reader.PackageImporter(archive).load_pickle("t", "storages.pkl")
    assert type(loaded["untyped"]) is torch.storage.TypedStorage
    assert loaded["untyped"].dtype == torch.uint8
    assert loaded["untyped"]._untyped_storage.tolist() == untyped.tolist()
    assert type(loaded["typed"]) is torch.storage.TypedStorage
    assert (loaded["typed"].dtype, loaded["typed"].tolist()) == (
        torch.float32,
        [1.5, 2.5],
    )


@TORCH_WARNS
@BOTH_DIRECTIONS
def test_parameters_load_as_parameters(writer, reader, archive):
    """nn.Parameter keeps its type, values and requires_grad."""
    frozen = torch.nn.Parameter(torch.zeros(2), requires_grad=False)
    with writer.PackageExporter(archive) as exporter:
        exporter.save_pickle("t", "params.pkl", [_tensors()["param"], frozen])
    param, loaded_frozen = reader.PackageImporter(archive).load_pickle(
        "t", "params.pkl"
    )
    assert type(param) is torch.nn.Parameter
    assert param.requires_grad is True
    assert torch.equal(param, torch.ones(2, 3))
    assert type(loaded_frozen) is torch.nn.Parameter
    assert loaded_frozen.requires_grad is False


@TORCH_WARNS
@BOTH_DIRECTIONS
def test_module_defined_in_packaged_source_gives_identical_outputs(
    writer, reader, ipkg, archive
):
    """An nn.Module subclass from packaged source keeps its state and its outputs."""
    net_module = importlib.import_module("ipkg.net")
    torch.manual_seed(0)
    net = net_module.Net()
    with writer.PackageExporter(archive) as exporter:
        exporter.intern("ipkg.**")
        exporter.save_pickle("model", "net.pkl", net)
    importer = reader.PackageImporter(archive)
    loaded = importer.load_pickle("model", "net.pkl")
    assert type(loaded).__module__ == f"{importer.id()}.ipkg.net"
    assert isinstance(loaded, torch.nn.Module)
    state, loaded_state = net.state_dict(), loaded.state_dict()
    assert list(loaded_state) == list(state) == ["scale", "lin.weight", "lin.bias"]
    assert all(torch.equal(state[k], loaded_state[k]) for k in state)
    x = torch.linspace(-2.0, 2.0, 8).reshape(2, 4)
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))


@BOTH_DIRECTIONS
def test_torch_package_importer_inside_packaged_code_is_the_reader(
    writer, reader, archive
):
    """`import torch_package_importer` in packaged code yields the loading importer."""
    with writer.PackageExporter(archive) as exporter:
        exporter.save_source_string("selfref", SELFREF_SOURCE)
        exporter.save_text("res", "note.txt", "inside")
    importer = reader.PackageImporter(archive)
    module = importer.import_module("selfref")
    assert module.torch_package_importer is importer
    assert module.note() == "inside"


@TORCH_WARNS
@BOTH_DIRECTIONS
@pytest.mark.parametrize(
    "options",
    [{}, {"include": "ipkg/**"}, {"exclude": [".data/**", "**/*.pkl"]}],
    ids=["all", "include", "exclude"],
)
def test_file_structure_text_is_identical(writer, reader, options, ipkg, archive):
    """torch's and hermetic's importers draw one archive's file_structure() alike."""
    with writer.PackageExporter(archive) as exporter:
        exporter.intern("ipkg.**")
        exporter.mock("mockme")
        exporter.save_module("usesmock")
        exporter.save_pickle("obj", "model.pkl", ipkg.Model(1))
        exporter.save_pickle("t", "t.pkl", torch.arange(3))
        exporter.save_text("obj.nested", "note.txt", "x")
    path = str(archive)
    ours = str(hermetic.PackageImporter(path).file_structure(**options))
    theirs = str(tpackage.PackageImporter(path).file_structure(**options))
    assert ours == theirs
    assert ours.startswith(f"─── {path}\n")
    assert ("ipkg" in ours, ".data" in ours) == (True, not options)


@BOTH_DIRECTIONS
def test_python_version_is_read_by_the_other_library(writer, reader, archive):
    """python_version() is the writer's platform.python_version()."""
    with writer.PackageExporter(archive) as exporter:
        exporter.save_text("a", "b.txt", "c")
    assert reader.PackageImporter(archive).python_version() == platform.python_version()


# -- hermetic itself -------------------------------------------------------------------


def test_hermetic_saves_and_loads_tensors_without_any_warning(archive, monkeypatch):
    """hermetic's save and load of tensors and storages emit no warning at all."""
    # torch warns about TypedStorage once per process unless told to always warn.
    monkeypatch.setattr(torch.storage, "_always_warn_typed_storage_removal", True)
    objects = {
        **_tensors(),
        "untyped": torch.arange(4, dtype=torch.int32).untyped_storage(),
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with hermetic.PackageExporter(archive) as exporter:
            exporter.save_pickle("t", "all.pkl", objects)
            exporter.save_pickle("t", "all4.pkl", objects, pickle_protocol=4)
        importer = hermetic.PackageImporter(archive)
        loaded = importer.load_pickle("t", "all.pkl")
        importer.load_pickle("t", "all4.pkl", map_location="meta")
    assert [str(w.message) for w in caught] == []
    assert torch.equal(loaded["bfloat16"], objects["bfloat16"])
    assert loaded["untyped"]._untyped_storage.tolist() == objects["untyped"].tolist()


# -- byte-level format facts -----------------------------------------------------------


def test_records_live_under_the_file_stem_folder(tmp_path):
    """A path archive's records are under its stem; a buffer's under `archive/`."""
    path = tmp_path / "my.model.pt"
    buffer = io.BytesIO()
    for target in (path, buffer):
        with hermetic.PackageExporter(target) as exporter:
            exporter.save_pickle("t", "x.pkl", torch.ones(2))
    assert {n.split("/")[0] for n in _records(path)} == {"my.model"}
    assert {n.split("/")[0] for n in _records(buffer)} == {"archive"}
    assert torch._C.PyTorchFileReader(str(path)).has_record("t/x.pkl")


def test_version_record_is_six_and_records_are_aligned_for_torch(ipkg, archive):
    """`.data/version` is `6\\n` and torch's reader finds every record 64-aligned."""
    _same_saves(hermetic, archive, ipkg)
    assert _records(archive)["package/.data/version"] == b"6\n"
    records = _records(archive)
    reader = torch._C.PyTorchFileReader(str(archive))
    names = reader.get_all_records()
    assert sorted(f"package/{name}" for name in names) == sorted(records)
    assert {".data/0.storage", ".data/extern_modules", "byteorder"} <= set(names)
    offsets = {name: reader.get_record_offset(name) for name in names}
    assert all(offset % 64 == 0 for offset in offsets.values()), offsets
    for name in names:
        assert bytes(reader.get_record(name)) == records[f"package/{name}"]


def test_extern_modules_order_equals_torchs(ipkg, tmp_path):
    """For the same saves, `.data/extern_modules` lists the same modules in order."""
    theirs, ours = _both_archives(tmp_path, ipkg)
    record = "same/.data/extern_modules"
    assert _records(ours)[record] == _records(theirs)[record]
    assert _records(ours)[record] == (
        b"json\ncollections\nos.path\nmath\nre\ntorch._utils\ntorch\n"
    )


def test_record_names_equal_torchs_and_contents_differ_only_in_mocks(ipkg, tmp_path):
    """Same record names as torch's archive; bytes differ only in mock code and id."""
    theirs, ours = _both_archives(tmp_path, ipkg)
    their_records, our_records = _records(theirs), _records(ours)
    # hermetic adds its manifest (SHA-256 of every record) and recorded environment,
    # which torch ignores.
    extra = [
        "same/.data/hermetic/manifest.json",
        "same/.data/hermetic/environment.json",
    ]
    assert sorted(our_records) == sorted([*their_records, *extra])
    differing = sorted(n for n in their_records if our_records[n] != their_records[n])
    allowed = {
        "same/_mock.py",
        "same/mockme/__init__.py",
        "same/.data/serialization_id",
    }
    assert set(differing) <= allowed
    assert "same/_mock.py" in differing


def test_parent_package_init_is_the_only_extra_record(ipkg, tmp_path):
    """Interning `ipkg.model` alone, only hermetic adds the parent's `__init__.py`."""
    names = {}
    for library in (tpackage, hermetic):
        path = tmp_path / f"{library.__name__}.pt"
        with library.PackageExporter(path) as exporter:
            exporter.intern("ipkg.model")
            exporter.intern("ipkg.util")
            exporter.save_module("ipkg.model")
        names[library] = {n.split("/", 1)[1] for n in _records(path)}
    assert names[hermetic] - names[tpackage] == {
        "ipkg/__init__.py",
        ".data/hermetic/manifest.json",
        ".data/hermetic/environment.json",
    }
    assert names[tpackage] <= names[hermetic]


# -- re-export -------------------------------------------------------------------------


def test_hermetic_reexport_of_a_hermetic_loaded_object_loads_in_both(ipkg, tmp_path):
    """An object from a hermetic importer, saved again through it, loads in both."""
    first, second = tmp_path / "first.pt", tmp_path / "second.pt"
    with hermetic.PackageExporter(first) as exporter:
        exporter.intern("ipkg.**")
        exporter.save_pickle("obj", "model.pkl", ipkg.Model(4))
    importer = hermetic.PackageImporter(first)
    loaded = importer.load_pickle("obj", "model.pkl")
    with hermetic.PackageExporter(
        second, importer=(importer, hermetic.sys_importer)
    ) as exporter:
        exporter.intern("ipkg.**")
        exporter.save_pickle("obj", "model.pkl", loaded)
    for library in (hermetic, tpackage):
        again = library.PackageImporter(second).load_pickle("obj", "model.pkl")
        assert again([1, 2]) == [4, 8]
        assert type(again).__qualname__ == "Model"


@TORCH_WARNS
def test_torch_reexport_of_a_torch_loaded_object_loads_in_hermetic(ipkg, tmp_path):
    """An object torch loaded and torch re-exported through its importer loads here."""
    first, second = tmp_path / "first.pt", tmp_path / "second.pt"
    with tpackage.PackageExporter(first) as exporter:
        exporter.intern("ipkg.**")
        exporter.save_pickle("obj", "model.pkl", [ipkg.Model(6), torch.arange(3)])
    importer = tpackage.PackageImporter(first)
    loaded = importer.load_pickle("obj", "model.pkl")
    with tpackage.PackageExporter(
        second, importer=(importer, tpackage.sys_importer)
    ) as exporter:
        exporter.intern("ipkg.**")
        exporter.save_pickle("obj", "model.pkl", loaded)
    ours = hermetic.PackageImporter(second)
    model, tensor = ours.load_pickle("obj", "model.pkl")
    assert model([1]) == [6]
    assert type(model).__module__ == f"{ours.id()}.ipkg.model"
    assert torch.equal(tensor, torch.arange(3))


@pytest.mark.parametrize("protocol", [3, 4])
def test_three_chained_reexports_keep_working_with_demangled_names(
    protocol, ipkg, tmp_path
):
    """Re-exported three times in a chain, an object still loads; no mangled names."""
    path = tmp_path / "gen0.pt"
    payload = {"model": ipkg.Model(7), "weights": torch.arange(4.0)}
    with hermetic.PackageExporter(path) as exporter:
        exporter.intern("ipkg.**")
        exporter.save_pickle("obj", "model.pkl", payload, pickle_protocol=protocol)
    for generation in range(1, 4):
        importer = hermetic.PackageImporter(path)
        loaded = importer.load_pickle("obj", "model.pkl")
        assert type(loaded["model"]).__module__ == f"{importer.id()}.ipkg.model"
        path = tmp_path / f"gen{generation}.pt"
        with hermetic.PackageExporter(
            path, importer=(importer, hermetic.sys_importer)
        ) as exporter:
            exporter.intern("ipkg.**")
            exporter.save_pickle("obj", "model.pkl", loaded, pickle_protocol=protocol)
        listing = _disassemble(_records(path)[f"gen{generation}/obj/model.pkl"])
        assert "<torch_package_" not in listing
        assert "ipkg.model" in listing
        assert "Model" in listing
    final = hermetic.PackageImporter(path).load_pickle("obj", "model.pkl")
    assert final["model"]([1, 2]) == [7, 14]
    assert torch.equal(final["weights"], torch.arange(4.0))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "TypedStorage is deprecated", UserWarning)
        theirs = tpackage.PackageImporter(path).load_pickle("obj", "model.pkl")
    assert theirs["model"]([3]) == [21]
    assert torch.equal(theirs["weights"], torch.arange(4.0))


# -- map_location ----------------------------------------------------------------------


def _map_locations():
    calls = []

    def returns_none(storage, location):
        calls.append(location)

    def returns_storage(storage, location):
        calls.append(location)
        return storage

    def returns_a_copy(storage, location):
        calls.append(location)
        return storage.clone()

    return calls, {
        "str": "cpu",
        "device": torch.device("cpu"),
        "dict": {"cpu": "cpu"},
        "callable-none": returns_none,
        "callable-storage": returns_storage,
        "callable-copy": returns_a_copy,
    }


@TORCH_WARNS
@pytest.mark.parametrize(
    ("writer", "reader"),
    [
        HERMETIC_TO_TORCH,
        TORCH_TO_HERMETIC,
        pytest.param(hermetic, hermetic, id="hermetic-to-hermetic"),
    ],
)
@pytest.mark.parametrize(
    "kind",
    ["str", "device", "dict", "callable-none", "callable-storage", "callable-copy"],
)
def test_map_location_forms_load_on_cpu(writer, reader, kind, archive):
    """Each map_location form loads on the CPU, once per storage, views still shared."""
    tensors = _tensors()
    with writer.PackageExporter(archive) as exporter:
        exporter.save_pickle("t", "all.pkl", tensors)
    calls, forms = _map_locations()
    loaded = reader.PackageImporter(archive).load_pickle(
        "t", "all.pkl", map_location=forms[kind]
    )
    for name, tensor in tensors.items():
        assert loaded[name].device.type == "cpu"
        assert torch.equal(loaded[name], tensor), name
    assert loaded["view"].untyped_storage().data_ptr() == (
        loaded["base"].untyped_storage().data_ptr()
    )
    assert calls == (["cpu"] * 6 if kind.startswith("callable") else [])


@TORCH_WARNS
@pytest.mark.parametrize("writer", [hermetic, tpackage], ids=["hermetic", "torch"])
def test_meta_map_location_gives_meta_tensors_of_the_right_shape(writer, archive):
    """map_location="meta" gives meta tensors with the saved shapes and dtypes."""
    tensors = _tensors()
    with writer.PackageExporter(archive) as exporter:
        exporter.save_pickle("t", "all.pkl", tensors)
    loaded = hermetic.PackageImporter(archive).load_pickle(
        "t", "all.pkl", map_location="meta"
    )
    for name, tensor in tensors.items():
        assert loaded[name].is_meta, name
        assert (loaded[name].shape, loaded[name].dtype) == (tensor.shape, tensor.dtype)
        assert loaded[name].stride() == tensor.stride()
    assert loaded["view"].storage_offset() == 2
    assert loaded["view"].untyped_storage().nbytes() == 40  # still the whole base
    assert type(loaded["param"]) is torch.nn.Parameter
