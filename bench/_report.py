"""Turn measured samples into one markdown table of ratios, and describe the machine.

Every row compares hermetic with one peer on one metric: both medians, the ratio
hermetic / peer, and, where issue 6 sets one, the target and PASS or MISS. This module
formats numbers; it does not decide what is measured.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from _harness import Samples

__all__ = [
    "COLUMNS",
    "Row",
    "Target",
    "format_quantity",
    "format_ratio",
    "format_table",
    "machine_facts",
    "write_results",
]

COLUMNS = (
    "scenario",
    "metric",
    "hermetic",
    "peer",
    "peer value",
    "hermetic / peer",
    "target",
    "result",
    "n",
    "note",
)
_NONE = "—"


@dataclass(frozen=True)
class Target:
    """An upper bound on the ratio hermetic / peer, shown as *label*."""

    ratio: float
    label: str


@dataclass(frozen=True)
class Row:
    """hermetic's median of *metric_key* against one peer's, as one table row.

    *peer_scale* multiplies the peer's median, for a peer measured on a smaller input
    (the note must say so).
    """

    scenario: str
    metric: str
    ours: Samples
    peer_label: str
    peer: Samples
    metric_key: str
    unit: str
    target: Target | None = None
    peer_scale: float = 1.0
    note: str = ""

    def ratio(self) -> float | None:
        ours, theirs = self.ours.median(self.metric_key), self._peer_value()
        if ours is None or theirs is None or theirs == 0:
            return None
        return ours / theirs

    def cells(self) -> list[str]:
        ratio = self.ratio()
        if self.target is None:
            result = "context"
        elif ratio is None:
            result = _NONE
        else:
            result = "PASS" if ratio <= self.target.ratio else "MISS"
        return [
            self.scenario,
            self.metric,
            _value_cell(self.ours, self.ours.median(self.metric_key), self.unit),
            self.peer_label,
            _value_cell(self.peer, self._peer_value(), self.unit),
            _NONE if ratio is None else format_ratio(ratio),
            _NONE if self.target is None else self.target.label,
            result,
            self._count(),
            self.note,
        ]

    def _peer_value(self) -> float | None:
        value = self.peer.median(self.metric_key)
        return None if value is None else value * self.peer_scale

    def _count(self) -> str:
        ours, theirs = (
            self.ours.count(self.metric_key),
            self.peer.count(self.metric_key),
        )
        if ours == theirs or self.peer.missing is not None:
            return str(ours)
        return f"{ours} / {theirs}"


def _value_cell(samples: Samples, value: float | None, unit: str) -> str:
    if samples.missing is not None:
        return "not installed"
    if samples.error is not None and value is None:
        return "failed"
    if value is None:
        return "n/a"
    return format_quantity(value, unit)


def format_ratio(ratio: float) -> str:
    """Format a ratio with three significant digits, keeping trailing zeros.

    >>> format_ratio(0.07372), format_ratio(1.5), format_ratio(544.2)
    ('0.0737', '1.50', '544')
    """
    return f"{ratio:.0f}" if abs(ratio) >= 100 else f"{ratio:#.3g}"


def format_quantity(value: float, unit: str) -> str:
    """Format seconds or bytes for a table cell.

    >>> format_quantity(0.01234, "s"), format_quantity(3.5, "s")
    ('12.3 ms', '3.50 s')
    >>> format_quantity(1.5 * 2**30, "B"), format_quantity(300 * 2**20, "B")
    ('1.50 GiB', '300 MiB')
    """
    if unit == "s":
        return f"{value * 1000:.3g} ms" if value < 1 else f"{value:.2f} s"
    if unit == "B":
        if abs(value) >= 2**30:
            return f"{value / 2**30:.2f} GiB"
        return f"{value / 2**20:.3g} MiB"
    return f"{value:.3g} {unit}"


def format_table(rows: Iterable[Row]) -> str:
    """Return the rows as one markdown table."""
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    lines.extend("| " + " | ".join(row.cells()) + " |" for row in rows)
    return "\n".join(lines)


def machine_facts() -> list[tuple[str, str]]:
    """Return what a reader needs to compare these numbers with another machine's."""
    facts = [
        ("date", _now()),
        ("CPU", f"{os.cpu_count()} logical CPUs, {_cpu_model()}"),
        ("RAM", _memory_total()),
        ("OS", platform.platform()),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
    ]
    for dist in ("hermetic", "torch", "numpy", "safetensors", "networkx"):
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            version = "not installed"
        facts.append((dist, version))
    facts.append(("hermetic commit", _git_commit()))
    return facts


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown model"


def _memory_total() -> str:
    try:
        with open("/proc/meminfo") as file:
            for line in file:
                if line.startswith("MemTotal:"):
                    return format_quantity(int(line.split()[1]) * 1024, "B")
    except OSError:
        pass
    return "unknown"


def _git_commit() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} (with uncommitted changes)" if dirty else head


def write_results(
    path: Path,
    *,
    command: str,
    facts: Sequence[tuple[str, str]],
    table: str,
    notes: Sequence[str],
    raw: dict[str, dict[str, Samples]],
) -> None:
    """Write the table, the command that produced it and the machine to *path*."""
    lines = [
        "# Benchmark results",
        "",
        "Generated by `bench/run.py`. Do not edit: rerun the command to regenerate.",
        "",
        "Command:",
        "",
        f"    {command}",
        "",
        *[f"- **{name}:** {value}" for name, value in facts],
        "",
        "## Ratios (hermetic / peer; lower is better for hermetic)",
        "",
        table,
        "",
        "## Notes",
        "",
        *[f"- {note}" for note in notes],
        "",
        "## Raw samples",
        "",
        "Every run of every variant, one fresh process each (seconds and bytes).",
        "",
    ]
    for scenario, samples in raw.items():
        lines += [f"### {scenario}", ""]
        lines += [f"- `{e.key}`: {_raw_summary(e)}" for e in samples.values()]
        lines.append("")
    path.write_text("\n".join(lines))


def _raw_summary(entry: Samples) -> str:
    if entry.missing is not None:
        return f"not installed ({entry.missing})"
    metrics = sorted(
        {k for run in entry.runs for k, v in run.items() if isinstance(v, (int, float))}
    )
    parts = []
    for metric in metrics:
        values = [run[metric] for run in entry.runs if run.get(metric) is not None]
        shown = ", ".join(
            f"{v:.4g}" if isinstance(v, float) else str(v) for v in values
        )
        parts.append(f"{metric} [{shown}]")
    text = "; ".join(parts) or "no runs"
    if entry.error is not None:
        first = entry.error.strip().splitlines()[-1]
        text += f"; FAILED: {first}"
    return text
