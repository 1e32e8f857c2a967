"""Tensors of every dtype torch 2.13 saves, both ways: torch.package and hermetic.

Bytes are compared through a ``uint8`` view of each whole storage, so NaN patterns
and unused bits count too. Also here: views that share a storage (within and across
``load_pickle`` calls), quantized and sparse tensors, ``map_location`` errors, loading
from an unzipped folder, and the absence of ``TypedStorage`` warnings.
"""

from __future__ import annotations

import io
import pickletools
import warnings
import zipfile

import pytest

import hermetic

torch = pytest.importorskip(
    "torch", reason="needs torch==2.13.0 (pip install 'hermetic[torch]')"
)
tpackage = torch.package

pytestmark = pytest.mark.torch

#: torch.package's own exporter and importer warn on every tensor they touch.
TORCH_WARNS = pytest.mark.filterwarnings(
    "ignore:TypedStorage is deprecated:UserWarning"
)
#: torch warns when it creates a complex32 tensor (also while rebuilding one).
COMPLEX_HALF_WARNS = pytest.mark.filterwarnings(
    "ignore:ComplexHalf support is experimental:UserWarning"
)
#: torch warns when quantized tensors are created (the test's own, and on load).
QUANTIZED_WARNS = pytest.mark.filterwarnings(
    "ignore:torch.quantize_per_tensor, torch.quantize_per_channel:UserWarning"
)
#: torch warns (once) when it creates a CSR or CSC tensor, on save and on load.
CSR_WARNS = pytest.mark.filterwarnings(
    "ignore:Sparse CSR tensor support is in beta state:UserWarning"
)

HERMETIC_TO_TORCH = pytest.param(hermetic, tpackage, id="hermetic-to-torch")
TORCH_TO_HERMETIC = pytest.param(tpackage, hermetic, id="torch-to-hermetic")
BOTH_DIRECTIONS = pytest.mark.parametrize(
    ("writer", "reader"), [HERMETIC_TO_TORCH, TORCH_TO_HERMETIC]
)

#: Every dtype whose tensors torch.package 2.13 saves and loads.
DTYPES = [
    "float64",
    "float32",
    "float16",
    "bfloat16",
    "float8_e4m3fn",
    "float8_e5m2",
    "float8_e4m3fnuz",
    "float8_e5m2fnuz",
    "float8_e8m0fnu",
    "float4_e2m1fn_x2",
    "complex32",
    "complex64",
    "complex128",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "bool",
    "bits8",
    "bits16",
    "bits1x8",
    "bits2x4",
    "bits4x2",
]
#: Dtypes torch.package itself cannot save ("dtype torch.int1 is not recognized").
UNSAVEABLE = ["int1", "int4", "uint1", "uint4", "uint7"]


def _state_dict():
    """One strided view per dtype over 12 elements of distinct bytes, plus extras."""
    state = {}
    for name in DTYPES:
        dtype = getattr(torch, name)
        raw = torch.arange(12 * dtype.itemsize, dtype=torch.uint8)
        if dtype is torch.bool:
            raw = raw % 2
        state[name] = raw.view(dtype).reshape(3, 4)[:, 1:3]
    state["requires_grad"] = torch.linspace(-1.0, 1.0, 5, requires_grad=True)
    state["scalar"] = torch.tensor(2.5, dtype=torch.float64)
    state["empty"] = torch.empty(0, 3, dtype=torch.int16)
    state["channels_last"] = (
        torch.arange(24.0).reshape(1, 2, 3, 4).to(memory_format=torch.channels_last)
    )
    return state


def _storage_bytes(tensor):
    """A uint8 tensor over the whole storage of *tensor*."""
    return torch.empty(0, dtype=torch.uint8).set_(tensor.untyped_storage())


def _assert_same_tensor(loaded, original, name):
    assert loaded.dtype == original.dtype, name
    assert loaded.shape == original.shape, name
    assert loaded.stride() == original.stride(), name
    assert loaded.storage_offset() == original.storage_offset(), name
    assert loaded.requires_grad == original.requires_grad, name
    assert torch.equal(_storage_bytes(loaded), _storage_bytes(original)), name


