"""Property-based fuzzing of the archive reader, the pickle scanner and safe loading.

Properties: any bytes, and any mutation of real pickles and archives, make the pickle
scanner return a result (never raise), and make the archive reader, ``scan`` and the
safe loader either succeed or raise a HermeticError; and where CPython's own loader
(with harmless stand-ins for every global) can load a mutated pickle, the scanner
lists every global that loader asked for, so scanner and loader cannot disagree.

The ``ci`` profile (default) runs a bounded number of examples in ``make test``; the
``thorough`` profile (``HYPOTHESIS_PROFILE=thorough``) many more, and
``fuzz_campaign.py`` (``make fuzz``) repeats these properties until a time budget is
spent.
"""

from __future__ import annotations

import collections
import datetime
import inspect
import io
import os
import pickle
import tempfile
import zipfile
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hermetic
from hermetic import HermeticError, scan
from hermetic._archive_reader import ArchiveReader
from hermetic._archive_writer import ArchiveWriter
from hermetic._pickle_scan import scan_pickle
from security.corpus import CASES, archive_with

_COMMON = {
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
    "deadline": None,
    "print_blob": True,
}
settings.register_profile("ci", max_examples=60, **_COMMON)
settings.register_profile("thorough", max_examples=2_000, **_COMMON)
PROFILE = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
if PROFILE.max_examples > 10_000:  # a campaign sets its own batch size
    PROFILE = settings.get_profile("thorough")


def _seed_pickles() -> list[bytes]:
    objects = [
        {
            "a": [1, 2.5, "x", b"y", None, True],
            "t": (1, (2,)),
            "s": {1},
            "f": frozenset(),
        },
        collections.OrderedDict(weight=[0.5] * 10),
        [datetime.date(2020, 1, 2), 1 + 2j, 2**100, bytearray(b"ba")],
        {"nested": [[[["deep"]]]], "shared": ["x"] * 5},
    ]
    seeds = [pickle.dumps(obj, protocol=p) for obj in objects for p in range(6)]
    seeds += [
        b"cos\nsystem\n(S'echo'\ntR.",
        b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00N.",
    ]
    for case in CASES:
        if case.family in ("payload", "bypass", "malformed", "storage"):
            data = case.archive("/nonexistent/marker")
            with ArchiveReader(io.BytesIO(data)) as reader:
                if (
                    reader.has_record("res/data.pkl")
                    and reader.record_size("res/data.pkl") < 1 << 16
                ):
                    seeds.append(reader.read("res/data.pkl"))
    return seeds


def _seed_archives() -> list[bytes]:
    written = io.BytesIO()
    with ArchiveWriter(written) as writer:
        writer.write_record(".data/extern_modules", b"collections\n")
        writer.write_record("res/data.pkl", pickle.dumps({"k": [1, 2]}, protocol=3))
        writer.write_record("res/a.txt", b"hello")
        writer.write_record("pkg/__init__.py", b"import os\nX = 1\n")
        writer.write_record(".data/0.storage", bytes(range(64)))
    deflated = io.BytesIO()
    with zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("p/.data/version", "6\n")
        zf.writestr("p/.data/extern_modules", "")
        zf.writestr("p/res/", "")
        zf.writestr("p/res/data.pkl", pickle.dumps([1, "two"] * 20))
    benign = [c.archive("/nonexistent/marker") for c in CASES if c.family == "control"]
    return [written.getvalue(), deflated.getvalue(), *benign]


SEED_PICKLES = _seed_pickles()
SEED_ARCHIVES = _seed_archives()


def _mutation() -> st.SearchStrategy[tuple[str, int, int, bytes]]:
    return st.tuples(
        st.sampled_from(["flip", "set", "insert", "delete", "truncate", "duplicate"]),
        st.integers(0, 1 << 16),
        st.integers(0, 255),
        st.binary(max_size=16),
    )


def mutate(data: bytes, mutations: list[tuple[str, int, int, bytes]]) -> bytes:
    """Apply byte-level *mutations* to *data* (positions wrap around its length)."""
    out = bytearray(data)
    for kind, position, value, chunk in mutations:
        index = position % (len(out) + 1)
        if kind == "flip" and index < len(out):
            out[index] ^= 1 << (value % 8)
        elif kind == "set" and index < len(out):
            out[index] = value
        elif kind == "insert":
            out[index:index] = chunk
        elif kind == "delete":
            del out[index : index + value % 32 + 1]
        elif kind == "truncate":
            del out[index:]
        elif kind == "duplicate":
            out[index:index] = out[index : index + value % 64 + 1]
    return bytes(out)


mutated_pickles = st.builds(
    mutate, st.sampled_from(SEED_PICKLES), st.lists(_mutation(), min_size=1, max_size=6)
)
mutated_archives = st.builds(
    mutate,
    st.sampled_from(SEED_ARCHIVES),
    st.lists(_mutation(), min_size=1, max_size=6),
)


# -- the pickle scanner ----------------------------------------------------------------


def check_scan_pickle(data: bytes) -> None:
    """The scanner returns for any bytes, with consistent flags."""
    result = scan_pickle(data, "fuzz.pkl", max_opcodes=200_000)
    assert result.opcodes <= 200_000
    if result.malformed:
        assert any(f.code == "malformed" for f in result.findings)


