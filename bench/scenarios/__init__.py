"""The benchmark scenarios of issue 6, one module each, and what they share.

Each scenario module has a ``run(config) -> Outcome`` that the parent calls, and
worker functions that :mod:`_harness` calls in fresh interpreters. Workers take and
return JSON-able values only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _harness import Samples, Variant
    from _report import Row

__all__ = ["SCALES", "SCENARIOS", "Config", "Outcome", "Scale"]


@dataclass(frozen=True)
class Scale:
    """Input sizes: ``full`` is what issue 6's targets are defined at."""

    name: str
    tensors: int
    tensor_mib: int
    objects: int
    torch_package_objects: int

    @property
    def state_dict_label(self) -> str:
        total = self.tensors * self.tensor_mib
        size = f"{total // 1024} GiB" if total % 1024 == 0 else f"{total} MiB"
        return f"{size} float32 state dict ({self.tensors} x {self.tensor_mib} MiB)"


SCALES = {
    "full": Scale(
        "full",
        tensors=16,
        tensor_mib=64,
        objects=1_000_000,
        torch_package_objects=100_000,
    ),
    "quick": Scale(
        "quick", tensors=16, tensor_mib=8, objects=100_000, torch_package_objects=10_000
    ),
    "tiny": Scale(
        "tiny", tensors=4, tensor_mib=1, objects=5_000, torch_package_objects=1_000
    ),
}


@dataclass(frozen=True)
class Config:
    """What the command line chose, handed to every scenario.

    *context_repeats* is how often variants that only appear in rows without a
    target run (fewer in ``--quick``, to stay under two minutes).
    """

    scale: Scale
    repeats: int
    context_repeats: int
    warmup: int
    cold: bool
    workdir: Path
    log: Callable[[str], None]

    def measure(
        self, module: str, variants: list[Variant], *, warmup: int | None = None
    ) -> dict[str, Samples]:
        """Run *module*'s *variants* as often as this run asks (_harness.measure)."""
        from _harness import measure

        return measure(
            module,
            variants,
            repeats=self.repeats,
            context_repeats=self.context_repeats,
            warmup=self.warmup if warmup is None else warmup,
            log=self.log,
        )


@dataclass
class Outcome:
    """A scenario's table rows, every sample behind them, and notes for the reader."""

    rows: list[Row] = field(default_factory=list)
    samples: dict[str, Samples] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


#: Command-line name → module in this package, in table order.
SCENARIOS = {
    "state-dict-load": "state_dict_load",
    "state-dict-save": "state_dict_save",
    "small-objects": "small_objects",
    "networkx": "networkx_code",
    "dask-workers": "dask_workers",
}
