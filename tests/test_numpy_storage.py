"""NumPy arrays as storage records, and torch-written tensors loaded without torch.

An exact ``numpy.ndarray`` of a fixed-size dtype pickles as
``numpy.ndarray(shape, dtype, <storage>, offset, strides)`` over one ``.data/``
record per memory block; loading needs NumPy only. A process where torch cannot be
imported loads the tensors of torch-written archives as arrays.
"""

from __future__ import annotations

import io
import mmap
import pickletools
import zipfile

import pytest

from helpers import block_imports_prelude, run_python
from hermetic import (
    ArchiveFormatError,
    PackageExporter,
    PackageImporter,
    sys_importer,
)
from hermetic.storage import _numpy

np = pytest.importorskip(
    "numpy", reason="NumPy storage tests need NumPy (pip install 'hermetic[numpy]')"
)

pytestmark = pytest.mark.numpy

TORCH_WARNS = pytest.mark.filterwarnings(
    "ignore:TypedStorage is deprecated:UserWarning"
)

DTYPES = [
    "?",
    "i1",
    "<i2",
    "<i4",
    "<i8",
    "u1",
    "<u2",
    "<u4",
    "<u8",
    "<f2",
    "<f4",
    "<f8",
    "g",
    "<c8",
    "<c16",
    "<M8[ns]",
    "<M8[D]",
    "<m8[s]",
    "S5",
    "<U3",
    "V4",
    [("a", "<i4"), ("b", ">f8"), ("c", "S3", (2,))],
    np.dtype({"names": ["x", "y"], "formats": ["u1", "<i4"]}, align=True),
]


def _sample(dtype, shape=(2, 3)):
    """Return an array of *dtype* whose bytes are all distinct-ish and not NaN."""
    dtype = np.dtype(dtype)
    raw = (np.arange(np.prod(shape) * dtype.itemsize) % 61).astype(np.uint8)
    if dtype.kind in "fc" or dtype.fields:
        return np.arange(np.prod(shape)).astype(dtype).reshape(shape)
    return raw.view(dtype).reshape(shape)


def _round_trip(archive, objects):
    with PackageExporter(archive) as exporter:
        exporter.extern("numpy")
        exporter.save_pickle("data", "arrays.pkl", objects)
    return PackageImporter(archive).load_pickle("data", "arrays.pkl")


def _storages(archive):
    with zipfile.ZipFile(archive) as zf:
        return {n: zf.read(n) for n in zf.namelist() if n.endswith(".storage")}


def _assert_same_array(loaded, expected, *, strides=True):
    assert type(loaded) is np.ndarray
    assert loaded.dtype == expected.dtype
    assert loaded.shape == expected.shape
    if strides:
        assert loaded.strides == expected.strides
    assert loaded.tobytes() == expected.tobytes()


def _reaches_mmap(array):
    """Follow ``base`` (and memoryview ``obj``) links; tell whether an mmap is met."""
    node = array
    while node is not None:
        if isinstance(node, mmap.mmap):
            return True
        node = node.obj if isinstance(node, memoryview) else getattr(node, "base", None)
    return False


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_every_fixed_size_dtype_round_trips_bit_for_bit(archive, dtype):
    """Each fixed-size dtype, structured and padded ones too, loads with equal bytes."""
    array = _sample(dtype)
    loaded = _round_trip(archive, array)
    _assert_same_array(loaded, array)
    assert len(_storages(archive)) == 1


BASE = np.arange(24, dtype="<f8").reshape(4, 6)
LAYOUTS = {
    "c-order": BASE,
    "fortran": np.asfortranarray(BASE),
    "transposed-view": BASE.T,
    "strided-slice": BASE[1::2, ::3],
    "negative-strides": BASE[::-1, ::-2],
    "big-endian": BASE.astype(">f8"),
    "zero-d": np.array(7, dtype="<i4"),
    "zero-d-view": BASE[2, 3, ...],
    "broadcast": np.broadcast_to(np.arange(3.0), (4, 3)),
    "permuted-owner": BASE.reshape(2, 3, 4).transpose(1, 0, 2).copy(order="K"),
    "from-bytes": np.frombuffer(bytes(range(16)), dtype="<u4"),
    "as-strided": np.lib.stride_tricks.as_strided(BASE, (3, 2), (16, 8)),
}


