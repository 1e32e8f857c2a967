"""The mechanisms behind fast loading and lean saving, proved without timing anything.

- A loaded tensor's bytes lie inside the memory map of the archive file.
- Loading maps the file instead of copying: a process that reads every storage of an
  archive gains almost no anonymous (copied) memory, and a second process loading it
  at the same time shares the first one's pages.
- Saving streams storages from tensor memory to the file: peak RSS stays near the
  state dict's own size.
"""

from __future__ import annotations

import ctypes
import json
import sys
import textwrap

import pytest

from helpers import run_python
from hermetic import PackageExporter, PackageImporter

pytestmark = pytest.mark.torch
torch = pytest.importorskip(
    "torch", reason="needs torch==2.13.0 (pip install 'hermetic[torch]')"
)

MIB = 1 << 20

MEMORY_PROBE = textwrap.dedent(
    """
    import json, resource, sys

    def smaps():
        fields = {}
        with open("/proc/self/smaps_rollup") as file:
            for line in file:
                parts = line.split()
                if len(parts) >= 3 and parts[-1] == "kB":
                    fields[parts[0].rstrip(":")] = int(parts[1]) * 1024
        return fields

    def peak_rss():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    """
)


@pytest.fixture(scope="module")
def big_archive(tmp_path_factory):
    """An archive of 256 MiB of float32 tensors in 4 storages."""
    path = tmp_path_factory.mktemp("zero-copy") / "big.pt"
    state = {f"w{i}": torch.full((16 * MIB,), float(i)) for i in range(4)}
    with PackageExporter(path) as exporter:
        exporter.save_pickle("model", "state.pkl", state)
    return path


def test_loaded_tensor_data_lies_inside_the_archive_map(big_archive):
    """Tensors point into the mapped archive: no storage was copied out of it."""
    importer = PackageImporter(big_archive)
    state = importer.load_pickle("model", "state.pkl")
    mapping = importer.zip_reader.mapping()
    assert mapping is not None
    start = ctypes.addressof(ctypes.c_char.from_buffer(mapping))
    end = start + len(mapping)
    for name, tensor in state.items():
        assert start <= tensor.data_ptr() < end, name
        assert tensor.data_ptr() + tensor.nbytes <= end, name
        offset = tensor.data_ptr() - start
        record = importer.zip_reader.record_span(f".data/{int(name[1:])}.storage")
        assert record is not None
        assert offset == record[0]


def test_writes_to_loaded_tensors_never_reach_the_file(big_archive):
    """The map is copy-on-write: changing a loaded tensor leaves the archive intact."""
    before = big_archive.read_bytes()
    state = PackageImporter(big_archive).load_pickle("model", "state.pkl")
    state["w1"].add_(1.0)
    assert big_archive.read_bytes() == before
    again = PackageImporter(big_archive).load_pickle("model", "state.pkl")
    assert float(again["w1"][0]) == 1.0


def _load_and_touch(path, *, hold_seconds: float = 0.0) -> dict:
    code = MEMORY_PROBE + textwrap.dedent(
        f"""
        import time
        from hermetic import PackageImporter
        import torch
        before = smaps()
        state = PackageImporter({str(path)!r}).load_pickle("model", "state.pkl")
        total = sum(float(t.sum()) for t in state.values())
        after = smaps()
        print(json.dumps({{
            "anonymous": after["Anonymous"] - before["Anonymous"],
            "private": (after["Private_Clean"] + after["Private_Dirty"])
            - (before["Private_Clean"] + before["Private_Dirty"]),
            "total": total,
        }}), flush=True)
        time.sleep({hold_seconds})
        """
    )
    return json.loads(run_python(code).strip().splitlines()[-1])


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/smaps_rollup")
def test_loading_copies_no_storage_into_anonymous_memory(big_archive):
    """Reading all 256 MiB of tensors adds well under 10% anonymous memory."""
    result = _load_and_touch(big_archive)
    assert result["total"] == sum(float(i) * 16 * MIB for i in range(4))
    assert result["anonymous"] < 0.1 * 256 * MIB


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/smaps_rollup")
def test_a_second_process_shares_the_first_ones_pages(big_archive):
    """While one process holds the archive mapped, another adds no private memory."""
    import subprocess

    holder_code = MEMORY_PROBE + textwrap.dedent(
        f"""
        import time
        from hermetic import PackageImporter
        state = PackageImporter({str(big_archive)!r}).load_pickle("model", "state.pkl")
        sum(float(t.sum()) for t in state.values())
        print("ready", flush=True)
        time.sleep(60)
        """
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", holder_code], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        result = _load_and_touch(big_archive)
    finally:
        holder.kill()
        holder.communicate()
    assert result["private"] < 0.1 * 256 * MIB


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="reads ru_maxrss in KiB (Linux)")
def test_saving_2_gib_keeps_peak_rss_near_the_state_dict_size(tmp_path):
    """Saving streams storages to the file: peak RSS stays under 1.3x the data size."""
    code = MEMORY_PROBE + textwrap.dedent(
        f"""
        import torch
        from hermetic import PackageExporter
        baseline = peak_rss()
        state = {{f"w{{i}}": torch.ones(64 * {MIB}) for i in range(8)}}  # 2 GiB
        with PackageExporter({str(tmp_path / "big.pt")!r}) as exporter:
            exporter.save_pickle("model", "state.pkl", state)
        print(json.dumps({{"baseline": baseline, "peak": peak_rss()}}))
        """
    )
    result = json.loads(run_python(code).strip().splitlines()[-1])
    size = 2 * 1024 * MIB
    assert result["peak"] < result["baseline"] + 1.3 * size
    assert (tmp_path / "big.pt").stat().st_size > size
