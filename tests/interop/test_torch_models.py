"""Models across torch.package and hermetic: nn.Modules, FX GraphModules, TorchScript.

Each model is written by one library and loaded by the other (and by hermetic
itself), then run on a fixed input: outputs must be identical and tensors
bit-identical. The packaged model's source lives only in the archive once saved.
"""

from __future__ import annotations

import importlib
import io
import os
import zipfile

import pytest

import hermetic

torch = pytest.importorskip(
    "torch", reason="needs torch==2.13.0 (pip install 'hermetic[torch]')"
)
tpackage = torch.package

pytestmark = [
    pytest.mark.torch,
    # torch 2.13 deprecates making ScriptModules; the tests make them on purpose.
    pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated"),
    pytest.mark.filterwarnings("ignore:`torch.jit.trace(_method)?` is deprecated"),
]

#: torch.package's own exporter and importer warn on every tensor they touch.
TORCH_WARNS = pytest.mark.filterwarnings(
    "ignore:TypedStorage is deprecated:UserWarning"
)

HERMETIC_TO_TORCH = pytest.param(hermetic, tpackage, id="hermetic-to-torch")
TORCH_TO_HERMETIC = pytest.param(tpackage, hermetic, id="torch-to-hermetic")
HERMETIC_TO_HERMETIC = pytest.param(hermetic, hermetic, id="hermetic-to-hermetic")
ALL_DIRECTIONS = pytest.mark.parametrize(
    ("writer", "reader"), [HERMETIC_TO_TORCH, TORCH_TO_HERMETIC, HERMETIC_TO_HERMETIC]
)

ZOO = {
    "zoo/__init__.py": "",
    "zoo/blocks.py": """
        import torch
        from torch import nn


        class Block(nn.Module):
            def __init__(self, width: int):
                super().__init__()
                self.lin = nn.Linear(width, width)
                self.gain = nn.Parameter(torch.linspace(0.5, 1.5, width))
                self.register_buffer("shift", torch.arange(width, dtype=torch.float32))
                self.register_buffer("scratch", torch.zeros(width), persistent=False)

            def forward(self, x):
                return torch.tanh(self.lin(x)) * self.gain + self.shift
    """,
    "zoo/model.py": """
        from torch import nn

        from .blocks import Block


        class Tower(nn.Module):
            def __init__(self, width: int = 4, depth: int = 3):
                super().__init__()
                self.blocks = nn.ModuleList([Block(width) for _ in range(depth)])
                self.head = nn.Linear(width, 2, bias=False)
                self.tail = nn.Linear(width, 2, bias=False)
                self.tail.weight = self.head.weight  # tied

            def forward(self, x):
                for block in self.blocks:
                    x = block(x)
                return self.head(x) - 0.5 * self.tail(x)
    """,
}


@pytest.fixture
def zoo(src_tree):
    """The ``zoo`` package importable from the host; returns ``zoo.model``."""
    src_tree(ZOO)
    return importlib.import_module("zoo.model")


@pytest.fixture
def tower(zoo):
    torch.manual_seed(0)
    return zoo.Tower().eval()


@pytest.fixture
def torchscript_enabled(monkeypatch):
    """Let torch.package save ScriptModules (its beta gate; hermetic has none)."""
    monkeypatch.setattr(
        tpackage.package_exporter, "_gate_torchscript_serialization", False
    )


def _x():
    return torch.linspace(-2.0, 2.0, 12).reshape(3, 4)


def _assert_same_state(loaded, original):
    state, loaded_state = original.state_dict(), loaded.state_dict()
    assert list(loaded_state) == list(state)
    for key, tensor in state.items():
        assert loaded_state[key].dtype == tensor.dtype, key
        assert torch.equal(
            loaded_state[key].view(torch.uint8), tensor.view(torch.uint8)
        ), key


def _assert_same_outputs(loaded, original):
    with torch.no_grad():
        assert torch.equal(loaded(_x()), original(_x()))