@pytest.mark.parametrize("name", LAYOUTS)
def test_any_layout_round_trips_with_its_strides(archive, name):
    """Views of every shape, order, stride and byte order keep values and strides."""
    array = LAYOUTS[name]
    loaded = _round_trip(archive, array)
    _assert_same_array(loaded, array)
    assert loaded.flags.writeable


def test_an_array_outside_its_found_block_is_saved_as_a_copy(archive, monkeypatch):
    """If the block found for an array does not hold it, a copy of it is saved."""
    elsewhere = np.zeros(4, dtype=np.uint8)
    monkeypatch.setattr(
        _numpy, "_block_of", lambda np_, array: (elsewhere.ctypes.data, 4, elsewhere)
    )
    array = BASE[::-1, 1::2]
    loaded = _round_trip(archive, array)
    assert loaded.tolist() == array.tolist()
    assert loaded.dtype == array.dtype
    assert [len(data) for data in _storages(archive).values()] == [array.nbytes]


@pytest.mark.parametrize(
    "array",
    [np.empty((0, 3)), BASE[2:2], np.zeros((3, 0), dtype="U4"), np.empty(3, "V0")],
    ids=["empty", "empty-slice", "empty-str", "zero-itemsize"],
)
def test_arrays_without_bytes_round_trip_and_write_no_record(archive, array):
    """Zero-size arrays (and zero itemsize) need no storage record at all."""
    loaded = _round_trip(archive, array)
    _assert_same_array(loaded, array, strides=False)
    assert _storages(archive) == {}


def test_views_of_one_base_write_one_record_and_share_it_after_load(archive):
    """A base and its views are one record, and views of one buffer again."""
    base = np.arange(20, dtype="<i4")
    objects = {
        "base": base,
        "tail": base[10:],
        "even": base[::2],
        "2d": base.reshape(4, 5),
    }
    loaded = _round_trip(archive, objects)
    assert list(_storages(archive).values()) == [base.tobytes()]
    for name, array in objects.items():
        _assert_same_array(loaded[name], array)
        assert np.shares_memory(loaded[name], loaded["base"])
    loaded["base"][12] = -1
    assert loaded["tail"][2] == -1
    assert loaded["2d"][2, 2] == -1


def test_a_view_alone_writes_its_whole_base(archive):
    """As in torch.package, a small view carries the whole memory block it is in."""
    base = np.arange(1000, dtype="<f4")
    loaded = _round_trip(archive, base[5:8])
    assert [len(data) for data in _storages(archive).values()] == [4000]
    assert loaded.tolist() == [5.0, 6.0, 7.0]


def test_the_same_array_twice_in_one_pickle_loads_as_one_object(archive):
    """The pickle memo still applies: one array object stays one object."""
    array = np.arange(4)
    loaded = _round_trip(archive, [array, array])
    assert loaded[0] is loaded[1]


def test_records_are_shared_across_save_pickle_calls_and_with_torch_keys(archive):
    """Keys are per exporter, first-use order; a second pickle reuses a record."""
    base = np.arange(6, dtype="<i8")
    with PackageExporter(archive) as exporter:
        exporter.extern("numpy")
        exporter.save_pickle("data", "a.pkl", base)
        exporter.save_pickle("data", "b.pkl", {"view": base[3:], "other": np.ones(2)})
    assert sorted(_storages(archive)) == [
        "package/.data/0.storage",
        "package/.data/1.storage",
    ]
    importer = PackageImporter(archive)
    first = importer.load_pickle("data", "a.pkl")
    second = importer.load_pickle("data", "b.pkl")
    assert np.shares_memory(first, second["view"])
    assert second["view"].tolist() == [3, 4, 5]


def test_loads_of_one_importer_share_memory(archive):
    """Arrays from two load_pickle calls of one importer are views of one buffer."""
    base = np.arange(8, dtype="<u2")
    with PackageExporter(archive) as exporter:
        exporter.extern("numpy")
        exporter.save_pickle("data", "arrays.pkl", {"base": base, "view": base[4:]})
    importer = PackageImporter(archive)
    first = importer.load_pickle("data", "arrays.pkl")
    second = importer.load_pickle("data", "arrays.pkl")
    assert first["base"] is not second["base"]
    assert np.shares_memory(first["base"], second["view"])
    assert not np.shares_memory(
        first["base"],
        PackageImporter(archive).load_pickle("data", "arrays.pkl")["base"],
    )