def _save(library, path, **pickles):
    with library.PackageExporter(path) as exporter:
        for resource, obj in pickles.items():
            exporter.save_pickle("t", f"{resource}.pkl", obj)
    return path


def _records(path):
    with zipfile.ZipFile(path) as zf:
        return {info.filename.split("/", 1)[1]: zf.read(info) for info in zf.infolist()}


# -- every dtype -----------------------------------------------------------------------


@TORCH_WARNS
@COMPLEX_HALF_WARNS
@BOTH_DIRECTIONS
def test_state_dict_of_every_dtype_loads_bit_identical(writer, reader, archive):
    """Each dtype loads with equal storage bytes, dtype, shape, strides and offset."""
    state = _state_dict()
    _save(writer, archive, state=state)
    loaded = reader.PackageImporter(archive).load_pickle("t", "state.pkl")
    assert list(loaded) == list(state)
    for name, tensor in state.items():
        _assert_same_tensor(loaded[name], tensor, name)


@TORCH_WARNS
@COMPLEX_HALF_WARNS
def test_pickle_of_every_dtype_is_byte_identical_to_torchs(tmp_path):
    """hermetic writes the very pickle, storages and extern list torch writes."""
    state = _state_dict()
    theirs = _records(_save(tpackage, tmp_path / "theirs.pt", state=state))
    ours = _records(_save(hermetic, tmp_path / "ours.pt", state=state))
    if ours["t/state.pkl"] != theirs["t/state.pkl"]:
        dis = [io.StringIO(), io.StringIO()]
        pickletools.dis(ours["t/state.pkl"], out=dis[0])
        pickletools.dis(theirs["t/state.pkl"], out=dis[1])
        assert dis[0].getvalue() == dis[1].getvalue()
    assert ours[".data/extern_modules"] == theirs[".data/extern_modules"]
    assert ours[".data/extern_modules"].split() == [
        b"torch._utils",
        b"torch",
        b"collections",
        b"torch.storage",
    ]
    storages = sorted(name for name in theirs if name.endswith(".storage"))
    assert sorted(name for name in ours if name.endswith(".storage")) == storages
    assert all(ours[name] == theirs[name] for name in storages)


@pytest.mark.parametrize("name", UNSAVEABLE)
def test_dtype_torch_cannot_save_is_refused_with_the_dtype_named(name, archive):
    """Sub-byte integer dtypes have no storage form in torch either: a clear error."""
    dtype = getattr(torch, name)
    tensor = torch.zeros(4, dtype=torch.uint8).view(dtype)
    with (
        pytest.raises(hermetic.PickleSaveError, match=f"torch.{name}"),
        hermetic.PackageExporter(archive) as exporter,
    ):
        exporter.save_pickle("t", "x.pkl", tensor)


def test_bare_typed_storage_without_legacy_class_is_refused_clearly(archive):
    """A bare TypedStorage of uint16 has no name in the format: the error says why."""
    storage = torch.storage.TypedStorage(
        wrap_storage=torch.arange(3).to(torch.uint16).untyped_storage(),
        dtype=torch.uint16,
        _internal=True,
    )
    with (
        pytest.raises(hermetic.PickleSaveError) as caught,
        hermetic.PackageExporter(archive) as exporter,
    ):
        exporter.save_pickle("t", "s.pkl", storage)
    assert caught.value.args[0] == (
        "record 't/s.pkl': a bare TypedStorage of dtype torch.uint16 cannot be "
        "saved: the format names typed storages by legacy storage class and this "
        "dtype has none; save a tensor that uses it, or its untyped_storage(), "
        "instead"
    )


