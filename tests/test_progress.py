"""hermetic.progress: the opt-in progress hook of PackageExporter."""

from __future__ import annotations

import io

import pytest

from hermetic import PackageExporter
from hermetic.progress import Progress, RichProgress, as_progress


class Recorder:
    """A Progress that records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def start(self, description: str, total: int | None) -> None:
        self.calls.append(("start", (description, total)))

    def advance(self, amount: int) -> None:
        self.calls.append(("advance", amount))

    def stop(self) -> None:
        self.calls.append(("stop", None))


def test_exporter_reports_every_byte_it_writes(archive):
    """start once, advance by every byte of the file, stop once."""
    recorder = Recorder()
    with PackageExporter(archive, progress=recorder) as exporter:
        exporter.save_binary("data", "blob.bin", b"x" * 100_000)
    kinds = [kind for kind, _ in recorder.calls]
    assert kinds[0] == "start"
    assert recorder.calls[0][1] == (f"writing {archive}", None)
    assert kinds[-1] == "stop"
    assert kinds.count("stop") == 1
    written = sum(int(arg) for kind, arg in recorder.calls if kind == "advance")
    assert written == archive.stat().st_size


def test_a_failed_export_stops_the_progress():
    """An exception inside the with block still ends the progress report."""
    recorder = Recorder()
    with pytest.raises(RuntimeError), PackageExporter(io.BytesIO(), progress=recorder):
        raise RuntimeError("boom")
    assert recorder.calls[-1] == ("stop", None)


def test_as_progress_takes_bools_none_and_protocol_objects():
    """True means a rich bar, False/None nothing, anything else must fit Progress."""
    pytest.importorskip("rich", reason="progress bars need hermetic[rich]")
    assert as_progress(None) is None
    assert as_progress(False) is None
    recorder = Recorder()
    assert as_progress(recorder) is recorder
    assert isinstance(recorder, Progress)
    assert isinstance(as_progress(True), RichProgress)
    with pytest.raises(TypeError, match="progress must be True, False, None"):
        as_progress("yes")


def test_rich_progress_draws_nothing_for_quick_work():
    """Work shorter than the delay leaves the console untouched."""
    rich_console = pytest.importorskip(
        "rich.console", reason="progress bars need hermetic[rich]"
    )
    stream = io.StringIO()
    console = rich_console.Console(file=stream, force_terminal=True)
    bar = RichProgress(delay=60, console=console)
    bar.start("quick", 10)
    bar.advance(10)
    bar.stop()
    assert stream.getvalue() == ""
    bar = RichProgress(delay=0, console=console)
    bar.start("shown", 10)
    bar.advance(10)
    bar.stop()
    assert "shown" in stream.getvalue()


class _Recorder:
    def __init__(self):
        self.events = []

    def start(self, description, total):
        self.events.append(("start", description, total))

    def advance(self, amount):
        self.events.append(("advance", amount))

    def stop(self):
        self.events.append(("stop",))


def test_load_pickle_reports_every_byte_of_the_pickle(tmp_path):
    """PackageImporter(progress=...) hears about each byte load_pickle reads."""
    from hermetic import PackageExporter, PackageImporter

    path = tmp_path / "p.pt"
    with PackageExporter(path) as exporter:
        exporter.save_pickle("data", "big.pkl", list(range(200_000)))
    recorder = _Recorder()
    importer = PackageImporter(path, progress=recorder)
    assert importer.load_pickle("data", "big.pkl") == list(range(200_000))
    size = importer.zip_reader.record_size("data/big.pkl")
    assert recorder.events[0] == ("start", "loading data/big.pkl", size)
    assert sum(e[1] for e in recorder.events if e[0] == "advance") == size
    assert recorder.events[-1] == ("stop",)


def test_scan_reports_each_record(tmp_path):
    """scan(progress=...) advances once per record and stops."""
    from hermetic import PackageExporter, scan

    path = tmp_path / "p.pt"
    with PackageExporter(path) as exporter:
        exporter.save_pickle("data", "x.pkl", {"a": 1})
        exporter.save_text("data", "t.txt", "t")
    recorder = _Recorder()
    report = scan(path, progress=recorder)
    assert recorder.events[0][0] == "start"
    advances = [e for e in recorder.events if e[0] == "advance"]
    assert len(advances) == len(report.records)
    assert recorder.events[-1] == ("stop",)
