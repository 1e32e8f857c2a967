"""Read a pickle opcode by opcode and report what loading it would import and call.

Nothing is unpickled, imported or called. A small stack machine follows the values a
loader would build, far enough to name every global (through the memo, through
computed ``STACK_GLOBAL`` operands, for ``GLOBAL``/``INST``/``OBJ``/``REDUCE``/
``NEWOBJ``/``BUILD``), every persistent id and every nested pickle. The memo follows
the loaders' own rules (``MEMOIZE`` stores at the memo's current length), so mixing
``BINPUT`` and ``MEMOIZE`` cannot make it see a different program than they run.

It is bounded for hostile input: work is linear in the record's size and capped by an
opcode budget, every length is checked against the bytes left before anything is
sliced, strings are decoded only while short, and findings are capped per pickle. A
malformed pickle is a finding, never an exception.

What it does not do: run the program. It cannot know what a packaged class does when
called, what a computed string evaluates to, or what a copyreg extension code names in
the loading process; each of those is reported as a finding instead.

The scanner is split by concept: this module is the entry point (:func:`scan_pickle`,
and the result types and :func:`looks_like_pickle` it re-exports);
:mod:`hermetic._pickle_results` holds the results and their collector,
:mod:`hermetic._pickle_stack` reads bytes into stack values, and
:mod:`hermetic._pickle_machine` gives those values meaning.
"""

from __future__ import annotations

from ._pickle_machine import Machine
from ._pickle_results import (
    Budget,
    Collector,
    Finding,
    GlobalRef,
    PersistentRef,
    PickleScan,
)
from ._pickle_stack import looks_like_pickle
from ._scan_rules import Severity

__all__ = [
    "DEFAULT_MAX_OPCODES",
    "Finding",
    "GlobalRef",
    "PersistentRef",
    "PickleScan",
    "looks_like_pickle",
    "scan_pickle",
]

#: Opcodes read before a scan gives up (a few seconds of work); shared with nested
#: pickles, so they cannot multiply it.
DEFAULT_MAX_OPCODES = 5_000_000


def scan_pickle(
    data: bytes,
    record: str = "",
    *,
    max_opcodes: int = DEFAULT_MAX_OPCODES,
) -> PickleScan:
    """Report every global, persistent id and problem in the pickle *data*.

    Bytes after ``STOP`` are scanned too (loaders ignore them, but they may hide a
    second pickle). Never raises for any input.

    Example:
        >>> result = scan_pickle(b"cos\\nsystem\\n(S'id'\\ntR.", "evil.pkl")
        >>> [(g.qualified_name, g.called, str(g.severity)) for g in result.globals]
        [('os.system', True, 'critical')]
    """
    collector = Collector(record, Budget(max_opcodes))
    machine = Machine(data, 0, collector, context="", depth=0)
    complete = machine.run()
    protocol = machine.protocol
    start = machine.pos
    while complete and start < len(data) and collector.budget.left > 0:
        collector.add(
            Severity.MEDIUM,
            "trailing-data",
            f"{len(data) - start} bytes follow STOP; loaders ignore them, but they "
            "may hide another pickle (scanned below)",
            start,
        )
        trailing = Collector(record, collector.budget)
        after = Machine(data, start, trailing, f"after STOP at byte {start}", 0)
        if not after.run():
            collector.merge(trailing, keep_malformation=False)
            break
        collector.merge(trailing, keep_malformation=True)
        start = after.pos
    return collector.result(len(data), protocol, complete)