@COMPLEX_HALF_WARNS
@QUANTIZED_WARNS
@CSR_WARNS
def test_hermetic_emits_no_typed_storage_warning_for_any_dtype(archive, monkeypatch):
    """Saving and loading every dtype, quantized and sparse included, never warns."""
    monkeypatch.setattr(torch.storage, "_always_warn_typed_storage_removal", True)
    objects = {**_state_dict(), **_quantized(), **_sparse()}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _save(hermetic, archive, all=objects)
        importer = hermetic.PackageImporter(archive)
        importer.load_pickle("t", "all.pkl")
        importer.load_pickle("t", "all.pkl", map_location="cpu")
    messages = [str(w.message) for w in caught]
    assert [m for m in messages if "TypedStorage" in m] == []


# -- quantized and sparse --------------------------------------------------------------


def _quantized():
    x = torch.linspace(-3.0, 3.0, 12).reshape(4, 3)
    scales = torch.tensor([0.05, 0.1, 0.2], dtype=torch.float64)
    zero_points = torch.tensor([0, 1, 2])
    return {
        "qint8": torch.quantize_per_tensor(x, 0.05, 3, torch.qint8),
        "quint8": torch.quantize_per_tensor(x, 0.05, 100, torch.quint8),
        "qint32": torch.quantize_per_tensor(x, 0.01, -7, torch.qint32),
        "quint4x2": torch.quantize_per_tensor(x, 0.5, 4, torch.quint4x2),
        "per_channel": torch.quantize_per_channel(
            x, scales, zero_points, 1, torch.qint8
        ),
        "per_channel_float": torch.quantize_per_channel(
            x, scales.float(), zero_points.float(), 1, torch.quint8
        ),
    }


def _assert_same_quantized(loaded, original, name):
    assert loaded.dtype == original.dtype, name
    assert loaded.qscheme() == original.qscheme(), name
    assert torch.equal(loaded.int_repr(), original.int_repr()), name
    if original.qscheme() == torch.per_tensor_affine:
        assert loaded.q_scale() == original.q_scale(), name
        assert loaded.q_zero_point() == original.q_zero_point(), name
    else:
        assert torch.equal(
            loaded.q_per_channel_scales(), original.q_per_channel_scales()
        )
        assert torch.equal(
            loaded.q_per_channel_zero_points(), original.q_per_channel_zero_points()
        )
        assert loaded.q_per_channel_axis() == original.q_per_channel_axis()


@TORCH_WARNS
@QUANTIZED_WARNS
@BOTH_DIRECTIONS
def test_quantized_tensors_load_with_equal_values_and_parameters(
    writer, reader, archive
):
    """Per-tensor and per-channel quantized tensors keep int values and qparams."""
    tensors = _quantized()
    _save(writer, archive, q=tensors)
    loaded = reader.PackageImporter(archive).load_pickle("t", "q.pkl")
    for name, tensor in tensors.items():
        _assert_same_quantized(loaded[name], tensor, name)


def _sparse():
    dense = torch.tensor([[0.0, 1.5, 0.0, 0.0], [2.0, 0.0, 0.0, -3.0]])
    return {
        "coo": dense.to_sparse(),
        "uncoalesced": torch.sparse_coo_tensor(
            torch.tensor([[0, 0, 1], [1, 1, 3]]),
            torch.tensor([1.0, 2.0, 3.0]),
            (2, 4),
            check_invariants=True,
        ),
        "csr": dense.to_sparse_csr(),
        "csc": dense.to_sparse_csc(),
    }


@TORCH_WARNS
@CSR_WARNS
@BOTH_DIRECTIONS
def test_sparse_tensors_load_equal(writer, reader, archive):
    """COO (coalesced or not), CSR and CSC tensors keep layout and values."""
    tensors = _sparse()
    _save(writer, archive, sparse=tensors)
    loaded = reader.PackageImporter(archive).load_pickle("t", "sparse.pkl")
    for name, tensor in tensors.items():
        assert loaded[name].layout == tensor.layout, name
        assert torch.equal(loaded[name].to_dense(), tensor.to_dense()), name
    assert loaded["uncoalesced"].is_coalesced() is False
    assert loaded["coo"].is_coalesced() is True


