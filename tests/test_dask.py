"""hermetic.dask (issue 9): one importer per worker process, packaged code, mapped data.

A real ``distributed.LocalCluster`` with two worker processes loads an archive whose
module the workers cannot import; every task calls :func:`hermetic.dask.load`.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import uuid
from pathlib import Path

import pytest

import hermetic.dask
from hermetic import PackageExporter

np = pytest.importorskip("numpy", reason="the packaged data is a NumPy array")
DISTRIBUTED = "the Dask tests need hermetic[dask] (distributed)"

MODEL_SOURCE = """\
import numpy as np


class Scaler:
    def __init__(self, weights):
        self.weights = weights

    def apply(self, x):
        return float(np.dot(self.weights, np.full(self.weights.shape, x)))
"""
ROWS = 1 << 16  # 512 KiB of float64: several pages, one storage record


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed", reason=DISTRIBUTED)
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        host="127.0.0.1",
    )
    try:
        with distributed.Client(cluster) as client:
            client.wait_for_workers(2, timeout=60)
            yield client
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    """Write a package with a packaged class holding an array; return (path, module)."""
    folder = tmp_path_factory.mktemp("dask-model")
    name = f"dask_model_{uuid.uuid4().hex[:8]}"
    source = folder / f"{name}.py"
    source.write_text(MODEL_SOURCE)
    # Imported here by file location: the folder never joins sys.path, which the
    # workers (spawned from this process) copy.
    spec = importlib.util.spec_from_file_location(name, source)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        weights = np.arange(ROWS, dtype=np.float64)
        path = folder / "model.pt"
        with PackageExporter(path) as exporter:
            exporter.extern("numpy.**")
            exporter.intern(name)
            exporter.save_pickle("model", "model.pkl", module.Scaler(weights))
    finally:
        del sys.modules[name]
    return str(path), name


def _task(path: str, module_name: str, x: float) -> dict:
    """Run on a worker: load the packaged model and report where its data lives."""
    importer = hermetic.dask.cached_importer(path)
    model = hermetic.dask.load(path, "model", "model.pkl")
    mapping = importer.zip_reader.mapping()
    start = end = 0
    if mapping is not None:
        start = np.frombuffer(mapping, dtype=np.uint8).ctypes.data
        end = start + len(mapping)
    data = model.weights.ctypes.data
    return {
        "pid": os.getpid(),
        "importer": id(importer),
        "result": model.apply(x),
        "mapped": start <= data and data + model.weights.nbytes <= end,
        "class_module": type(model).__module__,
        "installed": importlib.util.find_spec(module_name) is not None,
    }


def test_load_in_this_process_is_cached(packaged):
    path, _ = packaged
    try:
        first = hermetic.dask.cached_importer(path)
        assert hermetic.dask.cached_importer(path) is first
        assert hermetic.dask.cached_importer(path, verify=False) is not first
        assert hermetic.dask.load(path, "model", "model.pkl").weights.sum() == sum(
            range(ROWS)
        )
    finally:
        hermetic.dask.clear_cache()


def test_digest_follows_the_manifest(packaged, tmp_path):
    path, _ = packaged
    copy = tmp_path / "copy.pt"
    copy.write_bytes(Path(path).read_bytes())
    assert hermetic.dask.digest(path) == hermetic.dask.digest(copy)
    other = tmp_path / "other.pt"
    with PackageExporter(other) as exporter:
        exporter.save_pickle("model", "model.pkl", [1, 2])
    assert hermetic.dask.digest(other) != hermetic.dask.digest(path)


def test_workers_load_once_run_packaged_code_and_map_storages(client, packaged):
    """Each worker process opens the archive once and runs code it doesn't have."""
    path, name = packaged
    digests = hermetic.dask.preload(client, path)
    assert len(digests) == 2
    assert set(digests.values()) == {hermetic.dask.digest(path)}

    xs = [float(i) for i in range(40)]
    futures = client.map(_task, [path] * len(xs), [name] * len(xs), xs, pure=False)
    reports = client.gather(futures)

    expected = float(sum(range(ROWS)))
    assert [r["result"] for r in reports] == [expected * x for x in xs]
    importers_by_pid: dict[int, set[int]] = {}
    for report in reports:
        importers_by_pid.setdefault(report["pid"], set()).add(report["importer"])
    assert os.getpid() not in importers_by_pid
    assert all(len(ids) == 1 for ids in importers_by_pid.values()), importers_by_pid
    assert len(importers_by_pid) <= 2
    assert all(r["mapped"] for r in reports)
    assert not any(r["installed"] for r in reports)
    assert all(r["class_module"].endswith(name) for r in reports)
    assert all(r["class_module"] != name for r in reports)  # mangled: packaged


def test_preload_needs_a_client():
    pytest.importorskip("distributed", reason=DISTRIBUTED)
    with pytest.raises(TypeError, match=r"distributed\.Client"):
        hermetic.dask.preload(object(), "model.pt")
