"""The opcode-level pickle scanner: what it resolves, what it flags, and its bounds."""

from __future__ import annotations

import collections
import datetime
import pickle
import struct
import time
import tracemalloc

import pytest

from hermetic._pickle_scan import looks_like_pickle, scan_pickle
from hermetic._scan_rules import Severity, rate_global, rate_module
from security.corpus import (
    BINPERSID,
    EMPTY_DICT,
    EMPTY_LIST,
    MARK,
    MEMOIZE,
    REDUCE,
    STACK_GLOBAL,
    TUPLE,
    binary,
    call,
    get,
    glob,
    integer,
    pickled,
    put,
    stack_global,
    storage_id,
    tensor,
    text,
)


class Point:
    """A plain class pickled by reference (``test_pickle_scan.Point``)."""

    def __init__(self, x=0, y=0):
        self.x, self.y = x, y


class Slotted:
    """A class with __slots__, pickled with slot state."""

    __slots__ = ("a",)

    def __init__(self):
        self.a = 1


class KeywordOnly:
    """Needs NEWOBJ_EX: keyword-only arguments to __new__."""

    def __new__(cls, *, size):
        obj = super().__new__(cls)
        obj.size = size
        return obj

    def __getnewargs_ex__(self):
        return (), {"size": self.size}


SAMPLE = {
    "ints": [0, 1, -1, 255, 65535, 2**31, -(2**40), 2**100],
    "floats": [0.5, float("inf")],
    "text": ["", "ascii", "ünï", "x" * 300],
    "bytes": [b"", b"\x00\xff", b"y" * 300, bytearray(b"ba")],
    "set": {1, 2},
    "frozen": frozenset({3}),
    "tuple": (1, (2, (3,))),
    "none": [None, True, False],
    "od": collections.OrderedDict(a=1),
    "when": datetime.date(2020, 1, 2),
    "point": Point(1, 2),
    "slotted": Slotted(),
    "complex": 1 + 2j,
}


def names(result):
    return {g.qualified_name for g in result.globals}


def finding_codes(result):
    return {f.code for f in result.findings}


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_real_pickles_scan_cleanly(protocol):
    """Pickles of every protocol parse to STOP with the globals they name."""
    sample = SAMPLE if protocol >= 2 else {**SAMPLE, "slotted": None}
    data = pickle.dumps(sample, protocol=protocol)
    result = scan_pickle(data, "x.pkl")
    assert result.complete
    assert not result.malformed
    assert {"collections.OrderedDict", "datetime.date"} <= names(result)
    assert any(n.endswith("test_pickle_scan.Point") for n in names(result))
    assert "malformed" not in finding_codes(result)
    assert result.opcodes > 10


def test_newobj_ex_and_slot_state_are_followed():
    """NEWOBJ_EX calls its class; BUILD of slot state on an instance is no finding."""
    data = pickle.dumps([KeywordOnly(size=3), Slotted()], protocol=4)
    result = scan_pickle(data)
    called = {g.qualified_name: g.called for g in result.globals}
    assert any(n.endswith("KeywordOnly") and c for n, c in called.items())
    assert "state-mutation" not in finding_codes(result)


def test_reports_module_name_record_offset_called_and_severity():
    """Each global carries its module, name, record, first offset, call and severity."""
    data = pickled(glob("builtins", "set") + call(glob("os", "system"), text("id")))
    (ref_set, ref_os) = scan_pickle(data, "res/a.pkl").globals
    assert (ref_set.module, ref_set.name, ref_set.record) == (
        "builtins",
        "set",
        "res/a.pkl",
    )
    assert (ref_set.offset, ref_set.called, ref_set.severity) == (
        2,
        False,
        Severity.INFO,
    )
    assert ref_os.called
    assert ref_os.severity is Severity.CRITICAL
    assert ref_os.opcode == "GLOBAL"


