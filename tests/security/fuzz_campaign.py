"""Run the fuzz properties of ``test_fuzz.py`` until a time budget is spent.

``make fuzz`` runs this for 30 minutes (``FUZZ_MINUTES=5 make fuzz`` for five)::

    python tests/security/fuzz_campaign.py --minutes 30 [--batch 500] [--json out]

Every round runs each property for ``--batch`` examples with a fresh random seed.
Failing examples are kept in Hypothesis' example database (``.hypothesis/``) and
printed; a property that failed is not run again. The summary gives the examples run
per property and their rate; the exit status is 1 if any property failed.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--json", type=Path, help="also write the summary here")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(TESTS))
    from hypothesis import given, settings

    from security import test_fuzz

    thorough = settings.get_profile("thorough")
    counts: collections.Counter[str] = collections.Counter()
    budget = args.minutes * 60
    start = time.monotonic()
    failed: dict[str, str] = {}
    rounds = 0
    print(f"fuzzing {len(test_fuzz.TARGETS)} properties for {args.minutes:g} min")
    while time.monotonic() - start < budget:
        rounds += 1
        for name, (check, strategy) in test_fuzz.TARGETS.items():
            if name in failed or time.monotonic() - start >= budget:
                continue
            counted = _counting(check, name, counts)
            run = settings(thorough, max_examples=args.batch)(given(strategy)(counted))
            try:
                run()
            except Exception:
                failed[name] = traceback.format_exc()
                print(f"FAILED {name}:\n{failed[name]}", flush=True)
        elapsed = time.monotonic() - start
        total = sum(counts.values())
        print(f"round {rounds}: {elapsed:7.0f} s, {total:,} examples", flush=True)
    elapsed = time.monotonic() - start
    summary = {
        "minutes": round(elapsed / 60, 2),
        "rounds": rounds,
        "examples": dict(counts),
        "total": sum(counts.values()),
        "per_second": round(sum(counts.values()) / max(elapsed, 1e-9), 1),
        "failed": sorted(failed),
    }
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    return 1 if failed else 0


def _counting(
    check: Callable[[bytes], None], name: str, counts: collections.Counter[str]
) -> Callable[[bytes], None]:
    def counted(data: bytes) -> None:
        counts[name] += 1
        check(data)

    return counted


if __name__ == "__main__":
    sys.exit(main())