@CSR_WARNS
def test_sparse_load_leaves_torchs_global_validation_list_alone(archive):
    """hermetic does not queue sparse tensors in torch's process-wide, racy list."""
    _save(hermetic, archive, sparse=_sparse())
    pending = torch._utils._sparse_tensors_to_validate
    before = len(pending)
    hermetic.PackageImporter(archive).load_pickle("t", "sparse.pkl")
    assert len(pending) == before


def test_sparse_invariants_are_checked_on_load_when_torch_asks(archive):
    """With invariant checks on, an out-of-range sparse index fails the load."""
    indices = torch.tensor([[0, 5]])  # 5 is outside size 3
    bad = torch.sparse_coo_tensor(indices, torch.ones(2), (3,), check_invariants=False)
    _save(hermetic, archive, bad=bad)
    importer = hermetic.PackageImporter(archive)
    assert importer.load_pickle("t", "bad.pkl").shape == (3,)  # unchecked by default
    with (
        torch.sparse.check_sparse_tensor_invariants(),
        pytest.raises(RuntimeError, match="index"),
    ):
        importer.load_pickle("t", "bad.pkl")


# -- shared storages -------------------------------------------------------------------


@TORCH_WARNS
@pytest.mark.parametrize("writer", [hermetic, tpackage], ids=["hermetic", "torch"])
def test_views_share_one_storage_across_load_pickle_calls(writer, archive):
    """Views saved in two pickles share one record and, in hermetic, one storage."""
    base = torch.arange(20, dtype=torch.float64)
    _save(writer, archive, first={"a": base[:5], "b": base[5:]}, second=base[10:12])
    assert [n for n in _records(archive) if n.endswith(".storage")] == [
        ".data/0.storage"
    ]
    importer = hermetic.PackageImporter(archive)
    first = importer.load_pickle("t", "first.pkl")
    second = importer.load_pickle("t", "second.pkl")
    again = importer.load_pickle("t", "first.pkl")
    views = [first["a"], first["b"], second, again["a"]]
    assert len({v.untyped_storage().data_ptr() for v in views}) == 1
    assert len({v.untyped_storage()._cdata for v in views}) == 1
    assert [v.storage_offset() for v in views] == [0, 5, 10, 0]
    first["b"][5] = -1.0  # element 10 of the shared base
    assert second[0].item() == -1.0
    assert again["b"][5].item() == -1.0


@TORCH_WARNS
@pytest.mark.parametrize("writer", [hermetic, tpackage], ids=["hermetic", "torch"])
def test_torch_shares_views_only_within_one_load_pickle_call(writer, archive):
    """torch.package shares within a call, not across calls (rough edge 25)."""
    base = torch.arange(6.0)
    _save(writer, archive, first=[base[:2], base[2:]], second=base[4:])
    importer = tpackage.PackageImporter(archive)
    first = importer.load_pickle("t", "first.pkl")
    second = importer.load_pickle("t", "second.pkl")
    assert first[0].data_ptr() + 8 == first[1].data_ptr()
    assert second.untyped_storage().data_ptr() != first[0].untyped_storage().data_ptr()


# -- map_location ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "map_location",
    ["cuda", "cuda:0", {"cpu": "cuda"}],
    ids=["str", "indexed", "dict"],
)
def test_cuda_map_location_on_a_cpu_machine_raises_a_clear_error(map_location, archive):
    """Asking for CUDA where there is none names the storage, the cause and the fix."""
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    _save(hermetic, archive, x=torch.ones(2))
    with pytest.raises(hermetic.PickleLoadError) as caught:
        hermetic.PackageImporter(archive).load_pickle(
            "t", "x.pkl", map_location=map_location
        )
    target = "cuda" if map_location != "cuda:0" else "cuda:0"
    assert caught.value.args[0] == (
        f"{archive}: record '.data/0.storage': storage saved on 'cpu' and mapped to "
        f"{target!r}, but torch.cuda.is_available() is False here; load with "
        "map_location='cpu' (or a dict such as {'cuda:0': 'cpu'})"
    )
    assert isinstance(caught.value.__cause__, RuntimeError)