@pytest.mark.parametrize(
    ("body", "opcode"),
    [
        pytest.param(
            call(stack_global("os", "system"), text("x")), "STACK_GLOBAL", id="stack"
        ),
        pytest.param(MARK + text("x") + b"ios\nsystem\n", "INST", id="inst"),
        pytest.param(
            MARK + glob("os", "system") + text("x") + b"o", "GLOBAL", id="obj"
        ),
        pytest.param(
            glob("os", "system") + EMPTY_DICT.replace(b"}", b")") + b"\x81",
            "GLOBAL",
            id="newobj",
        ),
    ],
)
def test_every_way_to_name_and_call_a_global(body, opcode):
    """GLOBAL, STACK_GLOBAL, INST, OBJ and NEWOBJ all name and call os.system."""
    (ref,) = scan_pickle(pickled(body)).globals
    assert ref.qualified_name == "os.system"
    assert ref.opcode == opcode
    assert ref.called


def test_memoize_counts_the_memo_not_the_opcodes():
    """MEMOIZE after BINPUT 1 stores at len(memo) == 1, as loaders do."""
    body = (
        text("print") + put(1) + text("eval") + MEMOIZE + b"00"
        + text("builtins") + get(1) + STACK_GLOBAL
    )  # fmt: skip
    assert names(scan_pickle(pickled(body))) == {"builtins.eval"}


def test_memo_slot_written_twice_resolves_to_the_last_value():
    """A PUT over an earlier PUT of the same slot wins."""
    body = text("print") + put(3) + b"0" + text("exec") + put(3) + b"0"
    body += text("builtins") + get(3) + STACK_GLOBAL
    assert names(scan_pickle(pickled(body))) == {"builtins.exec"}


def test_text_put_get_and_long_binget_resolve():
    """Protocol 0 PUT/GET and LONG_BINPUT/LONG_BINGET follow the same memo."""
    body = text("os") + b"p7\n" + b"0" + text("system") + b"r" + struct.pack("<I", 300)
    body += b"0" + b"g7\n" + b"j" + struct.pack("<I", 300) + STACK_GLOBAL
    assert names(scan_pickle(pickled(body))) == {"os.system"}


@pytest.mark.parametrize(
    "operands",
    [
        pytest.param(
            call(glob("codecs", "decode"), text("bf"), text("rot13")) + text("system"),
            id="call",
        ),
        pytest.param(glob("builtins", "__name__") + text("exec"), id="global-value"),
        pytest.param(
            text("os")
            + call(glob("builtins", "str"), binary(b"system"), text("ascii")),
            id="name",
        ),
    ],
)
def test_computed_stack_global_operands_are_critical(operands):
    """STACK_GLOBAL whose names are computed while loading is a critical finding."""
    result = scan_pickle(pickled(operands + STACK_GLOBAL))
    finding = next(f for f in result.findings if f.code == "computed-global")
    assert finding.severity is Severity.CRITICAL
    assert any(g.module.startswith("<computed") for g in result.globals)


def test_string_and_binstring_operands_decode_as_loaders_do():
    """Protocol 0 STRING escapes and SHORT_BINSTRING give str operands."""
    escaped = b"S'o\\x73'\nS'system'\n" + STACK_GLOBAL
    short = b"U\x08builtinsU\x04exec" + STACK_GLOBAL
    assert names(scan_pickle(pickled(escaped))) == {"os.system"}
    assert names(scan_pickle(pickled(short, version=2))) == {"builtins.exec"}


@pytest.mark.parametrize(
    "opcode", [b"\x82\x05", b"\x83\x05\x01", b"\x84\x05\x00\x00\x00"]
)
def test_ext_codes_are_flagged(opcode):
    """EXT1/EXT2/EXT4 name a global through copyreg's registry: a high finding."""
    result = scan_pickle(pickled(opcode, version=2))
    assert "ext-code" in finding_codes(result)
    assert result.max_severity is Severity.HIGH
    assert result.globals[0].module == "<copyreg extension>"


def test_storage_ids_report_type_key_location_and_numel():
    """A torch.package storage id becomes a PersistentRef with its fields."""
    result = scan_pickle(pickled(tensor("torch.HalfStorage", 3, 10), version=2))
    (ref,) = result.persistent_ids
    assert (ref.kind, ref.storage_type, ref.key, ref.location, ref.numel) == (
        "storage",
        "torch.HalfStorage",
        "3",
        "cpu",
        10,
    )
    assert result.max_severity is Severity.INFO


