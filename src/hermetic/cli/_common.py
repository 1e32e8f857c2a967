"""What every verb shares: its interface, CLI errors, and opening an archive."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Protocol

from .._archive_reader import ArchiveReader
from ._output import Output

if TYPE_CHECKING:
    from ..progress import Progress

__all__ = [
    "CLIError",
    "UsageError",
    "Verb",
    "add_progress_option",
    "make_progress",
    "open_reader",
]


class CLIError(Exception):
    """A failure the CLI reports in one line; *code* is the exit status."""

    def __init__(self, message: str, *, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class UsageError(CLIError):
    """The command line itself is wrong (exit status 2)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code=2)


class Verb(Protocol):
    """A subcommand module: its name, help, arguments and body."""

    NAME: str
    HELP: str
    DESCRIPTION: str
    JSON_DOC: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add the verb's own arguments to *parser*."""
        ...

    def run(self, args: argparse.Namespace, out: Output) -> int:
        """Do the work; return the exit status."""
        ...


def open_reader(path: str) -> ArchiveReader:
    """Open the archive (or unzipped package folder) at *path* for reading.

    Raises:
        CLIError: nothing exists at *path*.
        ArchiveError: it is not a readable package.
    """
    if not os.path.exists(path):
        raise CLIError(f"{path}: no such file or directory (check the path)")
    return ArchiveReader(path)


def add_progress_option(parser: argparse.ArgumentParser) -> None:
    """Add --progress/--no-progress (default: a bar when stderr is a terminal)."""
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=(
            "draw a progress bar on standard error for work longer than a second "
            "(default: when standard error is a terminal and rich is installed)"
        ),
    )


def make_progress(args: argparse.Namespace) -> Progress | None:
    """Return the progress bar that --progress asks for, or None."""
    wanted = args.progress
    if wanted is None:
        wanted = sys.stderr.isatty() and _rich_installed()
    if not wanted:
        return None
    from ..progress import RichProgress

    return RichProgress()


def _rich_installed() -> bool:
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True