def _names(path):
    with zipfile.ZipFile(path) as zf:
        return [name.split("/", 1)[1] for name in zf.namelist()]


# -- nn.Module from packaged source ----------------------------------------------------


@TORCH_WARNS
@ALL_DIRECTIONS
def test_module_tree_from_packaged_source_keeps_state_ties_and_outputs(
    writer, reader, tower, archive
):
    """Nested packaged modules keep parameters, buffers, tied weights and outputs."""
    with writer.PackageExporter(archive) as exporter:
        exporter.intern("zoo.**")
        exporter.save_pickle("model", "tower.pkl", tower)
    assert {"zoo/model.py", "zoo/blocks.py"} <= set(_names(archive))
    importer = reader.PackageImporter(archive)
    loaded = importer.load_pickle("model", "tower.pkl")
    assert type(loaded).__module__ == f"{importer.id()}.zoo.model"
    assert type(loaded.blocks[0]).__module__ == f"{importer.id()}.zoo.blocks"
    assert loaded.tail.weight is loaded.head.weight
    assert type(loaded.blocks[0].gain) is torch.nn.Parameter
    assert "blocks.0.scratch" not in loaded.state_dict()  # not persistent
    assert torch.equal(loaded.blocks[0].scratch, torch.zeros(4))
    _assert_same_state(loaded, tower)
    _assert_same_outputs(loaded, tower)


@TORCH_WARNS
@pytest.mark.parametrize("library", [hermetic, tpackage], ids=["hermetic", "torch"])
def test_packaged_model_reexported_through_its_importer_loads_in_both(
    library, tower, tmp_path
):
    """A model loaded from a package and saved again by the same library loads in
    both libraries, where its source is only in the archive."""
    first, second = tmp_path / "first.pt", tmp_path / "second.pt"
    with library.PackageExporter(first) as exporter:
        exporter.intern("zoo.**")
        exporter.save_pickle("model", "tower.pkl", tower)
    importer = library.PackageImporter(first)
    loaded = importer.load_pickle("model", "tower.pkl")
    with library.PackageExporter(
        second, importer=(importer, library.sys_importer)
    ) as exporter:
        exporter.intern("zoo.**")
        exporter.save_pickle("model", "tower.pkl", loaded)
    for reader in (hermetic, tpackage):
        again_importer = reader.PackageImporter(second)
        again = again_importer.load_pickle("model", "tower.pkl")
        assert type(again).__module__ == f"{again_importer.id()}.zoo.model"
        assert again.tail.weight is again.head.weight
        _assert_same_state(again, tower)
        _assert_same_outputs(again, tower)


# -- FX --------------------------------------------------------------------------------


@TORCH_WARNS
@ALL_DIRECTIONS
def test_fx_graph_module_loads_with_identical_code_and_outputs(
    writer, reader, tower, archive
):
    """A symbolic_trace GraphModule keeps its generated code, state and outputs."""
    graph_module = torch.fx.symbolic_trace(tower)
    with writer.PackageExporter(archive) as exporter:
        exporter.intern("zoo.**", allow_empty=True)
        exporter.save_pickle("model", "fx.pkl", graph_module)
        exporter.save_pickle("model", "fx_again.pkl", graph_module)
    names = _names(archive)
    assert "fx-generated/_0.py" in names
    loaded = reader.PackageImporter(archive).load_pickle("model", "fx.pkl")
    assert isinstance(loaded, torch.fx.GraphModule)
    assert loaded.code == graph_module.code
    _assert_same_state(loaded, graph_module)
    _assert_same_outputs(loaded, graph_module)
    _assert_same_outputs(loaded, tower)


# -- TorchScript -----------------------------------------------------------------------


def _script_modules(tower):
    return {
        "script": torch.jit.script(tower),
        "trace": torch.jit.trace(tower, _x()),
    }