@PROFILE
@given(st.binary(max_size=2048))
def test_scanner_takes_any_bytes(data):
    """scan_pickle never raises on arbitrary bytes."""
    check_scan_pickle(data)


@PROFILE
@given(mutated_pickles)
def test_scanner_takes_mutated_pickles(data):
    """scan_pickle never raises on mutations of real and hostile pickles."""
    check_scan_pickle(data)


class _Standin:
    """What the reference loader gets for every global: takes anything, does nothing."""

    def __new__(cls, *args: object, **kwargs: object) -> _Standin:
        return object.__new__(cls)

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __call__(self, *args: object, **kwargs: object) -> _Standin:
        return _Standin()

    def __setstate__(self, state: object) -> None:
        pass

    def append(self, item: object) -> None:
        pass

    def extend(self, items: object) -> None:
        pass

    def add(self, item: object) -> None:
        pass

    def __setitem__(self, key: object, value: object) -> None:
        pass


class _RecordingUnpickler(pickle._Unpickler):  # type: ignore[name-defined,misc]
    """CPython's pure-Python loader, with every global replaced by a stand-in."""

    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data))
        self.asked: set[tuple[str, str]] = set()

    def find_class(self, module: str, name: str) -> object:
        self.asked.add((module, name))
        return _Standin

    def persistent_load(self, pid: object) -> object:
        return _Standin()


def check_scanner_agrees_with_loader(data: bytes) -> None:
    """Where the reference loader loads *data*, the scanner lists all it asked for."""
    if b"\x96" in data:
        return  # BYTEARRAY8: the reference loader would allocate its declared length
    loader = _RecordingUnpickler(data)
    try:
        loader.load()
    except Exception:
        return
    result = scan_pickle(data)
    assert result.complete, result.findings
    seen = {(g.module, g.name) for g in result.globals if not g.context}
    assert loader.asked <= seen


@PROFILE
@given(mutated_pickles)
def test_scanner_sees_what_the_loader_loads(data):
    """No mutation makes the loader import a global the scanner did not list."""
    check_scanner_agrees_with_loader(data)


# -- the archive reader and scan -------------------------------------------------------


def check_archive(data: bytes) -> None:
    """Reader and scan either work or raise HermeticError, from memory and from disk."""
    _read_everything(lambda: ArchiveReader(io.BytesIO(data)))
    _scan(lambda: scan(io.BytesIO(data)))
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "fuzz.pt")
        with open(path, "wb") as file:
            file.write(data)
        _read_everything(lambda: ArchiveReader(path))
        _scan(lambda: scan(path))


def _read_everything(open_reader: Callable[[], ArchiveReader]) -> None:
    try:
        reader = open_reader()
    except HermeticError:
        return
    with reader:
        for name in reader.record_names():
            _read_record(reader, name)


def _read_record(reader: ArchiveReader, name: str) -> None:
    try:
        reader.record_info(name)
        reader.read_prefix(name, 64)
        if reader.record_size(name) <= 1 << 20:
            reader.read(name)
    except HermeticError:
        pass


def _scan(run: Callable[[], object]) -> None:
    try:
        report = run()
    except HermeticError:
        return
    assert isinstance(report, hermetic.Report)
    report.to_dict()


@PROFILE
@given(st.binary(max_size=4096))
def test_reader_takes_any_bytes(data):
    """Arbitrary bytes open as an archive or raise HermeticError."""
    check_archive(data)


@PROFILE
@given(mutated_archives)
def test_reader_and_scan_take_mutated_archives(data):
    """Mutated real archives read, scan, or raise HermeticError: nothing else."""
    check_archive(data)


# -- safe loading (when this build has it) ---------------------------------------------

HAS_SAFE = "safe" in inspect.signature(hermetic.PackageImporter).parameters


def check_safe_load(data: bytes) -> None:
    """A safe load of any pickle returns or raises HermeticError."""
    if not HAS_SAFE or b"\x96" in data:
        return  # BYTEARRAY8 lengths are allocated before reading (see the corpus)
    archive = io.BytesIO(archive_with(pickle=data, externs=b"collections\n"))
    try:
        importer = hermetic.PackageImporter(archive, safe=True)  # type: ignore[call-arg]
        importer.load_pickle("res", "data.pkl")
    except HermeticError:
        pass


@PROFILE
@given(mutated_pickles)
def test_safe_load_takes_mutated_pickles(data):
    """Safe loading refuses mutated pickles with typed errors only."""
    check_safe_load(data)


#: What ``fuzz_campaign.py`` runs: name -> (property, strategy of its one argument).
TARGETS: dict[str, tuple[Callable[[bytes], None], st.SearchStrategy[bytes]]] = {
    "scan_pickle/any": (check_scan_pickle, st.binary(max_size=2048)),
    "scan_pickle/mutated": (check_scan_pickle, mutated_pickles),
    "scan_pickle/differential": (check_scanner_agrees_with_loader, mutated_pickles),
    "reader+scan/any": (check_archive, st.binary(max_size=4096)),
    "reader+scan/mutated": (check_archive, mutated_archives),
    "safe_load/mutated": (check_safe_load, mutated_pickles),
}
