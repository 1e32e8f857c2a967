"""b. Save the float32 state dict of scenario a to a file on disk.

Each run builds the tensors (untimed), then times the save into the page cache; the
file is flushed and removed after the clock stops, so one run's write-back does not
slow the next. Also reported: how far RSS rose above its level before the save (the
peak is reset just before it with Linux's ``/proc/self/clear_refs``).
"""

from __future__ import annotations

import os
from typing import Any

from _harness import (
    Samples,
    Variant,
    has_module,
    measure,
    peak_rss_bytes,
    reset_peak_rss,
    rss_bytes,
    stopwatch,
)
from _report import Row, Target

from . import Config, Outcome
from .state_dict_load import make_state_dict, save_state_dict

__all__ = ["run", "save"]

MODULE = "state_dict_save"
WRITERS = {
    "hermetic": ("hermetic.pt", ("hermetic", "torch")),
    "torch.save": ("torch_save.pt", ("torch",)),
    "torch.package": ("torch_package.pt", ("torch",)),
    "safetensors": ("model.safetensors", ("safetensors", "torch")),
}
AS_FAST = Target(1.2, "≤ 1.2")


def save(writer: str, path: str, tensors: int, tensor_mib: int) -> dict[str, Any]:
    """Build the state dict, then time saving it to *path* with *writer*."""
    state_dict = make_state_dict(tensors, tensor_mib)
    # A tiny save first, so that imports done on first use are not timed.
    first = next(iter(state_dict.values()))[:1].clone()
    save_state_dict(writer, {"warm": first}, path + ".warm")
    os.unlink(path + ".warm")
    before = rss_bytes() if reset_peak_rss() else None
    with stopwatch() as saving:
        save_state_dict(writer, state_dict, path)
    peak = peak_rss_bytes()
    size = os.path.getsize(path)
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    os.unlink(path)
    return {
        "save_s": saving.seconds,
        "extra_peak_rss": None if before is None else max(0, peak - before),
        "bytes": size,
    }


def run(config: Config) -> Outcome:
    """Time every writer on the same state dict."""
    if not has_module("torch"):
        config.log("b. torch is not installed: skipped")
        return Outcome(notes=["b. torch is not installed: scenario skipped."])
    scale = config.scale
    folder = config.workdir / "state-dict-save"
    folder.mkdir(parents=True, exist_ok=True)
    config.log("b. saving")
    variants = [
        Variant(
            key,
            "save",
            {
                "writer": key,
                "path": str(folder / file),
                "tensors": scale.tensors,
                "tensor_mib": scale.tensor_mib,
            },
            requires=needs,
            context=key in ("torch.package", "safetensors"),
        )
        for key, (file, needs) in WRITERS.items()
    ]
    samples = measure(
        MODULE,
        variants,
        repeats=config.repeats,
        context_repeats=config.context_repeats,
        warmup=config.warmup,
        log=config.log,
    )
    return Outcome(rows=_rows(scale.state_dict_label, samples), samples=_keyed(samples))


def _keyed(samples: dict[str, Samples]) -> dict[str, Samples]:
    return {f"save {key}": entry for key, entry in samples.items()}


def _rows(label: str, s: dict[str, Samples]) -> list[Row]:
    scenario = f"b. save {label} to disk"
    ours = s["hermetic"]
    extra = "peak RSS during the save minus RSS before it"
    return [
        Row(
            scenario,
            "save time",
            ours,
            "torch.save",
            s["torch.save"],
            "save_s",
            "s",
            AS_FAST,
        ),
        Row(
            scenario,
            "save time",
            ours,
            "torch.package",
            s["torch.package"],
            "save_s",
            "s",
        ),
        Row(
            scenario, "save time", ours, "safetensors", s["safetensors"], "save_s", "s"
        ),
        Row(
            scenario,
            "extra memory during save",
            ours,
            "torch.save",
            s["torch.save"],
            "extra_peak_rss",
            "B",
            note=extra,
        ),
        Row(
            scenario,
            "extra memory during save",
            ours,
            "torch.package",
            s["torch.package"],
            "extra_peak_rss",
            "B",
            note=extra,
        ),
    ]
