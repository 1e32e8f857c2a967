"""a. Load a float32 state dict and touch every element; warm and cold page cache.

Every format is written once from the same tensors, then each loader runs in a fresh
process: time to load, private memory added by loading (smaps_rollup, read just
before and just after), time to sum every tensor (which faults in every page of a
lazily mapped file; one torch thread), and anonymous memory added by the end
(copies of the data).
Cold runs evict the file with ``posix_fadvise(POSIX_FADV_DONTNEED)`` first; on a
virtual machine the host may still cache it, so "cold" is an upper bound on coldness.
"""

from __future__ import annotations

import importlib
import inspect
import os
import warnings
from pathlib import Path
from typing import Any

from _harness import (
    Samples,
    Variant,
    anonymous_bytes,
    drop_page_cache,
    has_module,
    private_bytes,
    resident_fraction,
    run_once,
    stopwatch,
)
from _report import Row, Target

from . import Config, Outcome

__all__ = ["load", "make_state_dict", "run", "save_state_dict", "write_all"]

MODULE = "state_dict_load"
#: Variant key → (file written by prepare, modules the loader needs).
LOADERS = {
    "hermetic": ("hermetic.pt", ("hermetic", "torch")),
    "torch.package": ("torch_package.pt", ("torch",)),
    "torch.load": ("torch_save.pt", ("torch",)),
    "torch.load(mmap=True)": ("torch_save.pt", ("torch",)),
    "safetensors": ("model.safetensors", ("safetensors", "torch")),
}
#: hermetic without checking records against the archive's manifest (when it has
#: that option): shows what the check costs.
UNVERIFIED = "hermetic verify=False"
WRITERS = {
    "hermetic": "hermetic.pt",
    "torch.package": "torch_package.pt",
    "torch.save": "torch_save.pt",
    "safetensors": "model.safetensors",
}
#: Variant key → (module, entry point) a caller imports before loading anything.
_ENTRY_POINTS = {
    "hermetic": ("hermetic", "PackageImporter"),
    UNVERIFIED: ("hermetic", "PackageImporter"),
    "torch.package": ("torch.package", "PackageImporter"),
    "torch.load": ("torch", "load"),
    "torch.load(mmap=True)": ("torch", "load"),
    "safetensors": ("safetensors.torch", "load_file"),
}
FAST = Target(1 / 15, "≤ 1/15")
SMALL = Target(0.2, "≤ 0.2")
NEAR = Target(1.3, "≤ 1.3")
WHOLE = (
    "includes interpreter and torch; library pages count as private only while no "
    "other process maps them, so this moves by ~100 MiB with the machine's load"
)


# -- worker functions (run in a fresh interpreter) ------------------------------------


def make_state_dict(tensors: int, tensor_mib: int) -> dict[str, Any]:
    """Return the benchmark's state dict: seeded uniform float32 matrices."""
    import torch

    generator = torch.Generator().manual_seed(0)
    rows = tensor_mib * 2**20 // (4 * 1024)
    return {
        f"layers.{i}.weight": torch.rand(rows, 1024, generator=generator)
        for i in range(tensors)
    }


def save_state_dict(writer: str, state_dict: dict[str, Any], path: str) -> None:
    """Save *state_dict* to *path* the way *writer* does."""
    if writer in ("hermetic", "hermetic manifest=False"):
        import hermetic

        manifest = writer == "hermetic"
        with hermetic.PackageExporter(path, manifest=manifest) as exporter:
            exporter.save_pickle("model", "state_dict.pkl", state_dict)
    elif writer == "torch.package":
        import torch.package

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TypedStorage deprecation, per tensor
            with torch.package.PackageExporter(path) as exporter:
                exporter.save_pickle("model", "state_dict.pkl", state_dict)
    elif writer == "torch.save":
        import torch

        torch.save(state_dict, path)
    elif writer == "safetensors":
        import safetensors.torch

        safetensors.torch.save_file(state_dict, path)
    else:
        raise ValueError(writer)


def write_all(folder: str, tensors: int, tensor_mib: int, writers: list[str]) -> dict:
    """Write the state dict once per format into *folder*, flushed to disk."""
    state_dict = make_state_dict(tensors, tensor_mib)
    sizes = {}
    for writer in writers:
        path = os.path.join(folder, WRITERS[writer])
        save_state_dict(writer, state_dict, path)
        fd = os.open(path, os.O_RDONLY)
        os.fsync(fd)  # no write-back running under the measurements
        os.close(fd)
        sizes[writer] = os.path.getsize(path)
    return {"sizes": sizes}