@pytest.mark.parametrize(
    ("pid", "problem"),
    [
        pytest.param(
            storage_id(glob("torch", "FloatStorage"), integer(0), integer(-5)),
            "non-negative",
            id="negative",
        ),
        pytest.param(
            storage_id(glob("torch", "FloatStorage"), text("../x"), integer(1)),
            "plain number",
            id="key",
        ),
        pytest.param(
            storage_id(text("float"), integer(0), integer(1)), "not a global", id="type"
        ),
        pytest.param(
            storage_id(glob("collections", "OrderedDict"), integer(0), integer(1)),
            "not a storage type",
            id="class",
        ),
    ],
)
def test_bad_storage_ids_are_high(pid, problem):
    """Storage ids with bad sizes, keys or types are high findings."""
    result = scan_pickle(pickled(pid + BINPERSID))
    messages = [f.message for f in result.findings if f.code == "bad-storage-id"]
    assert any(problem in m for m in messages), messages


def test_reduce_package_ids_name_their_loader():
    """A reduce_package id reports its loader; an attacker's loader is critical."""
    body = MARK + text("reduce_package") + integer(7) + glob("builtins", "exec")
    body += MARK + text("print(1)") + TUPLE + TUPLE + BINPERSID
    result = scan_pickle(pickled(body))
    (ref,) = result.persistent_ids
    assert (ref.kind, ref.loader) == ("reduce_package", "builtins.exec")
    finding = next(f for f in result.findings if f.code == "reduce-package")
    assert finding.severity is Severity.CRITICAL
    assert result.globals[0].called


def test_torch_reduce_package_loaders_are_medium():
    """TorchScript's own loader is medium: it runs packaged code, by design."""
    loader = glob("torch.jit._script", "unpackage_script_module")
    body = (
        MARK + text("reduce_package") + integer(1) + loader + MARK + text("id") + TUPLE
    )
    result = scan_pickle(pickled(body + TUPLE + BINPERSID))
    assert result.max_severity is Severity.MEDIUM


def test_unknown_persistent_ids_are_medium():
    """A protocol 0 text persistent id is neither storage nor reduce_package."""
    result = scan_pickle(b"Pfoo\n.")
    assert result.persistent_ids[0].kind == "unknown"
    assert "persistent-id" in finding_codes(result)


def test_nested_pickle_passed_to_loads_is_scanned():
    """Bytes passed to pickle.loads are scanned; their globals carry a context."""
    inner = pickled(call(glob("os", "system"), text("id")), version=2)
    result = scan_pickle(pickled(call(glob("pickle", "loads"), binary(inner))))
    nested = [g for g in result.globals if g.context]
    assert [g.qualified_name for g in nested] == ["os.system"]
    assert "passed to pickle.loads" in nested[0].context
    assert "nested-pickle" in finding_codes(result)


def test_protocol0_nested_pickle_passed_to_loads_is_scanned():
    """A nested pickle without PROTO is still scanned when a loader takes it."""
    inner = b"cos\nsystem\n(S'id'\ntR."
    result = scan_pickle(pickled(call(glob("_pickle", "loads"), binary(inner))))
    assert "os.system" in names(result)


def test_embedded_pickle_bytes_are_reported():
    """A bytes value that is a well-formed pickle with globals is reported."""
    inner = pickled(call(glob("builtins", "exec"), text("x")))
    result = scan_pickle(pickled(EMPTY_DICT + text("k") + binary(inner) + b"s"))
    assert "builtins.exec" in names(result)
    assert result.max_severity is Severity.CRITICAL


def test_random_bytes_that_look_like_a_pickle_are_not_reported():
    """Binary data starting with PROTO but not parsing stays quiet."""
    blob = b"\x80\x02" + bytes(range(256))
    result = scan_pickle(pickled(EMPTY_DICT + text("k") + binary(blob) + b"s"))
    assert result.findings == ()


def test_nesting_depth_is_bounded():
    """Pickles nested 20 deep are followed only MAX_NESTING levels."""
    inner = pickled(call(glob("os", "system"), text("id")))
    for _ in range(20):
        inner = pickled(call(glob("pickle", "loads"), binary(inner)))
    result = scan_pickle(inner)
    assert max(g.context.count(">") for g in result.globals) < 3
    assert result.complete
    assert any("not scanned" in f.message for f in result.findings)