def test_cuda_device_map_location_raises_the_same_clear_error(archive):
    """A torch.device("cuda") is refused like the string."""
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    _save(hermetic, archive, x=torch.ones(2))
    with pytest.raises(hermetic.PickleLoadError, match="is_available"):
        hermetic.PackageImporter(archive).load_pickle(
            "t", "x.pkl", map_location=torch.device("cuda")
        )


def test_unsupported_map_location_type_is_named(archive):
    """A map_location of no supported form says which forms exist."""
    _save(hermetic, archive, x=torch.ones(2))
    with pytest.raises(hermetic.PickleLoadError) as caught:
        hermetic.PackageImporter(archive).load_pickle("t", "x.pkl", map_location=3)
    assert caught.value.args[0] == (
        f"{archive}: record '.data/0.storage': unsupported map_location 3: give "
        "None, a device string, a torch.device, a dict or a callable"
    )


def test_callable_map_location_may_return_a_typed_storage(archive):
    """A callable written for torch.package (which passes TypedStorages) still works."""
    _save(hermetic, archive, x=torch.arange(3.0))

    def to_typed(storage, location):
        return torch.storage.TypedStorage(
            wrap_storage=storage, dtype=torch.uint8, _internal=True
        )

    loaded = hermetic.PackageImporter(archive).load_pickle(
        "t", "x.pkl", map_location=to_typed
    )
    assert torch.equal(loaded, torch.arange(3.0))


@COMPLEX_HALF_WARNS
def test_meta_map_location_works_for_every_dtype(archive):
    """map_location="meta" gives meta tensors of each dtype with the saved layout."""
    state = _state_dict()
    _save(hermetic, archive, state=state)
    loaded = hermetic.PackageImporter(archive).load_pickle(
        "t", "state.pkl", map_location="meta"
    )
    for name, tensor in state.items():
        assert loaded[name].is_meta, name
        assert (loaded[name].dtype, loaded[name].shape) == (tensor.dtype, tensor.shape)
        assert loaded[name].stride() == tensor.stride(), name


# -- unzipped folders (rough edge 8) ---------------------------------------------------


@TORCH_WARNS
@COMPLEX_HALF_WARNS
@pytest.mark.parametrize("writer", [hermetic, tpackage], ids=["hermetic", "torch"])
def test_tensors_load_from_an_unzipped_folder(writer, tmp_path):
    """An extracted archive loads tensors, views still shared (torch fails here)."""
    state = _state_dict()
    base = torch.arange(8.0)
    path = _save(writer, tmp_path / "model.pt", state=state, views=[base[:3], base])
    with zipfile.ZipFile(path) as zf:
        zf.extractall(tmp_path / "unzipped")
    importer = hermetic.PackageImporter(tmp_path / "unzipped" / "model")
    loaded = importer.load_pickle("t", "state.pkl")
    for name, tensor in state.items():
        _assert_same_tensor(loaded[name], tensor, name)
    view, whole = importer.load_pickle("t", "views.pkl")
    assert view.untyped_storage().data_ptr() == whole.untyped_storage().data_ptr()
    meta = importer.load_pickle("t", "views.pkl", map_location="meta")
    assert meta[0].is_meta


@TORCH_WARNS
def test_torch_itself_cannot_load_tensors_from_an_unzipped_folder(tmp_path):
    """The rough edge hermetic removes: torch's DirectoryReader fails on tensors."""
    path = _save(tpackage, tmp_path / "model.pt", x=torch.ones(2))
    with zipfile.ZipFile(path) as zf:
        zf.extractall(tmp_path / "unzipped")
    importer = tpackage.PackageImporter(str(tmp_path / "unzipped" / "model"))
    with pytest.raises(AttributeError, match="_typed_storage"):
        importer.load_pickle("t", "x.pkl")
