"""Where a verb's output goes: JSON, plain text, or rich text on a terminal.

Human output uses rich (tables, trees, colour) only when rich is installed and standard
output is a terminal; piped output is plain text that scripts and tests can rely on.
``--json`` prints exactly one JSON document on standard output. rich is imported
lazily, never by ``import hermetic``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

__all__ = ["Output", "human_size", "use_console"]

#: A console forced on every Output (for captures in the docs); see use_console().
_FORCED_CONSOLE: list[Any] = []


@contextlib.contextmanager
def use_console(console: Any) -> Iterator[None]:
    """Make every Output created inside the block draw on the rich *console*."""
    _FORCED_CONSOLE.append(console)
    try:
        yield
    finally:
        _FORCED_CONSOLE.pop()


def human_size(size: int) -> str:
    """Return *size* in bytes as a short string, in decimal units as rich's bars.

    >>> human_size(0), human_size(999), human_size(1500), human_size(5 * 10**9)
    ('0 B', '999 B', '1.5 kB', '5.0 GB')
    """
    if size < 1000:
        return f"{size} B"
    value = float(size)
    for unit in ("kB", "MB", "GB"):
        value /= 1000
        if value < 1000 or unit == "GB":
            break
    return f"{value:.1f} {unit}"


def _rich_installed() -> bool:
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


class Output:
    """One verb's writer: ``emit_json`` in JSON mode, text or rich otherwise."""

    def __init__(
        self,
        *,
        json_mode: bool = False,
        color: bool = True,
        stream: TextIO | None = None,
    ) -> None:
        self.json_mode = json_mode
        self.stream = stream or sys.stdout
        self._console: Any = None
        if _FORCED_CONSOLE:
            self._console = _FORCED_CONSOLE[-1]
        elif not json_mode and self.stream.isatty() and _rich_installed():
            from rich.console import Console

            no_color = not color or "NO_COLOR" in os.environ
            self._console = Console(
                file=self.stream, no_color=no_color, highlight=False
            )

    @property
    def console(self) -> Any:
        """The rich console when output is rich, else None."""
        return self._console

    @property
    def is_rich(self) -> bool:
        """Whether human output goes through rich."""
        return self._console is not None

    def emit_json(self, document: object) -> None:
        """Print *document* as indented JSON."""
        self.stream.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")

    def line(self, text: str = "", style: str | None = None) -> None:
        """Print one line of text (styled when rich)."""
        if self._console is not None:
            from rich.text import Text

            self._console.print(Text(text, style=style or ""))
        else:
            self.stream.write(text + "\n")

    def fields(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Print ``name  value`` lines, names aligned (bold names when rich)."""
        if self._console is not None:
            from rich.table import Table

            grid = Table.grid(padding=(0, 2))
            grid.add_column(style="bold")
            grid.add_column()
            for name, value in pairs:
                grid.add_row(name, value)
            self._console.print(grid)
            return
        width = max((len(name) for name, _ in pairs), default=0)
        for name, value in pairs:
            self.stream.write(f"{name.ljust(width)}  {value}".rstrip() + "\n")

    def table(
        self,
        columns: Sequence[str],
        rows: Sequence[Sequence[str]],
        *,
        title: str | None = None,
        right: Sequence[int] = (),
    ) -> None:
        """Print *rows* under *columns*: a rich table, or aligned plain columns.

        *right* lists the columns to right-align (numbers).
        """
        if self._console is not None:
            from rich.table import Table

            table = Table(title=title, title_justify="left", header_style="bold")
            for index, column in enumerate(columns):
                table.add_column(column, justify="right" if index in right else "left")
            for row in rows:
                table.add_row(*row)
            self._console.print(table)
            return
        if title:
            self.stream.write(title + "\n")
        self.stream.write(_plain_table(columns, rows, right) + "\n")

    def render(self, renderable: Any) -> None:
        """Print a rich renderable (only call when :attr:`is_rich`)."""
        self._console.print(renderable)


def _plain_table(
    columns: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int]
) -> str:
    """Align *rows* under *columns* with two spaces between columns.

    >>> print(_plain_table(["name", "size"], [["a", "1"], ["bb", "22"]], [1]))
    name  size
    a        1
    bb      22
    """
    widths = [len(c) for c in columns]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = []
    for row in [list(columns), *rows]:
        cells = [
            cell.rjust(width) if index in right else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
