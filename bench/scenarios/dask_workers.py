"""e. N Dask worker processes load one state dict: shared mapped archive vs own copies.

The state dict of scenario a. is written once as a hermetic archive and once with
``torch.save``. Each run starts a ``distributed.LocalCluster`` of N worker processes
(one thread each) that have already imported torch and hermetic, then times
``client.run`` of one load on every worker at once, until all of them have loaded and
summed every tensor: ``hermetic.dask.load`` (storages mapped copy-on-write from the
file, so the workers share its page-cache pages) against ``torch.load`` without
``mmap`` (each worker reads its own copy). Each worker also reports the private
memory (smaps_rollup Private_Clean + Private_Dirty) its load + touch added.
Issue 9 sets no target: these are context rows.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from _harness import Samples, Variant, has_module, private_bytes, run_once
from _report import Row

from . import Config, Outcome

__all__ = ["cluster_load", "load_on_worker", "run", "write_both"]

MODULE = "dask_workers"
WORKERS = 2
FILES = {"hermetic.dask.load": "hermetic.pt", "torch.load": "torch_save.pt"}


# -- worker functions (run in a fresh interpreter, or on a Dask worker) ---------------


def write_both(folder: str, tensors: int, tensor_mib: int) -> dict[str, Any]:
    """Write the state dict as a hermetic archive and with torch.save, flushed."""
    from scenarios.state_dict_load import make_state_dict, save_state_dict

    state_dict = make_state_dict(tensors, tensor_mib)
    sizes = {}
    for writer, loader in (("hermetic", "hermetic.dask.load"), ("torch.save", "")):
        path = os.path.join(folder, FILES[loader or "torch.load"])
        save_state_dict(writer, state_dict, path)
        fd = os.open(path, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        sizes[writer] = os.path.getsize(path)
    return {"sizes": sizes}


def _prepare_worker() -> int:
    """Import what a loader needs before any clock, as a running worker would have."""
    import torch

    import hermetic.dask  # noqa: F401

    torch.set_num_threads(1)
    torch.ones(1 << 20).sum()
    return os.getpid()


#: What each worker loaded, kept until every worker has reported its memory.
_KEPT: list[Any] = []


def load_on_worker(loader: str, path: str) -> dict[str, Any]:
    """Load *path* on this worker, sum every tensor and keep the result."""
    import torch

    before = private_bytes()
    if loader == "hermetic.dask.load":
        import hermetic.dask

        state_dict = hermetic.dask.load(path, "model", "state_dict.pkl")
    else:
        state_dict = torch.load(path, mmap=False)
    total = sum(float(tensor.sum()) for tensor in state_dict.values())
    _KEPT.append(state_dict)
    return {"private_before": before, "checksum": total}


def _private_now() -> int | None:
    return private_bytes()


def cluster_load(loader: str, path: str, workers: int) -> dict[str, Any]:
    """Start *workers* worker processes, then time all of them loading *path*."""
    import distributed

    with (
        distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.wait_for_workers(workers, timeout=120)
        client.run(_prepare_worker)
        start = time.perf_counter()
        reports = client.run(load_on_worker, loader, path)
        seconds = time.perf_counter() - start
        # Read once every worker has loaded: a page counts as shared only once
        # another process maps it too.
        after = client.run(_private_now)
    known = [
        after[worker] - report["private_before"]
        for worker, report in reports.items()
        if after.get(worker) is not None and report["private_before"] is not None
    ]
    return {
        "all_loaded_s": seconds,
        "private_added_per_worker": max(known) if known else None,
        "private_added_all_workers": sum(known) if known else None,
        "checksum": min(report["checksum"] for report in reports.values()),
        "workers": len(reports),
    }


# -- parent side -----------------------------------------------------------------------


def run(config: Config) -> Outcome:
    """Write both files once, then time N workers loading each."""
    absent = [m for m in ("torch", "distributed", "hermetic") if not has_module(m)]
    if absent:
        config.log(f"e. {', '.join(absent)} not installed: skipped")
        return Outcome(notes=[f"e. {', '.join(absent)} not installed: skipped."])
    scale = config.scale
    folder = config.workdir / "dask-workers"
    folder.mkdir(parents=True, exist_ok=True)
    config.log(f"e. writing the {scale.state_dict_label} twice")
    prepared = run_once(
        MODULE,
        "write_both",
        {
            "folder": str(folder),
            "tensors": scale.tensors,
            "tensor_mib": scale.tensor_mib,
        },
    )
    config.log(f"e. loading on {WORKERS} Dask worker processes")
    samples = _measure(config, folder)
    sizes = ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in prepared["sizes"].items())
    outcome = Outcome(samples=samples, rows=_rows(scale.state_dict_label, samples))
    outcome.notes.append(
        f"e. {WORKERS} workers (LocalCluster, processes, 1 thread each, torch and "
        f"hermetic imported before the clock); file sizes: {sizes}; warm page cache."
    )
    sums = {k: v.median("checksum") for k, v in samples.items()}
    if len({None if v is None else round(v, 0) for v in sums.values()}) > 1:
        outcome.notes.append(f"e. WARNING: loaders disagree on the data: {sums}")
    return outcome


def _measure(config: Config, folder: Path) -> dict[str, Samples]:
    variants = [
        Variant(
            key,
            "cluster_load",
            {"loader": key, "path": str(folder / file), "workers": WORKERS},
            requires=("distributed", "torch"),
            context=True,
        )
        for key, file in FILES.items()
    ]
    return config.measure(MODULE, variants)


def _rows(label: str, s: dict[str, Samples]) -> list[Row]:
    scenario = f"e. {WORKERS} Dask workers load {label} + touch all"
    ours, peer = s["hermetic.dask.load"], "torch.load"

    def row(metric: str, key: str, unit: str, note: str = "") -> Row:
        return Row(scenario, metric, ours, peer, s[peer], key, unit, note=note)

    return [
        row(
            f"time until all {WORKERS} workers loaded + touched",
            "all_loaded_s",
            "s",
            "client.run of one load per worker, all at once; torch.load without mmap",
        ),
        row(
            "private memory added per worker (largest)",
            "private_added_per_worker",
            "B",
            "smaps_rollup Private_Clean+Private_Dirty once every worker loaded + "
            "touched, minus before; file pages other workers map too are shared",
        ),
        row(
            f"private memory added, all {WORKERS} workers",
            "private_added_all_workers",
            "B",
        ),
    ]
