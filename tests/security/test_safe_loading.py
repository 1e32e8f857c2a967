"""Safe loading: data only, no packaged code, no global outside the allowlist.

Each hostile pickle here would create a marker file if anything ran it; every test
checks that the marker never appears under ``safe=True``. The same bytes do run
under torch.package (and hermetic's normal mode), which is what safe mode is for.
"""

from __future__ import annotations

import collections
import os
import pickle
import struct
import sys

import pytest

import hermetic
from helpers import block_imports_prelude, run_python
from hermetic import (
    PackageExporter,
    PackageImporter,
    PickleLoadError,
    UnsafeContentError,
)

# -- building hostile pickles ----------------------------------------------------------


def text(value: str) -> bytes:
    """The opcode pushing *value* (BINUNICODE), without memoizing it."""
    data = value.encode("utf-8")
    return b"X" + struct.pack("<I", len(data)) + data


def global_op(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def call(module: str, name: str, *args: str) -> bytes:
    """A protocol 3 pickle of ``module.name(*args)`` (strings only)."""
    body = global_op(module, name) + b"(" + b"".join(map(text, args)) + b"tR"
    return b"\x80\x03" + body + b"."


def stack_call(module: str, name: str, *args: str) -> bytes:
    """A protocol 4 pickle of the same call, naming the global with STACK_GLOBAL."""
    body = text(module) + text(name) + b"\x93(" + b"".join(map(text, args)) + b"tR"
    return b"\x80\x04" + body + b"."


def marker_code(marker) -> str:
    return f"__import__('pathlib').Path({str(marker)!r}).write_text('ran')"


def save(archive, records: dict[str, bytes]):
    """Write *records* (``name.pkl`` → bytes) into package ``m`` of a new archive."""
    with PackageExporter(archive) as exporter:
        for name, data in records.items():
            exporter.save_binary("m", name, data)
    return archive


def hostile_pickles(marker) -> dict[str, bytes]:
    """Pickles that run code (or would) if their globals resolved normally."""
    code = marker_code(marker)
    shell = f"touch {marker}"
    return {
        "exec.pkl": call("builtins", "exec", code),
        "eval.pkl": call("builtins", "eval", code),
        "stack_exec.pkl": stack_call("builtins", "exec", code),
        "os_system.pkl": call("os", "system", shell),
        "posix_system.pkl": call("posix", "system", shell),
        "subprocess.pkl": call("subprocess", "getoutput", shell),
        "import.pkl": call("builtins", "__import__", "os"),
        "getattr.pkl": call("builtins", "getattr", "x", "upper"),
        "attribute_walk.pkl": stack_call(
            "builtins", "print.__class__.__base__.__subclasses__"
        ),
        "importlib.pkl": call("importlib", "import_module", "os"),
        "runpy.pkl": call("runpy", "run_path", str(marker)),
        "codeop.pkl": call("codeop", "compile_command", code),
        "dotted_allowed.pkl": stack_call("collections", "OrderedDict.fromkeys", "ab"),
    }


@pytest.fixture
def marker(tmp_path):
    """Where a payload that ran would leave its trace."""
    return tmp_path / "marker"


# -- the "Done when" -----------------------------------------------------------


def test_pickle_running_code_is_refused_and_nothing_runs(archive, marker):
    """builtins.exec in a pickle: safe loading names it and its record, runs nothing."""
    save(archive, {"evil.pkl": call("builtins", "exec", marker_code(marker))})
    importer = PackageImporter(archive, safe=True)
    with pytest.raises(UnsafeContentError) as info:
        importer.load_pickle("m", "evil.pkl")
    assert info.value.global_name == "builtins.exec"
    assert info.value.record == "m/evil.pkl"
    assert info.value.archive == str(archive)
    assert "not on the safe-loading allowlist" in str(info.value)
    assert not marker.exists()


@pytest.mark.torch
def test_the_same_pickle_runs_code_under_torch_package(archive, marker):
    """The refused bytes do run under torch.package: the marker file appears."""
    package = pytest.importorskip("torch.package", reason="compares with torch")
    save(archive, {"evil.pkl": call("builtins", "exec", marker_code(marker))})
    package.PackageImporter(str(archive)).load_pickle("m", "evil.pkl")
    assert marker.read_text() == "ran"


def test_normal_mode_runs_the_same_pickle_by_design(archive, marker):
    """Without safe=True hermetic resolves builtins like torch.package does."""
    save(archive, {"evil.pkl": call("builtins", "exec", marker_code(marker))})
    PackageImporter(archive).load_pickle("m", "evil.pkl")
    assert marker.read_text() == "ran"


@pytest.mark.parametrize(
    ("name", "global_name"),
    [
        ("exec.pkl", "builtins.exec"),
        ("eval.pkl", "builtins.eval"),
        ("stack_exec.pkl", "builtins.exec"),
        ("os_system.pkl", "os.system"),
        ("posix_system.pkl", "posix.system"),
        ("subprocess.pkl", "subprocess.getoutput"),
        ("import.pkl", "builtins.__import__"),
        ("getattr.pkl", "builtins.getattr"),
        ("attribute_walk.pkl", "builtins.print.__class__.__base__.__subclasses__"),
        ("importlib.pkl", "importlib.import_module"),
        ("runpy.pkl", "runpy.run_path"),
        ("codeop.pkl", "codeop.compile_command"),
        ("dotted_allowed.pkl", "collections.OrderedDict.fromkeys"),
    ],
)
def test_each_code_running_global_is_refused_by_name(
    archive, marker, name, global_name
):
    """Every global outside the allowlist is refused, named, before anything runs."""
    save(archive, hostile_pickles(marker))
    with pytest.raises(UnsafeContentError) as info:
        PackageImporter(archive, safe=True).load_pickle("m", name)
    assert info.value.global_name == global_name
    assert info.value.record == f"m/{name}"
    assert not marker.exists()


# -- gadgets beyond globals ------------------------------------------------------------


class _Gadget:
    """An object whose pickle calls os.system, the classic __reduce__ gadget."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_reduce_gadget_is_refused(archive, marker):
    """A __reduce__ returning os.system pickles as posix.system: refused."""
    data = pickle.dumps(_Gadget(f"touch {marker}"), protocol=3)
    save(archive, {"gadget.pkl": data})
    with pytest.raises(UnsafeContentError) as info:
        PackageImporter(archive, safe=True).load_pickle("m", "gadget.pkl")
    assert info.value.global_name == f"{os.system.__module__}.system"
    assert not marker.exists()


def test_setattr_gadget_on_an_allowed_global_is_refused(archive):
    """BUILD with slot state on a global (setattr on a function) is refused."""
    slots = b"}" + text("__defaults__") + b"(" + text("x") + b"ts"
    state = b"N" + slots + b"\x86b"  # BUILD (None, {"__defaults__": ("x",)})
    data = b"\x80\x03" + global_op("builtins", "bytearray") + state + b"."
    save(archive, {"setattr.pkl": data})
    with pytest.raises(UnsafeContentError, match="would change the global") as info:
        PackageImporter(archive, safe=True).load_pickle("m", "setattr.pkl")
    assert info.value.opcode == "BUILD"


def test_dunder_attributes_cannot_be_set_on_loaded_objects(archive):
    """BUILD may give an OrderedDict plain attributes, never __class__."""
    build = b"}" + text("__class__") + global_op("builtins", "set") + b"sb"
    data = b"\x80\x03" + global_op("collections", "OrderedDict") + b")R" + build + b"."
    save(archive, {"dunder.pkl": data})
    with pytest.raises(UnsafeContentError, match="plain attribute names"):
        PackageImporter(archive, safe=True).load_pickle("m", "dunder.pkl")


def test_setitem_on_a_global_mapping_is_refused(archive, src_tree):
    """Even a caller-allowed module-level dict cannot be filled by the pickle."""
    src_tree({"hostreg.py": "REGISTRY = {}\n"})
    import hostreg

    data = (
        b"\x80\x03" + global_op("hostreg", "REGISTRY") + text("k") + text("v") + b"s."
    )
    save(archive, {"setitem.pkl": data})
    importer = PackageImporter(archive, safe=True, allow=["hostreg.REGISTRY"])
    with pytest.raises(UnsafeContentError, match="would change the global"):
        importer.load_pickle("m", "setitem.pkl")
    assert hostreg.REGISTRY == {}


@pytest.mark.parametrize(
    ("data", "opcode"),
    [
        (b"(" + text("x") + b"ios\nsystem\n.", "INST"),
        (b"\x80\x02\x82\x01.", "EXT1"),
        (b"\x80\x02(" + global_op("builtins", "set") + b"o.", "OBJ"),
    ],
    ids=["INST", "EXT1", "OBJ"],
)
def test_instance_and_extension_opcodes_are_refused(archive, data, opcode):
    """INST, OBJ and EXT1/2/4 never run in a safe load."""
    save(archive, {"op.pkl": data})
    with pytest.raises(UnsafeContentError) as info:
        PackageImporter(archive, safe=True).load_pickle("m", "op.pkl")
    assert info.value.opcode == opcode


def test_reduce_package_persistent_ids_are_refused(archive):
    """A reduce_package id would call a packaged loader: refused."""
    pid = (
        b"(" + text("reduce_package") + b"K\x01" + global_op("builtins", "set") + b")t"
    )
    save(archive, {"pid.pkl": b"\x80\x03" + pid + b"Q."})
    with pytest.raises(UnsafeContentError, match="reduce_package"):
        PackageImporter(archive, safe=True).load_pickle("m", "pid.pkl")


def test_storage_ids_must_name_a_storage_type(archive):
    """A storage id whose type is not a storage class is refused."""
    storage = global_op("builtins", "set") + b"K\x00" + text("cpu") + b"K\x04"
    pid = b"(" + text("storage") + storage + b"t"
    save(archive, {"pid.pkl": b"\x80\x03" + pid + b"Q."})
    with pytest.raises(UnsafeContentError, match="not a storage type"):
        PackageImporter(archive, safe=True).load_pickle("m", "pid.pkl")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (pickle.dumps([1, 2, 3], protocol=3)[:-3], "truncated|malformed"),
        (pickle.dumps([1, 2, 3], protocol=3) + b"junk", "bytes follow the STOP"),
        (b"\x80\x03\xff.", "malformed pickle"),
    ],
    ids=["truncated", "trailing", "unknown-opcode"],
)
def test_malformed_pickles_raise_pickle_load_error(archive, data, message):
    """Truncated streams, trailing bytes and unknown opcodes are typed errors."""
    save(archive, {"bad.pkl": data})
    with pytest.raises(PickleLoadError, match=message):
        PackageImporter(archive, safe=True).load_pickle("m", "bad.pkl")


# -- packaged code never runs ----------------------------------------------------------


@pytest.fixture
def packaged_class_archive(src_tree, archive, tmp_path):
    """An archive interning a class whose module writes a marker when imported."""
    marker = tmp_path / "imported"
    src_tree(
        {
            "pkgsafe/__init__.py": "",
            "pkgsafe/point.py": f"""
                import pathlib
                pathlib.Path({str(marker)!r}).write_text("imported")
                class Point:
                    def __init__(self, x):
                        self.x = x
            """,
        }
    )
    from pkgsafe.point import Point

    marker.unlink()
    with PackageExporter(archive) as exporter:
        exporter.intern("pkgsafe.**")
        exporter.save_pickle("m", "point.pkl", Point(3))
    return archive, marker


def test_a_packaged_class_is_refused_naming_it(packaged_class_archive):
    """A class of the package's own code is refused; its module never runs."""
    archive, marker = packaged_class_archive
    importer = PackageImporter(archive, safe=True)
    with pytest.raises(UnsafeContentError) as info:
        importer.load_pickle("m", "point.pkl")
    assert info.value.global_name == "pkgsafe.point.Point"
    assert "the package's own code defines" in str(info.value)
    assert not marker.exists()
    assert list(importer.modules) == ["torch_package_importer"]  # nothing imported
    assert not any(name.startswith(f"{importer.id()}.") for name in sys.modules)


def test_import_module_on_a_safe_importer_is_refused(packaged_class_archive):
    """import_module never runs packaged source in safe mode."""
    archive, marker = packaged_class_archive
    with pytest.raises(UnsafeContentError, match="never imports modules") as info:
        PackageImporter(archive, safe=True).import_module("pkgsafe.point")
    assert info.value.global_name == "pkgsafe.point"
    assert not marker.exists()


def test_normal_mode_imports_the_packaged_class(packaged_class_archive):
    """The same archive loads normally (running its code) without safe=True."""
    archive, marker = packaged_class_archive
    assert PackageImporter(archive).load_pickle("m", "point.pkl").x == 3
    assert marker.read_text() == "imported"


# -- names the caller adds -------------------------------------------------------------


@pytest.fixture
def host_class_archive(src_tree, archive):
    src_tree(
        {
            "hostshapes.py": """
                import dataclasses
                @dataclasses.dataclass
                class Box:
                    width: int
                    label: str
            """
        }
    )
    from hostshapes import Box

    with PackageExporter(archive) as exporter:
        exporter.extern("hostshapes")
        exporter.save_pickle("m", "box.pkl", {"box": Box(2, "b")}, pickle_protocol=4)
    return archive, Box


def test_caller_added_names_load(host_class_archive):
    """allow=['module.qualname'] lets a host class through, built as pickled."""
    archive, box_class = host_class_archive
    importer = PackageImporter(archive, safe=True, allow=["hostshapes.Box"])
    assert importer.load_pickle("m", "box.pkl") == {"box": box_class(2, "b")}


def test_names_not_added_are_refused(host_class_archive):
    """The same pickle without allow= is refused, naming the class."""
    archive, _ = host_class_archive
    with pytest.raises(UnsafeContentError) as info:
        PackageImporter(archive, safe=True).load_pickle("m", "box.pkl")
    assert info.value.global_name == "hostshapes.Box"


@pytest.mark.parametrize(
    "name", ["builtins.eval", "os.system", "subprocess.run", "pickle.loads", "sys.exit"]
)
def test_names_that_run_code_cannot_be_added(archive, name):
    """allow= refuses names that run code, whatever the caller asks."""
    save(archive, {"x.pkl": pickle.dumps(1)})
    with pytest.raises(ValueError, match="refusing to allow"):
        PackageImporter(archive, safe=True, allow=[name])


@pytest.mark.parametrize("allow", [["noqualname"], ["a..b"], "hostshapes.Box"])
def test_malformed_allow_entries_are_refused(archive, allow):
    """allow= takes a list of dotted names."""
    save(archive, {"x.pkl": pickle.dumps(1)})
    with pytest.raises((ValueError, TypeError)):
        PackageImporter(archive, safe=True, allow=allow)


def test_allow_needs_safe(archive):
    """allow= without safe=True is a mistake, reported at once."""
    save(archive, {"x.pkl": pickle.dumps(1)})
    with pytest.raises(ValueError, match="safe=True"):
        PackageImporter(archive, allow=["hostshapes.Box"])


# -- benign data loads with identical values -------------------------------------------

PLAIN = {
    "ints": [1, -2, 3**70],
    "floats": (1.5, float("inf")),
    "text": "unicode ✓",
    "bytes": b"\x00\xff",
    "bytearray": bytearray(b"ab"),
    "set": {1, 2},
    "frozenset": frozenset({"a"}),
    "complex": 1 - 2j,
    "none": None,
    "bools": [True, False],
    "ordered": collections.OrderedDict(b=1, a=2),
    "nested": {"a": [{"b": ()}]},
}


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_plain_python_data_loads_identically(archive, protocol):
    """Containers, numbers, strings and dates load as pickle would load them."""
    import datetime
    import decimal

    value = dict(
        PLAIN,
        when=datetime.datetime(2024, 5, 6, 7, 8, tzinfo=datetime.timezone.utc),
        day=datetime.date(2024, 1, 1),
        span=datetime.timedelta(days=2, seconds=3),
        price=decimal.Decimal("1.10"),
    )
    save(archive, {"plain.pkl": pickle.dumps(value, protocol=protocol)})
    loaded = PackageImporter(archive, safe=True).load_pickle("m", "plain.pkl")
    assert loaded == value
    assert type(loaded["ordered"]) is collections.OrderedDict


@pytest.mark.torch
def test_state_dict_with_tensors_loads_safely(archive):
    """A model's state dict loads in safe mode with identical tensors and metadata."""
    torch = pytest.importorskip("torch", reason="tensors need torch")
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    state = model.state_dict()
    extra = {
        "bf16": torch.ones(3, dtype=torch.bfloat16),
        "f8": torch.ones(2, dtype=torch.float8_e4m3fn),
        "view": state["0.weight"][:, 1],
        "param": torch.nn.Parameter(torch.ones(2)),
        "size": torch.Size([2, 3]),
        "dtype": torch.float16,
    }
    with PackageExporter(archive) as exporter:
        exporter.save_pickle("model", "state.pkl", state)
        exporter.save_pickle("model", "extra.pkl", extra)
    importer = PackageImporter(archive, safe=True)
    loaded = importer.load_pickle("model", "state.pkl")
    assert list(loaded) == list(state)
    assert loaded._metadata == state._metadata
    for name, tensor in state.items():
        assert loaded[name].dtype == tensor.dtype
        assert torch.equal(loaded[name], tensor), name
    got = importer.load_pickle("model", "extra.pkl")
    for name in ("bf16", "view"):
        assert torch.equal(got[name], extra[name])
    assert torch.equal(got["f8"].float(), extra["f8"].float())
    assert type(got["param"]) is torch.nn.Parameter
    assert got["size"] == extra["size"]
    assert got["dtype"] is torch.float16
    fresh = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    fresh.load_state_dict(loaded)


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore:TypedStorage is deprecated")
def test_torch_written_state_dict_loads_safely(tmp_path):
    """An archive torch.package wrote loads in safe mode too."""
    torch = pytest.importorskip("torch", reason="torch writes the archive")
    package = pytest.importorskip(
        "torch.package", reason="needs torch==2.13.0 (hermetic[torch])"
    )

    path = tmp_path / "theirs.pt"
    state = torch.nn.Linear(2, 2).state_dict()
    with package.PackageExporter(str(path)) as exporter:
        exporter.save_pickle("model", "state.pkl", state)
    importer = PackageImporter(path, safe=True)
    assert importer.integrity == "unverified"
    loaded = importer.load_pickle("model", "state.pkl")
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def numpy_values(np):
    return {
        "f32": np.arange(6, dtype="<f4").reshape(2, 3),
        "big_endian": np.arange(4, dtype=">i4"),
        "strided": np.arange(10)[::3],
        "transposed": np.arange(6.0).reshape(2, 3).T,
        "empty": np.zeros((0, 3)),
        "bools": np.array([True, False]),
        "complex": np.array([1 + 2j]),
        "dates": np.array(["2024-01-01"], dtype="M8[D]"),
        "record": np.zeros(2, dtype=[("x", "<f4"), ("y", "<i2", (2,))]),
        "objects": np.array([1, "a", None], dtype=object),
        "scalar": np.float32(2.5),
        "dtype": np.dtype("<U3"),
    }


def assert_same_numpy(np, loaded, values):
    assert set(loaded) == set(values)
    for name, value in values.items():
        if isinstance(value, np.ndarray):
            assert loaded[name].dtype == value.dtype, name
            assert loaded[name].shape == value.shape, name
            if value.dtype.hasobject:
                assert loaded[name].tolist() == value.tolist(), name
            else:
                assert loaded[name].tobytes() == value.tobytes(), name
        else:
            assert loaded[name] == value, name


def test_numpy_arrays_load_safely(archive):
    """Arrays, scalars and dtypes load in safe mode with identical values."""
    np = pytest.importorskip("numpy", reason="arrays need NumPy")
    values = numpy_values(np)
    with PackageExporter(archive) as exporter:
        exporter.save_pickle("data", "arrays.pkl", values)
    loaded = PackageImporter(archive, safe=True).load_pickle("data", "arrays.pkl")
    assert_same_numpy(np, loaded, values)


def test_numpy_arrays_load_safely_without_torch(archive):
    """In a process where torch cannot be imported, safe loading needs only NumPy."""
    np = pytest.importorskip("numpy", reason="arrays need NumPy")
    values = {"w": np.arange(12, dtype="<f4").reshape(3, 4), "n": np.int64(7)}
    with PackageExporter(archive) as exporter:
        exporter.save_pickle("data", "arrays.pkl", values)
    code = block_imports_prelude("torch") + (
        "import sys\n"
        "from hermetic import PackageImporter\n"
        f"got = PackageImporter({str(archive)!r}, safe=True)"
        ".load_pickle('data', 'arrays.pkl')\n"
        "print(got['w'].sum(), got['n'], 'torch' in sys.modules)\n"
    )
    assert run_python(code).split() == ["66.0", "7", "False"]


def test_forged_numpy_dtype_flags_are_refused(archive):
    """A dtype whose pickled flags deny its Python-object field is refused.

    NumPy's own unpickling believes the flags: an array of such a dtype would read
    object pointers out of raw bytes.
    """
    np = pytest.importorskip("numpy", reason="dtypes need NumPy")
    honest = pickle.dumps(np.dtype([("a", "O"), ("b", "<i8")]), protocol=3)
    forged = honest.replace(b"K\x1btq", b"K\x00tq")
    assert forged != honest
    assert not pickle.loads(forged).hasobject  # what plain pickle would hand out
    save(archive, {"dtype.pkl": forged})
    with pytest.raises(UnsafeContentError, match="forged flags") as info:
        PackageImporter(archive, safe=True).load_pickle("m", "dtype.pkl")
    assert info.value.global_name == "numpy.dtype"


def test_arrays_never_read_objects_from_raw_bytes(archive):
    """numpy.ndarray over raw bytes with an object dtype is refused."""
    np = pytest.importorskip("numpy", reason="arrays need NumPy")
    args = pickle.dumps(((2,), np.dtype("O"), b"\0" * 16), protocol=3)[2:-1]
    data = b"\x80\x03" + global_op("numpy", "ndarray") + args + b"R."
    save(archive, {"objects.pkl": data})
    with pytest.raises(UnsafeContentError, match="Python objects out of raw bytes"):
        PackageImporter(archive, safe=True).load_pickle("m", "objects.pkl")


def test_repr_says_safe(archive):
    """A safe importer says so."""
    save(archive, {"x.pkl": pickle.dumps(1)})
    assert repr(PackageImporter(archive, safe=True)).endswith("(safe)>")
    assert hermetic.PackageImporter(archive).safe is False
