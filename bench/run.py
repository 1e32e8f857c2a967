"""Measure hermetic against torch.package, torch.save/load, safetensors and C pickle.

Runs the scenarios of issue 6 side by side on the same data, each measurement in a
fresh process, and prints one markdown table: medians, the ratio hermetic / peer and,
where the issue sets a target, PASS or MISS. ``--out`` also writes the table with the
command, the machine and every raw sample (``make bench`` writes bench/RESULTS.md).

    python bench/run.py                 # full sizes (1 GiB state dict, 1M objects)
    python bench/run.py --quick         # smaller sizes and fewer runs, < 2 minutes
    python bench/run.py --scenario small-objects --scale tiny --repeats 1

This is not a test: nothing here fails when a target is missed.
"""

from __future__ import annotations

import argparse
import compileall
import importlib
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import format_table, machine_facts, write_results
from scenarios import SCALES, SCENARIOS, Config, Outcome

#: (repeats, repeats of context-only variants, warm-up runs, cold cache?) per scale.
#: Seven runs for targets: on a small VM one large write in three or four can stall
#: for a second or more, and a median of five is not safe from two of them.
DEFAULT_RUNS = {
    "full": (7, 5, 1, True),
    "quick": (3, 1, 0, False),
    "tiny": (1, 1, 0, False),
}


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="same as --scale quick (under 2 minutes)"
    )
    parser.add_argument("--scale", choices=sorted(SCALES), help="input sizes")
    parser.add_argument(
        "--scenario",
        action="append",
        choices=list(SCENARIOS),
        help="run only this scenario (repeatable); default: all",
    )
    parser.add_argument("--repeats", type=int, help="measured runs per variant")
    parser.add_argument("--warmup", type=int, help="unrecorded runs per variant first")
    parser.add_argument(
        "--cold",
        action=argparse.BooleanOptionalAction,
        help="also load with a dropped page cache (default: on at full scale)",
    )
    parser.add_argument("--out", type=Path, help="also write the results here")
    parser.add_argument(
        "--workdir", type=Path, help="make the data folder in here (default: temp)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the data folder")
    parser.add_argument(
        "--snapshot",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure a copy of hermetic taken at the start (default: on)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress log")
    args = parser.parse_args(argv)
    if args.scale is None:
        args.scale = "quick" if args.quick else "full"
    elif args.quick and args.scale != "quick":
        parser.error("--quick means --scale quick")
    repeats, context_repeats, warmup, cold = DEFAULT_RUNS[args.scale]
    args.repeats = repeats if args.repeats is None else args.repeats
    args.context_repeats = min(context_repeats, args.repeats)
    args.warmup = warmup if args.warmup is None else args.warmup
    args.cold = cold if args.cold is None else args.cold
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    # Always a new folder (inside --workdir if given), so removing it is safe.
    workdir = Path(tempfile.mkdtemp(prefix="hermetic-bench-", dir=args.workdir))
    try:
        return _run(args, argv, workdir)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def _run(args: argparse.Namespace, argv: Sequence[str], workdir: Path) -> int:
    def log(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    config = Config(
        scale=SCALES[args.scale],
        repeats=args.repeats,
        context_repeats=args.context_repeats,
        warmup=args.warmup,
        cold=args.cold,
        workdir=workdir,
        log=log,
    )
    load_before = os.getloadavg()
    started = time.monotonic()
    facts = machine_facts()
    measured = _snapshot_hermetic(workdir) if args.snapshot else None
    if measured is not None:
        facts.append(("hermetic measured from", measured))
    outcomes: dict[str, Outcome] = {}
    for name in args.scenario or list(SCENARIOS):
        module = importlib.import_module(f"scenarios.{SCENARIOS[name]}")
        outcomes[name] = module.run(config)
    rows = [row for outcome in outcomes.values() for row in outcome.rows]
    table = format_table(rows)
    notes = _notes(config, outcomes, load_before, time.monotonic() - started)
    print(table)
    print()
    for note in notes:
        print(f"- {note}")
    if args.out is not None:
        write_results(
            args.out,
            command=_command(argv),
            facts=facts,
            table=table,
            notes=notes,
            raw={name: outcome.samples for name, outcome in outcomes.items()},
        )
        log(f"wrote {args.out}")
    return 0


def _snapshot_hermetic(workdir: Path) -> str | None:
    """Copy the hermetic package that workers would import; make them import the copy.

    Other people may edit the working tree while a long run goes on; with a copy,
    every measurement of one run uses the same code. The copy is compiled to ``.pyc``
    files, as ``pip install`` does: workers would otherwise compile hermetic's own
    modules inside their clocks whenever ``PYTHONDONTWRITEBYTECODE`` is set.
    Returns where it came from.
    """
    spec = importlib.util.find_spec("hermetic")
    if spec is None or spec.origin is None:
        return None
    source = Path(spec.origin).parent
    target = workdir / "snapshot"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(source, target / "hermetic", ignore=ignore)
    if not compileall.compile_dir(target / "hermetic", quiet=1):
        raise RuntimeError(f"cannot compile the copy of hermetic in {target}")
    paths = [str(target), os.environ.get("PYTHONPATH", "")]
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    found = subprocess.run(
        [sys.executable, "-c", "import hermetic; print(hermetic.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not found.startswith(str(target)):
        raise RuntimeError(f"workers import hermetic from {found}, not the snapshot")
    return f"a copy of {source} taken at the start of the run"


def _command(argv: Sequence[str]) -> str:
    python = os.path.relpath(sys.executable) if sys.executable else "python"
    script = os.path.relpath(__file__)
    return shlex.join([python, script, *argv])


def _notes(
    config: Config,
    outcomes: dict[str, Outcome],
    load_before: tuple[float, float, float],
    seconds: float,
) -> list[str]:
    notes = [
        f"Each value is the median of n runs (n in the table: hermetic / peer when "
        f"they differ); every run is a fresh process, variants interleaved run by "
        f"run, after {config.warmup} unrecorded warm-up run(s) per variant. Peers "
        f"shown only for context ran {config.context_repeats} time(s). Peak RSS is "
        f"ru_maxrss of the process.",
        "The garbage collector is disabled inside every timed region, for every "
        "variant (gc.collect() first, gc.enable() after).",
        "Warm cache: the files were just written or read. Cold cache: "
        + (
            "each run first evicts its file with posix_fadvise(POSIX_FADV_DONTNEED) "
            "(no root needed); on a virtual machine the host may still cache it."
            if config.cold
            else "not measured in this run (use --cold)."
        ),
        f"Load average (1, 5, 15 min) at start: "
        f"{', '.join(f'{v:.2f}' for v in load_before)}; at end: "
        f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}. Other processes share "
        f"the {os.cpu_count()} CPUs, so ratios near a target are noisy. "
        f"Total time {seconds:.0f} s.",
    ]
    if config.scale.name != "full":
        notes.append(
            f"Sizes are reduced (--scale {config.scale.name}); the targets are "
            "defined at full size, so PASS/MISS here is only indicative."
        )
    for outcome in outcomes.values():
        notes.extend(outcome.notes)
        for entry in outcome.samples.values():
            if entry.error is not None:
                last = entry.error.strip().splitlines()[-1]
                notes.append(
                    f"`{entry.key}` failed in {entry.failures} run(s); last error: "
                    f"{last}"
                )
            elif entry.missing is not None:
                notes.append(f"`{entry.key}` not run: {entry.missing} not installed.")
    return notes


if __name__ == "__main__":
    sys.exit(main())