def has_verify_option() -> dict[str, Any]:
    """Tell whether ``PackageImporter`` takes ``verify=`` (manifest checks)."""
    import hermetic

    parameters = inspect.signature(hermetic.PackageImporter).parameters
    return {"verify": "verify" in parameters}


def _load(loader: str, path: str) -> Any:
    if loader == "hermetic":
        import hermetic

        return hermetic.PackageImporter(path).load_pickle("model", "state_dict.pkl")
    if loader == UNVERIFIED:
        import hermetic

        importer = hermetic.PackageImporter(path, verify=False)
        return importer.load_pickle("model", "state_dict.pkl")
    if loader == "torch.package":
        import torch.package

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            importer = torch.package.PackageImporter(path)
            return importer.load_pickle("model", "state_dict.pkl")
    if loader in ("torch.load", "torch.load(mmap=True)"):
        import torch

        return torch.load(path, mmap=loader.endswith("(mmap=True)"))
    if loader == "safetensors":
        import safetensors.torch

        return safetensors.torch.load_file(path)
    raise ValueError(loader)


def load(loader: str, path: str, cold: bool) -> dict[str, Any]:
    """Load *path* with *loader*, then sum every tensor; report times and memory."""
    import torch

    # One thread: the sum is there to fault in every page, not to measure torch's
    # reductions, and a second thread fights other processes on a small machine.
    torch.set_num_threads(1)
    torch.ones(1 << 20).sum()  # first-call set-up of the kernel, before any clock

    # The loader's entry point is imported before the clock, as a caller's
    # ``from hermetic import PackageImporter`` would have (hermetic's are lazy).
    module, entry_point = _ENTRY_POINTS[loader]
    getattr(importlib.import_module(module), entry_point)
    resident = None
    if cold:
        drop_page_cache(path)
        resident = resident_fraction(path)
    private_before, anonymous_before = private_bytes(), anonymous_bytes()
    with stopwatch() as loading:
        state_dict = _load(loader, path)
    private = private_bytes()
    with stopwatch() as touching:
        total = sum(float(tensor.sum()) for tensor in state_dict.values())
    anonymous = anonymous_bytes()
    return {
        "load_s": loading.seconds,
        "total_s": loading.seconds + touching.seconds,
        "private_after_load": private,
        "private_added": _difference(private, private_before),
        "anonymous_added": _difference(anonymous, anonymous_before),
        "resident_before": resident,
        "checksum": total,
    }


def _difference(after: int | None, before: int | None) -> int | None:
    return None if after is None or before is None else after - before


# -- parent side -----------------------------------------------------------------------


def run(config: Config) -> Outcome:
    """Write every format once, then time each loader warm (and cold)."""
    if not has_module("torch"):
        config.log("a. torch is not installed: skipped")
        return Outcome(notes=["a. torch is not installed: scenario skipped."])
    scale = config.scale
    folder = config.workdir / "state-dict-load"
    folder.mkdir(parents=True, exist_ok=True)
    writers = [w for w in WRITERS if _installed(w)]
    config.log(f"a. writing the {scale.state_dict_label} in {len(writers)} formats")
    prepared = run_once(
        MODULE,
        "write_all",
        {
            "folder": str(folder),
            "tensors": scale.tensors,
            "tensor_mib": scale.tensor_mib,
            "writers": writers,
        },
    )
    outcome = Outcome()
    unverified = (
        has_module("hermetic") and run_once(MODULE, "has_verify_option")["verify"]
    )
    warm = _measure(config, folder, cold=False, unverified=unverified)
    outcome.samples.update(warm)
    outcome.rows += _warm_rows(scale.state_dict_label, warm)
    if unverified:
        outcome.rows += _unverified_rows(scale.state_dict_label, warm)
    if config.cold:
        cold = _measure(config, folder, cold=True)
        outcome.samples.update(cold)
        outcome.rows += _cold_rows(scale.state_dict_label, cold)
    sizes = ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in prepared["sizes"].items())
    outcome.notes.append(f"a. file sizes: {sizes}.")
    _check_sums(outcome)
    return outcome