def test_trailing_garbage_is_medium_but_a_trailing_pickle_is_scanned():
    """Bytes after STOP are a medium finding; a pickle hidden there is scanned."""
    benign = pickled(EMPTY_DICT)
    garbage = scan_pickle(benign + b"\xffjunk")
    assert garbage.max_severity is Severity.MEDIUM
    assert not garbage.malformed
    evil = scan_pickle(benign + pickled(call(glob("builtins", "exec"), text("x"))))
    assert evil.max_severity is Severity.CRITICAL
    assert evil.globals[0].context.startswith("after STOP")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80",
        b"\x93.",
        b"\x80\x04\xff.",
        b"\x80\x04h\x09.",
        b"\x80\x04K\x01K\x02\x93.",
        b"\x80\x04Nq\x00h\x00h\x00\x93.",
        b"\x80\x04\x8d" + struct.pack("<Q", 1 << 62) + b"x.",
        b"T\xff\xff\xff\xffx.",
        b"I" + b"9" * 10_000 + b"\n.",
        b"S'unquoted\n.",
        b"c" + b"a" * 70_000 + b"\nb\n.",
        b"(((((.",
        b"1.",
        b"}(K\x01u.",
        b"\x80\x02\x82\x00.",
        b"\x80\x04\x8c\x02\xff\xfe.",
    ],
)
def test_malformed_pickles_are_findings_never_exceptions(data):
    """Truncated, underflowing, oversized and undecodable pickles are findings."""
    result = scan_pickle(data, "bad.pkl")
    assert not result.complete
    assert result.malformed
    (finding,) = [f for f in result.findings if f.code == "malformed"]
    assert finding.severity is Severity.HIGH
    assert finding.record == "bad.pkl"


def test_findings_before_a_malformation_are_kept():
    """Exception-oriented pickles: what runs before the error is still reported."""
    result = scan_pickle(
        b"\x80\x04" + call(glob("builtins", "exec"), text("x")) + b"\xff"
    )
    assert result.malformed
    assert result.max_severity is Severity.CRITICAL


def test_memo_bomb_is_flagged_without_allocating():
    """A memo index past the pickle's size is a high finding; nothing is allocated."""
    tracemalloc.start()
    result = scan_pickle(b"\x80\x02Nr" + struct.pack("<I", 1 << 30) + b".")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert "memo-bomb" in finding_codes(result)
    assert peak < 1 << 20


def test_opcode_budget_stops_the_scan():
    """A pickle longer than the opcode budget stops with a high finding."""
    result = scan_pickle(b"N" + b"2" * 10_000 + b".", max_opcodes=1_000)
    assert "budget-exceeded" in finding_codes(result)
    assert result.opcodes == 1_000
    assert not result.complete


def test_findings_are_capped():
    """Thousands of distinct dangerous globals give a capped list plus a summary."""
    body = b"".join(glob("os", f"f{i}") + b"0" for i in range(2_000))
    result = scan_pickle(pickled(body))
    assert len(result.findings) <= 501
    assert result.findings[-1].code == "findings-suppressed"
    assert result.findings[-1].severity is Severity.CRITICAL


def test_deep_nesting_and_many_opcodes_stay_fast():
    """100,000 nested lists and 500,000 DUPs each scan in well under a few seconds."""
    for data in (
        b"\x80\x04" + EMPTY_LIST * 100_000 + b"a" * 99_999 + b".",
        b"\x80\x04N" + b"2" * 500_000 + b".",
    ):
        start = time.monotonic()
        assert scan_pickle(data).complete
        assert time.monotonic() - start < 3


