"""b. Save the float32 state dict of scenario a to a file on disk.

Each run builds the tensors (untimed), then times the save into the page cache; the
file is flushed and removed after the clock stops, so one run's write-back does not
slow the next. Also reported: how far RSS rose above its level before the save (the
peak is reset just before it with Linux's ``/proc/self/clear_refs``), hermetic without
its manifest, and what SHA-256 and CRC-32 of the same bytes cost on one thread: the
manifest's SHA-256 is work no peer does, and it bounds how close to ``torch.save``
(one thread: CRC-32 and the writes) a save with a manifest can get on two cores.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from _harness import (
    Samples,
    Variant,
    has_module,
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
NO_MANIFEST = "hermetic manifest=False"
WRITERS = {
    "hermetic": ("hermetic.pt", ("hermetic", "torch")),
    "torch.save": ("torch_save.pt", ("torch",)),
    "torch.package": ("torch_package.pt", ("torch",)),
    "safetensors": ("model.safetensors", ("safetensors", "torch")),
    NO_MANIFEST: ("hermetic-nomanifest.pt", ("hermetic", "torch")),
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


def checksum_times(tensors: int, tensor_mib: int) -> dict[str, Any]:
    """Time SHA-256 and CRC-32 of the state dict's bytes, each on one thread."""
    import hashlib
    import zlib

    state_dict = make_state_dict(tensors, tensor_mib)
    views = [memoryview(t.numpy()).cast("B") for t in state_dict.values()]
    with stopwatch() as sha:
        for view in views:
            hashlib.sha256(view).digest()
    with stopwatch() as crc:
        for view in views:
            zlib.crc32(view)
    return {"sha256_s": sha.seconds, "crc32_s": crc.seconds}


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
            context=key in ("torch.package", "safetensors", NO_MANIFEST),
        )
        for key, (file, needs) in WRITERS.items()
    ]
    variants.append(
        Variant(
            "checksums",
            "checksum_times",
            {"tensors": scale.tensors, "tensor_mib": scale.tensor_mib},
            requires=("torch",),
            context=True,
        )
    )
    samples = config.measure(MODULE, variants)
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
            "save time, hermetic manifest=False",
            s[NO_MANIFEST],
            "torch.save",
            s["torch.save"],
            "save_s",
            "s",
            note="PackageExporter(..., manifest=False): no SHA-256 of the records",
        ),
        Row(
            scenario,
            "SHA-256 of the same bytes, one thread (not a save)",
            _renamed(s["checksums"], "sha256_s"),
            "torch.save",
            s["torch.save"],
            "save_s",
            "s",
            note="hashlib.sha256 over every tensor: the manifest's share of the work",
        ),
        Row(
            scenario,
            "CRC-32 of the same bytes, one thread (not a save)",
            _renamed(s["checksums"], "crc32_s"),
            "torch.save",
            s["torch.save"],
            "save_s",
            "s",
            note="zlib.crc32 over every tensor: ZIP needs it, torch.save does it too",
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


def _renamed(samples: Samples, key: str) -> Samples:
    """Return *samples* with *key* also stored as ``save_s``, to sit in a save row."""
    runs = [{**run, "save_s": run.get(key)} for run in samples.runs]
    return dataclasses.replace(samples, runs=runs)
