"""One PackageImporter used from many threads at once returns the right objects.

pytorch issue 180307 is a silent wrong-tensor race: state shared by the loads of one
importer (its storage cache, ``last_map_location``) let one thread's load see another
thread's data. These stress tests start 8 threads together on a fresh importer (so
first loads race too), switch threads every microsecond, and check every result.
"""

from __future__ import annotations

import io
import sys
import threading
from collections import defaultdict

import pytest

import hermetic

torch = pytest.importorskip(
    "torch", reason="needs torch==2.13.0 (pip install 'hermetic[torch]')"
)

pytestmark = pytest.mark.torch

THREADS = 8
ROUNDS = 6
ITERATIONS = 40
PICKLES = 5

PROBE_SOURCE = """
class Probe:
    '''Loads as the map_location its load_pickle call was given.'''

    def __reduce_package__(self, exporter):
        return (load_probe, ())


def load_probe(importer):
    return importer.last_map_location
"""


@pytest.fixture
def fast_switching():
    """Make the interpreter switch threads as often as it can, to expose races."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


def _bases():
    """Three storages shared by every pickle, with distinct values."""
    return [torch.arange(100.0) + 1000 * n for n in range(3)]


def _payload(index, bases, probe):
    """Pickle *index*: views of the shared bases at offsets that differ per pickle."""
    return {
        "index": index,
        "views": [base[index : index + 10] for base in bases],
        "own": torch.full((4,), float(index)),
        "probe": probe,
    }


def _expected(index):
    return [torch.arange(100.0)[index : index + 10] + 1000 * n for n in range(3)]


@pytest.fixture
def stress_archive(src_tree, archive):
    src_tree({"probe.py": PROBE_SOURCE})
    import probe

    bases = _bases()
    with hermetic.PackageExporter(archive) as exporter:
        exporter.intern("probe")
        for index in range(PICKLES):
            payload = _payload(index, bases, probe.Probe())
            exporter.save_pickle("p", f"{index}.pkl", payload)
    return archive


def _storage_id(tensor):
    """Identify the C++ storage of *tensor* (two mappings of one record share memory,
    so data_ptr alone cannot tell them apart)."""
    return tensor.untyped_storage()._cdata


def _importers(path):
    """Fresh importers of one archive, alternating a mapped file and a buffer."""
    for round_ in range(ROUNDS):
        if round_ % 2:
            yield hermetic.PackageImporter(io.BytesIO(path.read_bytes()))
        else:
            yield hermetic.PackageImporter(path)


def _run_threads(worker):
    barrier = threading.Barrier(THREADS)
    errors = []

    def run(thread_id):
        try:
            barrier.wait()
            worker(thread_id)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def test_concurrent_loads_of_one_importer_get_their_own_values(
    stress_archive, fast_switching
):
    """8 threads loading different pickles of one importer always get the right ones.

    Each call passes its own map_location, which a __reduce_package__ loader reads back
    from ``importer.last_map_location``: a value shared between threads shows up as
    another thread's map_location. Views of one record share one storage everywhere.
    """
    for importer in _importers(stress_archive):
        pointers = defaultdict(set)
        lock = threading.Lock()

        def worker(thread_id, importer=importer, pointers=pointers, lock=lock):
            for iteration in range(ITERATIONS):
                index = (thread_id + iteration) % PICKLES
                mine = {"cpu": "cpu", "caller": (thread_id, iteration)}
                loaded = importer.load_pickle("p", f"{index}.pkl", map_location=mine)
                assert loaded["index"] == index
                assert loaded["probe"] is mine, "saw another call's map_location"
                for view, expected in zip(
                    loaded["views"], _expected(index), strict=True
                ):
                    assert torch.equal(view, expected)
                    assert view.storage_offset() == index
                assert torch.equal(loaded["own"], torch.full((4,), float(index)))
                with lock:
                    for n, view in enumerate(loaded["views"]):
                        pointers[n].add(_storage_id(view))
            assert importer.last_map_location is None

        _run_threads(worker)
        assert all(len(seen) == 1 for seen in pointers.values()), pointers
        importer.close()


def test_concurrent_first_loads_of_one_record_share_one_storage(
    archive, fast_switching
):
    """Threads that load the same never-loaded storage at once all get one storage."""
    tensors = [torch.arange(50, dtype=torch.int64) * n for n in range(64)]
    with hermetic.PackageExporter(archive) as exporter:
        for n, tensor in enumerate(tensors):
            exporter.save_pickle("p", f"{n}.pkl", tensor)
    for importer in _importers(archive):
        results = defaultdict(list)

        def worker(thread_id, importer=importer, results=results):
            for n in range(len(tensors)):
                results[n].append(importer.load_pickle("p", f"{n}.pkl"))

        _run_threads(worker)
        for n, loaded in results.items():
            assert all(torch.equal(t, tensors[n]) for t in loaded), n
            assert len({_storage_id(t) for t in loaded}) == 1, n
        importer.close()