def test_threads_loading_from_one_importer_share_one_buffer(archive):
    """Concurrent loads of one importer map each record once and agree on values."""
    from concurrent.futures import ThreadPoolExecutor

    base = np.arange(1000, dtype="<i8")
    _round_trip(archive, {"base": base, "view": base[500:]})
    importer = PackageImporter(archive)
    with ThreadPoolExecutor(8) as pool:
        results = list(
            pool.map(lambda _: importer.load_pickle("data", "arrays.pkl"), range(32))
        )
    for result in results:
        assert result["view"][0] == 500
        assert np.shares_memory(result["view"], results[0]["base"])


def test_loaded_arrays_save_again_as_the_same_records(archive, tmp_path):
    """Re-exporting loaded (mapped) arrays writes their record, not the whole file."""
    base = np.arange(12, dtype="<f4")
    loaded = _round_trip(archive, {"base": base, "view": base[::3]})
    again = tmp_path / "again" / "package.pt"
    again.parent.mkdir()
    _round_trip(again, loaded)
    assert _storages(again) == _storages(archive)


@pytest.mark.torch
@TORCH_WARNS
def test_tensors_and_arrays_number_their_records_together(archive):
    """One exporter numbers torch and NumPy storages in one sequence of keys."""
    torch = pytest.importorskip("torch", reason="needs torch for tensors")
    objects = {"t": torch.arange(3), "a": np.arange(2.0), "t2": torch.ones(2)}
    loaded = _round_trip(archive, objects)
    assert sorted(_storages(archive)) == [
        f"package/.data/{key}.storage" for key in range(3)
    ]
    assert torch.equal(loaded["t"], objects["t"])
    assert torch.equal(loaded["t2"], objects["t2"])
    assert loaded["a"].tolist() == [0.0, 1.0]


def test_loaded_arrays_are_mapped_from_the_archive_file(archive):
    """Arrays of an uncompressed ZIP on disk are views of a map of the file."""
    loaded = _round_trip(archive, {"a": np.arange(5.0), "b": np.arange(3)})
    assert _reaches_mmap(loaded["a"])
    assert _reaches_mmap(loaded["b"])


def test_writing_into_a_loaded_array_leaves_the_archive_unchanged(archive):
    """Mapped storages are copy-on-write: the file never sees a write."""
    before_array = np.arange(16, dtype="<i4")
    loaded = _round_trip(archive, before_array)
    before = archive.read_bytes()
    loaded[:] = -7
    assert (loaded == -7).all()
    assert archive.read_bytes() == before
    fresh = PackageImporter(archive).load_pickle("data", "arrays.pkl")
    assert fresh.tolist() == before_array.tolist()


@pytest.mark.parametrize("source", ["bytes-io", "directory", "deflated"])
def test_archives_that_cannot_be_mapped_load_writable_copies(archive, tmp_path, source):
    """In-memory, unzipped and compressed archives read the bytes into memory."""
    base = np.arange(10, dtype="<i2")
    _round_trip(archive, {"base": base, "view": base[5:]})
    if source == "bytes-io":
        target = io.BytesIO(archive.read_bytes())
    elif source == "directory":
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(tmp_path / "unzipped")
        target = tmp_path / "unzipped" / "package"
    else:
        target = tmp_path / "deflated.pt"
        _rewrite(archive, target, compression=zipfile.ZIP_DEFLATED)
    loaded = PackageImporter(target).load_pickle("data", "arrays.pkl")
    assert loaded["view"].tolist() == [5, 6, 7, 8, 9]
    assert not _reaches_mmap(loaded["base"])
    loaded["base"][5] = 99
    assert loaded["view"][0] == 99


def _rewrite(source, target, *, compression=zipfile.ZIP_STORED, replace=None):
    """Copy a ZIP with plain zipfile, replacing the bytes of some records."""
    replace = replace or {}
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            data = replace.get(info.filename, old.read(info))
            new.writestr(info.filename, data, compress_type=compression)


def test_a_record_of_the_wrong_size_raises_archive_format_error(archive, tmp_path):
    """A storage record shorter than its pickle says is a format error naming it."""
    _round_trip(archive, np.arange(4, dtype="<i4"))
    broken = tmp_path / "broken.pt"
    _rewrite(archive, broken, replace={"package/.data/0.storage": b"\0" * 12})
    with pytest.raises(ArchiveFormatError) as info:  # altered: skip the manifest
        PackageImporter(broken, verify=False).load_pickle("data", "arrays.pkl")
    assert info.value.record == ".data/0.storage"
    assert "holds 12 bytes" in str(info.value)
    assert "16 elements of uint8" in str(info.value)


