"""Opt-in progress reports for long saves and extracts.

Anything with ``start``/``advance``/``stop`` methods is a :class:`Progress`; hermetic
calls them as it writes bytes. :class:`RichProgress` draws a bar on standard error
with `rich <https://rich.readthedocs.io>`_, but only once the work has taken longer
than *delay* seconds, so quick saves print nothing.

Example:
    >>> from hermetic import PackageExporter
    >>> with PackageExporter("model.pt", progress=True) as exporter:  # doctest: +SKIP
    ...     exporter.save_pickle("model", "model.pkl", big_model)

This module does not import rich until a bar is drawn, and reports no progress for
loading: loads map tensor data from the archive instead of reading it.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Protocol, runtime_checkable

from .errors import MissingDependencyError

__all__ = ["DELAY_ENV", "Progress", "RichProgress", "as_progress"]

#: Environment variable overriding the default delay (seconds) before a bar appears.
DELAY_ENV = "HERMETIC_PROGRESS_DELAY"
_DEFAULT_DELAY = 1.0


@runtime_checkable
class Progress(Protocol):
    """Receives progress of one piece of work at a time."""

    def start(self, description: str, total: int | None) -> None:
        """Begin work described by *description*; *total* bytes, None if unknown."""
        ...

    def advance(self, amount: int) -> None:
        """Record that *amount* more bytes are done."""
        ...

    def stop(self) -> None:
        """End the current work, whether it succeeded or not."""
        ...


def _default_delay() -> float:
    """Return the delay from :data:`DELAY_ENV`, or one second."""
    try:
        return max(0.0, float(os.environ.get(DELAY_ENV, _DEFAULT_DELAY)))
    except ValueError:
        return _DEFAULT_DELAY


class RichProgress:
    """A rich progress bar on standard error, shown once work outlasts *delay*.

    With a known total the bar fills and estimates the time left; otherwise it pulses
    and counts bytes. The finished bar stays on screen. Thread-safe.

    Args:
        delay: seconds of work before the bar appears (default 1, or
            ``$HERMETIC_PROGRESS_DELAY``).
        console: a ``rich.console.Console`` to draw on (default: standard error).
    """

    def __init__(self, *, delay: float | None = None, console: Any = None) -> None:
        self._delay = _default_delay() if delay is None else delay
        self._console = console
        self._lock = threading.Lock()
        self._bar: Any = None
        self._task: Any = None
        self._description = ""
        self._total: int | None = None
        self._done = 0
        self._started_at = 0.0
        _require_rich()

    def start(self, description: str, total: int | None) -> None:
        """Begin new work; a bar from earlier work is finished first."""
        self.stop()
        with self._lock:
            self._description, self._total, self._done = description, total, 0
            self._started_at = time.monotonic()
            if self._delay <= 0:
                self._show()

    def advance(self, amount: int) -> None:
        """Count *amount* more bytes, drawing the bar once the delay has passed."""
        with self._lock:
            self._done += amount
            if self._bar is None:
                if time.monotonic() - self._started_at < self._delay:
                    return
                self._show()
            self._bar.update(self._task, completed=self._done)

    def stop(self) -> None:
        """Finish the bar (if one is drawn), leaving it on screen."""
        with self._lock:
            if self._bar is None:
                return
            total = self._done if self._total is None else self._total
            self._bar.update(self._task, completed=self._done, total=total)
            self._bar.stop()
            self._bar = self._task = None

    def _show(self) -> None:
        """Create and start the rich bar (the caller holds the lock)."""
        from rich import progress as rp
        from rich.console import Console

        columns: list[Any] = [rp.TextColumn("{task.description}"), rp.BarColumn()]
        if self._total is None:
            columns += [rp.FileSizeColumn(), rp.TimeElapsedColumn()]
        else:
            columns += [
                rp.TaskProgressColumn(),
                rp.DownloadColumn(),
                rp.TimeRemainingColumn(),
            ]
        console = self._console or Console(stderr=True)
        self._bar = rp.Progress(*columns, console=console, transient=False)
        self._task = self._bar.add_task(
            self._description, total=self._total, completed=self._done
        )
        self._bar.start()


def _require_rich() -> None:
    """Raise MissingDependencyError unless rich can be imported."""
    try:
        import rich  # noqa: F401
    except ImportError:
        raise MissingDependencyError("rich", "rich", "a progress bar") from None


def as_progress(value: Progress | bool | None) -> Progress | None:
    """Return the :class:`Progress` that *value* asks for.

    ``True`` means a :class:`RichProgress`; ``False`` and ``None`` mean none; any
    object with the three methods is used as it is.

    Raises:
        TypeError: *value* is neither a bool, None nor a Progress.
        MissingDependencyError: ``True`` was given and rich is not installed.

    >>> as_progress(None) is None and as_progress(False) is None
    True
    """
    if value is None or value is False:
        return None
    if value is True:
        return RichProgress()
    if isinstance(value, Progress):
        return value
    raise TypeError(
        "progress must be True, False, None or an object with start(), advance() "
        f"and stop() methods, got {type(value).__name__}"
    )