@TORCH_WARNS
@ALL_DIRECTIONS
@pytest.mark.parametrize("kind", ["script", "trace"])
@pytest.mark.usefixtures("torchscript_enabled")
def test_torchscript_module_loads_with_identical_code_and_outputs(
    writer, reader, kind, tower, archive
):
    """A scripted or traced module keeps its TorchScript code, state and outputs."""
    module = _script_modules(tower)[kind]
    with writer.PackageExporter(archive) as exporter:
        exporter.save_pickle("model", "before.pkl", torch.arange(3.0))
        exporter.save_pickle("model", "ts.pkl", {"module": module, "same": module})
        exporter.save_pickle("model", "after.pkl", torch.arange(4.0))
    names = _names(archive)
    assert ".data/ts_code/0/data.pkl" in names
    assert any(n.startswith(".data/ts_code/code/__torch__") for n in names)
    importer = reader.PackageImporter(archive)
    loaded = importer.load_pickle("model", "ts.pkl")
    assert isinstance(loaded["module"], torch.jit.RecursiveScriptModule)
    assert loaded["same"] is loaded["module"]
    assert loaded["module"].code == module.code
    _assert_same_state(loaded["module"], module)
    _assert_same_outputs(loaded["module"], tower)
    assert torch.equal(importer.load_pickle("model", "before.pkl"), torch.arange(3.0))
    assert torch.equal(importer.load_pickle("model", "after.pkl"), torch.arange(4.0))


@TORCH_WARNS
@pytest.mark.usefixtures("torchscript_enabled")
def test_script_module_and_fx_module_share_one_exporter(tower, archive):
    """TorchScript ids and FX module names come from one counter, as in torch."""
    with hermetic.PackageExporter(archive) as exporter:
        exporter.save_pickle("model", "fx.pkl", torch.fx.symbolic_trace(tower))
        exporter.save_pickle("model", "ts.pkl", torch.jit.script(tower))
    names = _names(archive)
    assert "fx-generated/_0.py" in names
    assert ".data/ts_code/1/data.pkl" in names
    for reader in (hermetic, tpackage):
        importer = reader.PackageImporter(archive)
        _assert_same_outputs(importer.load_pickle("model", "fx.pkl"), tower)
        _assert_same_outputs(importer.load_pickle("model", "ts.pkl"), tower)


@TORCH_WARNS
@pytest.mark.usefixtures("torchscript_enabled")
def test_script_module_shares_storages_with_tensors_of_other_loads(tower, archive):
    """In hermetic, a ScriptModule and a torch-saved state dict share storages, also
    across load_pickle calls."""
    module = torch.jit.script(tower)
    with tpackage.PackageExporter(archive) as exporter:
        exporter.save_pickle("model", "ts.pkl", module)
        exporter.save_pickle("model", "state.pkl", module.state_dict())
    importer = hermetic.PackageImporter(archive)
    state = importer.load_pickle("model", "state.pkl")
    first = importer.load_pickle("model", "ts.pkl")
    second = importer.load_pickle("model", "ts.pkl")
    pointer = state["head.weight"].data_ptr()
    assert first.head.weight.data_ptr() == pointer
    assert second.head.weight.data_ptr() == pointer
    assert first is not second


@pytest.mark.parametrize("source", ["buffer", "folder"])
def test_script_module_loads_from_a_buffer_and_an_unzipped_folder(
    source, tower, tmp_path
):
    """hermetic loads TorchScript from any archive form (torch: zip files only)."""
    path = tmp_path / "model.pt"
    module = torch.jit.script(tower)
    with hermetic.PackageExporter(path) as exporter:
        exporter.save_pickle("model", "ts.pkl", module)
    if source == "buffer":
        importer = hermetic.PackageImporter(io.BytesIO(path.read_bytes()))
    else:
        with zipfile.ZipFile(path) as zf:
            zf.extractall(tmp_path / "unzipped")
        importer = hermetic.PackageImporter(tmp_path / "unzipped" / "model")
    _assert_same_outputs(importer.load_pickle("model", "ts.pkl"), tower)