def _installed(writer: str) -> bool:
    needs = {"hermetic": "hermetic", "safetensors": "safetensors"}.get(writer, "torch")
    return has_module(needs) and has_module("torch")


def _measure(
    config: Config, folder: Path, *, cold: bool, unverified: bool = False
) -> dict[str, Samples]:
    suffix = " cold" if cold else ""
    config.log(f"a. loading{' (cold cache)' if cold else ''}")
    loaders = dict(LOADERS)
    if unverified:
        loaders[UNVERIFIED] = LOADERS["hermetic"]
    variants = [
        Variant(
            key + suffix,
            "load",
            {"loader": key, "path": str(folder / file), "cold": cold},
            requires=needs,
            context=cold or key.startswith("torch.load") or key == UNVERIFIED,
        )
        for key, (file, needs) in loaders.items()
    ]
    return config.measure(MODULE, variants, warmup=0 if cold else None)


def _warm_rows(label: str, s: dict[str, Samples]) -> list[Row]:
    scenario = f"a. load {label} + touch all, warm cache"
    ours = s["hermetic"]

    def row(metric: str, peer: str, key: str, unit: str, target=None, note=""):
        return Row(scenario, metric, ours, peer, s[peer], key, unit, target, note=note)

    return [
        row("load + touch time", "torch.package", "total_s", "s", FAST),
        row("load + touch time", "safetensors", "total_s", "s", NEAR),
        row(
            "private memory added by load",
            "torch.package",
            "private_added",
            "B",
            SMALL,
            "smaps_rollup Private_Clean+Private_Dirty after load minus before it; "
            "file pages a loader reads through its map count as private while no "
            "other process maps them (compare the anonymous row)",
        ),
        row("load + touch time", "torch.load", "total_s", "s"),
        row("load + touch time", "torch.load(mmap=True)", "total_s", "s"),
        row("load time only", "torch.package", "load_s", "s"),
        row("load time only", "safetensors", "load_s", "s"),
        row("load time only", "torch.load(mmap=True)", "load_s", "s"),
        row(
            "private memory after load, whole process",
            "torch.package",
            "private_after_load",
            "B",
            note=WHOLE,
        ),
        row(
            "anonymous memory added by load + touch",
            "torch.package",
            "anonymous_added",
            "B",
            note="smaps_rollup Anonymous: memory not backed by the file",
        ),
        row("peak RSS", "torch.package", "peak_rss", "B"),
        row("peak RSS", "safetensors", "peak_rss", "B"),
    ]


def _unverified_rows(label: str, s: dict[str, Samples]) -> list[Row]:
    scenario = f"a. load {label} + touch all, warm cache"
    ours = s[UNVERIFIED]
    note = "hermetic with PackageImporter(..., verify=False): no manifest hashing"
    return [
        Row(scenario, f"load + touch time, {UNVERIFIED}", ours, peer, s[peer],
            "total_s", "s", note=note)
        for peer in ("torch.package", "safetensors")
    ] + [
        Row(scenario, f"load time only, {UNVERIFIED}", ours, "safetensors",
            s["safetensors"], "load_s", "s", note=note),
        Row(scenario, f"private memory added by load, {UNVERIFIED}", ours,
            "torch.package", s["torch.package"], "private_added", "B", note=note),
    ]  # fmt: skip


def _cold_rows(label: str, s: dict[str, Samples]) -> list[Row]:
    scenario = f"a. load {label} + touch all, cold cache"
    ours = s["hermetic cold"]
    resident = ours.median("resident_before")
    note = "POSIX_FADV_DONTNEED before each run" + (
        "" if resident is None else f"; {resident:.0%} of file cached after it"
    )
    peers = ("torch.package", "safetensors", "torch.load", "torch.load(mmap=True)")
    return [
        Row(
            scenario,
            "load + touch time",
            ours,
            peer,
            s[f"{peer} cold"],
            "total_s",
            "s",
            note=note,
        )
        for peer in peers
    ]


def _check_sums(outcome: Outcome) -> None:
    """Note it if any loader summed to a different value: it loaded other data."""
    sums = {
        key: entry.median("checksum")
        for key, entry in outcome.samples.items()
        if entry.median("checksum") is not None
    }
    if len({round(v, 0) for v in sums.values()}) > 1:
        outcome.notes.append(f"a. WARNING: loaders disagree on the data: {sums}")