@pytest.mark.parametrize(
    ("body", "severity"),
    [
        pytest.param(
            glob("collections", "OrderedDict") + b"N}" + b"\x86" + b"b",
            Severity.CRITICAL,
            id="build-global",
        ),
        pytest.param(
            EMPTY_LIST + MARK + integer(0) + text("x") + b"u",
            Severity.HIGH,
            id="setitems-list",
        ),
        pytest.param(
            EMPTY_DICT + MARK + text("x") + b"e", Severity.HIGH, id="appends-dict"
        ),
        pytest.param(
            glob("os", "environ") + text("K") + text("V") + b"s",
            Severity.CRITICAL,
            id="setitem-global",
        ),
        pytest.param(
            b"\x8f" + MARK + text("x") + b"\x90", Severity.INFO, id="additems-set"
        ),
    ],
)
def test_state_mutation(body, severity):
    """BUILD on a class, SETITEMS on a list, APPENDS on a dict are flagged."""
    assert scan_pickle(pickled(body)).max_severity is severity


def test_indirect_calls_are_flagged():
    """Calling what a call returned (getattr chains) is an indirect-call finding."""
    getter = call(glob("builtins", "getattr"), glob("builtins", "print"), text("x"))
    result = scan_pickle(pickled(getter + MARK + TUPLE + REDUCE))
    assert "indirect-call" in finding_codes(result)


def test_frame_length_lie_is_medium():
    """A FRAME longer than the data is reported and the pickle still scanned."""
    result = scan_pickle(b"\x80\x04\x95" + struct.pack("<Q", 1 << 60) + b"N.")
    assert "frame-mismatch" in finding_codes(result)
    assert result.complete


def test_protocol_6_is_high():
    """PROTO 6 is newer than any loader reads."""
    assert "protocol" in finding_codes(scan_pickle(b"\x80\x06N."))


def test_out_of_band_buffers_are_flagged():
    """NEXT_BUFFER needs buffers package loading never passes."""
    assert "out-of-band-buffer" in finding_codes(scan_pickle(b"\x80\x05\x97."))


def test_looks_like_pickle():
    """Protocols 2 to 5 are recognised by their PROTO opcode."""
    assert looks_like_pickle(pickle.dumps(1, protocol=2))
    assert not looks_like_pickle(pickle.dumps(1, protocol=1))
    assert not looks_like_pickle(b"\x80\x06N.")


@pytest.mark.parametrize(
    ("module", "name", "severity"),
    [
        ("os", "system", Severity.CRITICAL),
        ("posix", "system", Severity.CRITICAL),
        ("nt", "system", Severity.CRITICAL),
        ("subprocess", "check_output", Severity.CRITICAL),
        ("builtins", "eval", Severity.CRITICAL),
        ("builtins", "getattr", Severity.CRITICAL),
        ("builtins", "__import__", Severity.CRITICAL),
        ("runpy", "run_module", Severity.CRITICAL),
        ("importlib", "import_module", Severity.CRITICAL),
        ("pickle", "loads", Severity.CRITICAL),
        ("torch", "load", Severity.CRITICAL),
        ("torch.serialization", "load", Severity.CRITICAL),
        ("numpy", "load", Severity.CRITICAL),
        ("sys", "modules", Severity.CRITICAL),
        ("builtins", "print.__self__.__import__", Severity.CRITICAL),
        ("__builtin__", "eval", Severity.CRITICAL),
        ("commands", "getoutput", Severity.CRITICAL),
        ("functools", "partial", Severity.HIGH),
        ("atexit", "register", Severity.HIGH),
        ("hermetic", "scan", Severity.HIGH),
        ("os ", "system", Severity.HIGH),
        ("mypkg", "Model", Severity.MEDIUM),
        ("builtins", "print", Severity.MEDIUM),
        ("collections", "OrderedDict", Severity.INFO),
        ("torch._utils", "_rebuild_tensor_v2", Severity.INFO),
        ("torch", "BFloat16Storage", Severity.INFO),
        ("numpy", "uint8", Severity.INFO),
        ("__builtin__", "set", Severity.INFO),
    ],
)
def test_severity_table(module, name, severity):
    """The table rates known primitives, unknown classes and data as documented."""
    assert rate_global(module, name)[0] is severity


def test_rate_module():
    """Whole modules are rated for imports and externs."""
    assert rate_module("subprocess")[0] is Severity.CRITICAL
    assert rate_module("builtins")[0] is Severity.CRITICAL
    assert rate_module("json") is None