def test_script_module_map_location_meta_and_refusals(tower, archive):
    """ "meta" works; a dict (torch's C++ loader takes none) and CUDA without CUDA
    raise a PickleLoadError naming the ScriptModule."""
    with hermetic.PackageExporter(archive) as exporter:
        exporter.save_pickle("model", "ts.pkl", torch.jit.script(tower))
    importer = hermetic.PackageImporter(archive)
    meta = importer.load_pickle("model", "ts.pkl", map_location="meta")
    assert meta.head.weight.is_meta
    prefix = f"{archive}: record '.data/ts_code/0/data.pkl': ScriptModule '0'"
    with pytest.raises(hermetic.PickleLoadError) as caught:
        importer.load_pickle("model", "ts.pkl", map_location={"cpu": "cpu"})
    assert caught.value.args[0] == (
        f"{prefix} needs map_location None, a string or a torch.device (torch's "
        "loader takes no dict)"
    )
    if not torch.cuda.is_available():
        with pytest.raises(hermetic.PickleLoadError) as caught:
            importer.load_pickle("model", "ts.pkl", map_location="cuda")
        assert caught.value.args[0] == (
            f"{prefix} is mapped to 'cuda', but torch.cuda.is_available() is False "
            "here; load with map_location='cpu'"
        )


def test_script_module_reexported_by_hermetic_loads_in_both(tower, tmp_path):
    """A ScriptModule hermetic loaded can be saved again and loads in both."""
    first, second = tmp_path / "first.pt", tmp_path / "second.pt"
    with hermetic.PackageExporter(first) as exporter:
        exporter.save_pickle("model", "ts.pkl", torch.jit.script(tower))
    importer = hermetic.PackageImporter(first)
    loaded = importer.load_pickle("model", "ts.pkl")
    with hermetic.PackageExporter(
        second, importer=(importer, hermetic.sys_importer)
    ) as exporter:
        exporter.save_pickle("model", "ts.pkl", loaded)
    for reader in (hermetic, tpackage):
        _assert_same_outputs(
            reader.PackageImporter(second).load_pickle("model", "ts.pkl"), tower
        )


def test_failed_export_removes_the_torchscript_side_archive(tower, archive):
    """An exporter left by an exception deletes its TorchScript scratch folder."""
    exporter = hermetic.PackageExporter(archive)
    exporter.save_pickle("model", "ts.pkl", torch.jit.script(tower))
    folder = exporter.script_module_serializer._folder
    assert os.path.isdir(folder)
    error = RuntimeError("boom")
    exporter.__exit__(RuntimeError, error, error.__traceback__)  # as `with` does
    assert not os.path.exists(folder)
    assert not archive.exists()


@TORCH_WARNS
def test_torch_refuses_torchscript_from_an_unzipped_folder(tower, tmp_path):
    """The limitation hermetic lifts: torch needs its C++ zip reader for TorchScript."""
    path = tmp_path / "model.pt"
    with hermetic.PackageExporter(path) as exporter:
        exporter.save_pickle("model", "ts.pkl", torch.jit.script(tower))
    with zipfile.ZipFile(path) as zf:
        zf.extractall(tmp_path / "unzipped")
    importer = tpackage.PackageImporter(str(tmp_path / "unzipped" / "model"))
    with pytest.raises(RuntimeError, match="directory is not supported"):
        importer.load_pickle("model", "ts.pkl")


# -- make demo -------------------------------------------------------------------------


def test_demo_runs_its_packaged_model_in_a_fresh_process(tmp_path):
    """`make demo` packages a small nn.Module and runs it where its source is gone."""
    from hermetic.demo import run_demo

    lines = run_demo(tmp_path).splitlines()
    assert "loaded <torch_package_0>.hermetic_demo_model.net.TinyNet" in lines
    assert "parameters 67" in lines
    outputs = [line for line in lines if line.startswith("net(x) = [")]
    assert len(outputs) == 2
    for line in outputs:
        probabilities = [float(p) for p in line[len("net(x) = [") : -1].split(", ")]
        assert sum(probabilities) == pytest.approx(1.0, abs=1e-3)
    assert "    │   └── net.pkl" in lines
