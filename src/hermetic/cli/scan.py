"""``hermetic scan ARCHIVE``: what loading an archive would import and run.

It prints the findings of :func:`hermetic.scan` (which reads every pickle opcode by
opcode and runs nothing) and exits with status 1 when any finding is at least as
severe as ``--fail-on``.
"""

from __future__ import annotations

import argparse
from typing import Any

from ._common import add_progress_option, make_progress, open_reader
from ._output import Output
from ._security import require

__all__ = [
    "DESCRIPTION",
    "HELP",
    "JSON_DOC",
    "NAME",
    "SEVERITIES",
    "add_arguments",
    "run",
]

NAME = "scan"
HELP = "report what loading the archive would import and call; exit 1 on findings"
DESCRIPTION = (
    "Scan the archive without running it: every global each pickle names, nested "
    "pickles, malformed records, storages whose sizes lie, and imports of packaged "
    "code, each with a severity (info, medium, high, critical). Exit status 1 when a "
    "finding is at least as severe as --fail-on."
)
#: The structure of ``--json`` output (a stable interface).
JSON_DOC = """\
hermetic.scan(ARCHIVE).to_dict(), plus:
{
  "fail_on": "info" | "medium" | "high" | "critical",
  "failed": bool                       # the exit status is 1 when true
}
"""

#: Severities from least to most severe, as scan reports them.
SEVERITIES = ("info", "medium", "high", "critical")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """ARCHIVE --fail-on --all."""
    parser.add_argument(
        "archive", metavar="ARCHIVE", help="a .pt archive or unzipped folder"
    )
    parser.add_argument(
        "--fail-on",
        choices=SEVERITIES,
        default="high",
        help="exit with status 1 on a finding this severe or worse (default: high)",
    )
    parser.add_argument(
        "--all", action="store_true", help="also list info findings (hidden by default)"
    )
    add_progress_option(parser)


def _rank(severity: object) -> int:
    return SEVERITIES.index(str(severity).lower())


def run(args: argparse.Namespace, out: Output) -> int:
    """Scan and report; 1 when a finding reaches --fail-on."""
    scan = require("scan", NAME)
    open_reader(args.archive).close()  # a missing or unreadable file fails here
    report = scan(args.archive, progress=None if out.json_mode else make_progress(args))
    threshold = SEVERITIES.index(args.fail_on)
    findings: list[Any] = sorted(report.findings, key=lambda f: -_rank(f.severity))
    failed = any(_rank(f.severity) >= threshold for f in findings)
    if out.json_mode:
        document = report.to_dict()
        document.update(fail_on=args.fail_on, failed=failed)
        out.emit_json(document)
        return 1 if failed else 0
    counts = {name: 0 for name in SEVERITIES}
    for finding in findings:
        counts[str(finding.severity).lower()] += 1
    shown = [f for f in findings if args.all or _rank(f.severity) > 0]
    if shown:
        rows = [
            [str(f.severity), f.code, f.record or "", " ".join(str(f.message).split())]
            for f in shown
        ]
        out.table(["severity", "code", "record", "finding"], rows)
    summary = ", ".join(f"{counts[name]} {name}" for name in reversed(SEVERITIES))
    verdict = "FAILED" if failed else "passed"
    style = "bold red" if failed else "green"
    out.line(
        f"{verdict} (--fail-on {args.fail_on}): {summary}; "
        f"data-only load safe: {'yes' if report.is_safe_to_load_data_only else 'no'}",
        style,
    )
    return 1 if failed else 0
