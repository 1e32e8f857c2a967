"""The ``hermetic`` command line: short verbs that answer questions about an archive.

Each verb lives in its own module with ``NAME``, ``HELP``, ``DESCRIPTION``,
``add_arguments(parser)`` and ``run(args, out) -> int``. Reading verbs open archives
through :class:`hermetic._archive_reader.ArchiveReader` only: they never import packaged
code or load a pickle. ``pack`` is the exception: it imports what it packages.

Exit status: 0 success, 1 a failure or a finding (a damaged archive, a scan finding at
or above ``--fail-on``, archives that differ), 2 a usage error. Errors are one line
on standard error; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from ..errors import HermeticError, PackagingError
from . import demo as demo_verb
from . import (
    deps,
    diff,
    extract,
    inspect,
    ls,
    pack,
    scan,
    sign,
    tree,
    verify,
    why,
)
from ._common import CLIError, Verb
from ._output import Output

__all__ = ["VERBS", "build_parser", "main"]

#: Every verb, in the order ``hermetic --help`` lists them.
VERBS: tuple[Verb, ...] = (
    inspect,
    tree,
    ls,
    deps,
    why,
    diff,
    scan,
    verify,
    sign,
    extract,
    pack,
    demo_verb,
)

_PROG = "hermetic"


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line and exit with status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _add_global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """Add --json/--debug/--no-color; on verbs they default to 'not given'."""
    default: object = False if top else argparse.SUPPRESS
    group = parser.add_argument_group("global options")
    group.add_argument(
        "--json",
        action="store_true",
        default=default,
        help="print one JSON document on standard output (structure in docs/cli.md)",
    )
    group.add_argument(
        "--debug",
        action="store_true",
        default=default,
        help="show the full traceback of an error",
    )
    group.add_argument(
        "--no-color",
        action="store_true",
        default=default,
        help="no colour in human output (also: the NO_COLOR environment variable)",
    )


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of the whole command line (docs/cli.md is made from it)."""
    from .. import __version__

    parser = _Parser(
        prog=_PROG,
        description=(
            "Look inside, check and build hermetic packages (torch.package archives) "
            "without running their code."
        ),
        epilog="Run 'hermetic VERB --help' for the options of one verb.",
    )
    parser.add_argument(
        "--version", action="version", version=f"hermetic {__version__}"
    )
    _add_global_options(parser, top=True)
    verbs = parser.add_subparsers(
        dest="verb", metavar="VERB", required=True, parser_class=_Parser
    )
    for verb in VERBS:
        sub = verbs.add_parser(verb.NAME, help=verb.HELP, description=verb.DESCRIPTION)
        verb.add_arguments(sub)
        _add_global_options(sub, top=False)
        sub.set_defaults(run=verb.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on *argv* (default ``sys.argv[1:]``); return the status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    out = Output(json_mode=args.json, color=not args.no_color)
    try:
        status: int = args.run(args, out)
    except Exception as exc:
        if args.debug:
            raise
        return _report(exc, args.verb)
    except KeyboardInterrupt:
        if args.debug:
            raise
        sys.stderr.write("hermetic: interrupted\n")
        return 130
    return status


def _report(exc: Exception, verb: str) -> int:
    """Print *exc* as one line on standard error; return the exit status."""
    code = 1
    if isinstance(exc, CLIError):
        message, code = str(exc), exc.code
    elif isinstance(exc, PackagingError):
        message = _packaging_summary(exc)
    elif isinstance(exc, HermeticError):
        message = _one_line(str(exc))
    elif isinstance(exc, BrokenPipeError):
        return 1
    elif isinstance(exc, FileNotFoundError) and exc.filename:
        message = f"{exc.filename}: no such file or directory (check the path)"
    elif isinstance(exc, OSError):
        message = _one_line(str(exc))
    else:
        message = (
            f"unexpected {type(exc).__name__}: {_one_line(str(exc))} "
            "(run again with --debug for the traceback, and please report it)"
        )
    prefix = f"{_PROG} {verb}: error: " if code == 2 else f"{_PROG}: error: "
    sys.stderr.write(prefix + message + "\n")
    return code


def _one_line(text: str) -> str:
    """Collapse *text* to one line.

    >>> _one_line("  a\\n   b  ")
    'a b'
    """
    return " ".join(text.split())


def _packaging_summary(exc: PackagingError) -> str:
    """Summarise a PackagingError's problems on one line, with what to do."""
    parts = [
        f"{', '.join(m.split()[0] for m in modules if m.strip())}: {reason.rstrip('.')}"
        for reason, modules in exc.problems.items()
    ]
    count = sum(len(modules) for modules in exc.problems.values())
    detail = "; ".join(parts) or _one_line(str(exc))
    return (
        f"cannot package {count} module(s): {detail} "
        "(add --intern, --extern or --mock patterns for them)"
    )