def test_object_arrays_and_subclasses_are_pickled_by_value(archive):
    """Object arrays and ndarray subclasses keep plain pickling: no record."""
    objects = {
        "objects": np.array([1, "two", None, (3,)], dtype=object),
        "record": np.rec.array([(1, 2.0)], dtype=[("a", "<i4"), ("b", "<f8")]),
        "masked": np.ma.masked_array([1, 2, 3], mask=[0, 1, 0]),
    }
    with PackageExporter(archive) as exporter:
        exporter.extern("numpy.**")
        exporter.extern("numpy")
        exporter.save_pickle("data", "arrays.pkl", objects)
    loaded = PackageImporter(archive).load_pickle("data", "arrays.pkl")
    assert _storages(archive) == {}
    assert loaded["objects"].tolist() == [1, "two", None, (3,)]
    assert type(loaded["record"]) is np.recarray
    assert loaded["record"].b.tolist() == [2.0]
    assert type(loaded["masked"]) is np.ma.MaskedArray
    assert loaded["masked"].mask.tolist() == [False, True, False]


POINT_SOURCE = """
class Point:
    def __init__(self, x):
        self.x = x
"""


def test_object_array_of_packaged_classes_sits_next_to_storage_arrays(
    src_tree, archive
):
    """Object arrays pickle their items normally, even beside storage arrays."""
    src_tree({"npkg/__init__.py": POINT_SOURCE})
    import npkg

    objects = {
        "points": np.array([npkg.Point(1), npkg.Point(2)], dtype=object),
        "weights": np.arange(3.0),
    }
    with PackageExporter(archive) as exporter:
        exporter.intern("npkg")
        exporter.extern("numpy.**")
        exporter.extern("numpy")
        exporter.save_pickle("data", "arrays.pkl", objects)
    loaded = PackageImporter(archive).load_pickle("data", "arrays.pkl")
    assert [p.x for p in loaded["points"]] == [1, 2]
    assert type(loaded["points"][0]).__module__.endswith("npkg")
    assert loaded["weights"].tolist() == [0.0, 1.0, 2.0]


def test_object_array_of_re_exported_classes_keeps_their_unmangled_names(
    src_tree, archive, tmp_path
):
    """Items of an object array are seen by the first pass, so renames still work."""
    src_tree({"npkg/__init__.py": POINT_SOURCE})
    import npkg

    first = tmp_path / "first" / "package.pt"
    first.parent.mkdir()
    with PackageExporter(first) as exporter:
        exporter.intern("npkg")
        exporter.save_pickle("data", "point.pkl", npkg.Point(5))
    importer = PackageImporter(first)
    point = importer.load_pickle("data", "point.pkl")
    objects = {"points": np.array([point], dtype=object), "weights": np.arange(2.0)}
    with PackageExporter(archive, importer=(importer, sys_importer)) as exporter:
        exporter.intern("npkg")
        exporter.extern("numpy.**")
        exporter.extern("numpy")
        exporter.save_pickle("data", "arrays.pkl", objects)
    loaded = PackageImporter(archive).load_pickle("data", "arrays.pkl")
    assert loaded["points"][0].x == 5
    assert loaded["weights"].tolist() == [0.0, 1.0]


def test_the_pickle_names_only_numpy_globals(archive):
    """Loading needs numpy.ndarray, numpy.dtype and numpy.uint8: nothing of ours."""
    _round_trip(archive, {"a": np.arange(3), "b": np.zeros(2, ">f4")})
    with zipfile.ZipFile(archive) as zf:
        data = zf.read("package/data/arrays.pkl")
    names = {arg for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"}
    assert names == {"numpy ndarray", "numpy dtype", "numpy uint8"}


def test_archives_with_arrays_are_byte_identical_across_exports(tmp_path):
    """Memory addresses decide sharing, never the bytes written."""
    objects = {"a": np.arange(6.0).reshape(2, 3), "b": np.ones(3, "<i2")}
    objects["view"] = objects["a"][:, 1]
    paths = [tmp_path / name / "package.pt" for name in ("first", "second")]
    for path in paths:
        path.parent.mkdir()
        with PackageExporter(path) as exporter:
            exporter.extern("numpy")
            exporter.save_pickle("data", "arrays.pkl", dict(objects))
    assert paths[0].read_bytes() == paths[1].read_bytes()


# -- torch globals without torch (the stand-ins, called directly) ---------------------


def test_torch_stand_ins_map_storage_classes_and_dtypes_to_numpy_types():
    """Legacy storage classes and dtypes become NumPy scalar types."""
    assert _numpy.torch_global("torch", "FloatStorage") is np.float32
    assert _numpy.torch_global("torch", "BoolStorage") is np.bool_
    assert _numpy.torch_global("torch", "long") is np.int64
    assert _numpy.torch_global("torch", "uint16") is np.uint16
    assert _numpy.torch_global("torch.storage", "UntypedStorage") is np.uint8


@pytest.mark.parametrize(
    ("module", "name", "message"),
    [
        ("torch", "bfloat16", "dtype torch.bfloat16 (torch.bfloat16), which has no"),
        ("torch", "BFloat16Storage", "dtype torch.bfloat16 (torch.BFloat16Storage)"),
        ("torch", "float8_e4m3fn", "dtype torch.float8_e4m3fn"),
        ("torch", "QInt8Storage", "dtype torch.qint8"),
        ("torch.nn.modules.linear", "Linear", "needs torch.nn.modules.linear.Linear"),
    ],
)
def test_torch_globals_without_numpy_equivalent_say_to_install_torch(
    module, name, message
):
    """A torch global NumPy cannot stand in for names itself and the remedy."""
    with pytest.raises(LookupError) as info:
        _numpy.torch_global(module, name)
    assert message in str(info.value)
    assert str(info.value).endswith("install torch to load it")


def test_tensor_rebuild_stand_ins_give_arrays_with_torch_strides():
    """Element offsets and strides become byte ones; conj and neg flags apply."""
    storage = np.arange(6, dtype=np.float32)
    rebuild = _numpy.torch_global("torch._utils", "_rebuild_tensor_v2")
    array = rebuild(storage, 1, (2, 2), (1, 2), False, None)
    assert array.tolist() == [[1.0, 3.0], [2.0, 4.0]]
    assert np.shares_memory(array, storage)
    complex_storage = np.array([1 + 2j], dtype=np.complex64)
    conj = rebuild(complex_storage, 0, (1,), (1,), False, None, {"conj": True})
    assert conj.tolist() == [1 - 2j]
    neg = rebuild(storage, 0, (2,), (1,), False, None, {"neg": True})
    assert neg.tolist() == [-0.0, -1.0]
    v3 = _numpy.torch_global("torch._utils", "_rebuild_tensor_v3")
    raw = np.arange(4, dtype=np.uint8)
    assert v3(raw, 1, (1,), (1,), False, None, np.uint16).tolist() == [0x0302]
    with pytest.raises(ValueError, match="does not fit its storage"):
        rebuild(storage, 5, (2,), (1,), False, None)


# -- fresh interpreters where torch cannot be imported ----------------------------


LOAD_AS_NPZ = """
import sys
import numpy as np
from hermetic import PackageImporter
loaded = PackageImporter({archive!r}).load_pickle({package!r}, {resource!r})
np.savez({out!r}, **loaded)
print("torch" in sys.modules, {checks})
"""


def _load_without_torch(archive, out, checks="", package="data", resource="arrays.pkl"):
    code = block_imports_prelude("torch") + LOAD_AS_NPZ.format(
        archive=str(archive),
        package=package,
        resource=resource,
        out=str(out),
        checks=checks or "None",
    )
    printed = run_python(code).split()
    assert printed[0] == "False"  # torch was never imported
    with np.load(out) as npz:
        return {name: npz[name] for name in npz.files}, printed[1:]


def test_numpy_only_process_loads_a_hermetic_archive_of_arrays(archive, tmp_path):
    """Arrays load where torch cannot be imported, views still sharing memory."""
    objects = {name: LAYOUTS[name] for name in ("c-order", "fortran", "big-endian")}
    objects["view"] = BASE[1:, 2]
    objects["words"] = np.array(["ab", "cde"])
    _round_trip(archive, objects)
    loaded, printed = _load_without_torch(
        archive,
        tmp_path / "out.npz",
        checks='np.shares_memory(loaded["view"], loaded["c-order"])',
    )
    assert printed == ["True"]
    for name, array in objects.items():
        assert loaded[name].dtype == array.dtype
        assert loaded[name].tolist() == array.tolist()


LOAD_ERROR = """
from hermetic import PackageImporter, PickleLoadError
try:
    PackageImporter({archive!r}, verify=False).load_pickle("data", {resource!r})
except PickleLoadError as exc:
    print(exc.record)
    print(exc.global_name)
    print(exc)
"""


def _load_error_without_torch(archive, resource):
    """Return (record, global name, message) of the PickleLoadError a load raises."""
    code = block_imports_prelude("torch") + LOAD_ERROR.format(
        archive=str(archive), resource=resource
    )
    record, global_name, message = run_python(code).strip().split("\n", 2)
    return record, global_name, message


def _torch_state_dict(torch):
    weight = torch.arange(12, dtype=torch.float32).reshape(3, 4) / 3
    return {
        "weight": weight,
        "column": weight[:, 1],
        "transposed": weight.t(),
        "steps": torch.arange(-3, 3, dtype=torch.int64),
        "mask": torch.tensor([True, False, True]),
        "half": torch.tensor([0.5, -2.0], dtype=torch.float16),
        "complex": torch.tensor([1 + 2j, -3j], dtype=torch.complex64),
        "wide": torch.tensor([1, 65535], dtype=torch.uint16),
        "bias": torch.nn.Parameter(torch.tensor([0.25, -1.5])),
        "scalar": torch.tensor(4.0, dtype=torch.float64),
        "empty": torch.zeros(0, 2),
    }


@pytest.mark.torch
@TORCH_WARNS
@pytest.mark.parametrize("writer", ["torch.package", "hermetic"])
def test_numpy_only_process_loads_torch_tensors_as_arrays(archive, tmp_path, writer):
    """A state dict written by real torch.package (or hermetic) loads as arrays."""
    torch = pytest.importorskip("torch", reason="needs torch to write the archive")
    exporter_class = (
        torch.package.PackageExporter if writer == "torch.package" else PackageExporter
    )
    state = _torch_state_dict(torch)
    with exporter_class(str(archive)) as exporter:
        exporter.save_pickle("data", "arrays.pkl", state)
    loaded, printed = _load_without_torch(
        archive,
        tmp_path / "out.npz",
        checks='np.shares_memory(loaded["column"], loaded["weight"]), '
        'type(loaded["bias"]).__name__',
    )
    assert printed == ["True", "ndarray"]
    for name, tensor in state.items():
        expected = tensor.detach().numpy()
        assert loaded[name].dtype == expected.dtype, name
        assert loaded[name].shape == expected.shape, name
        assert loaded[name].tobytes() == expected.tobytes(), name


@pytest.mark.torch
@TORCH_WARNS
@pytest.mark.parametrize(
    ("dtype", "named"),
    [("bfloat16", "torch.bfloat16"), ("float8_e5m2", "torch.float8_e5m2")],
)
def test_numpy_only_process_names_a_tensor_dtype_numpy_lacks(archive, dtype, named):
    """A bfloat16 (or float8) tensor gives PickleLoadError naming dtype and record."""
    torch = pytest.importorskip("torch", reason="needs torch to write the archive")
    tensor = torch.ones(3, dtype=getattr(torch, dtype))
    with torch.package.PackageExporter(str(archive)) as exporter:
        exporter.save_pickle("data", "t.pkl", {"t": tensor})
    record, _, message = _load_error_without_torch(archive, "t.pkl")
    assert record == "data/t.pkl"
    assert f"dtype {named}" in message
    assert "install torch to load it" in message


def test_numpy_only_process_names_other_torch_globals(archive):
    """A torch global with no stand-in fails naming it and asking for torch."""
    with PackageExporter(archive) as exporter:
        exporter.save_binary("data", "placeholder.txt", b"")
    with zipfile.ZipFile(archive, "a") as zf:  # a pickle of torch.nn.Module()
        zf.writestr("package/data/module.pkl", b"\x80\x03ctorch.nn\nModule\n)\x81.")
    _, global_name, message = _load_error_without_torch(archive, "module.pkl")
    assert global_name == "torch.nn.Module"
    assert "needs torch.nn.Module, which only torch provides" in message
    assert message.endswith("install torch to load it")
